"""Agreement: Cohen's kappa with bootstrap confidence intervals, and pairwise annotator kappa.

Kappa rather than accuracy because the classes are imbalanced and the truth is ambiguous
(METHOD.md section 1, step 9). Cohen's kappa comes from scikit-learn; the percentile bootstrap
resamples items (Efron and Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13).
For more than two annotators: a pairwise kappa matrix, Fleiss' kappa (Fleiss 1971) and
Krippendorff's alpha (Krippendorff 2004/2011).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
from sklearn.metrics import cohen_kappa_score


def cohen_kappa(a: Sequence, b: Sequence) -> float:
    """Cohen's kappa between two label sequences of equal length ``N``.

    Returns NaN when ``N == 0``; 1.0 when both raters give one identical constant label (perfect
    agreement, where scikit-learn would divide by zero); 0.0 when the expected agreement is 1 but
    the raters differ somewhere.

    Raises:
        ValueError: the sequences differ in length.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label sequences differ in length: {a.shape} vs {b.shape}")
    if a.size == 0:
        return math.nan
    if len(np.union1d(a, b)) == 1:
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cohen_kappa_score(a, b)
    return 0.0 if not np.isfinite(k) else float(k)


@dataclass
class KappaEstimate:
    """A kappa with its 95 % percentile-bootstrap interval over ``n`` items (NaN when undefined)."""

    kappa: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def kappa_with_ci(
    a: Sequence,
    b: Sequence,
    *,
    rng: np.random.Generator,
    n_boot: int = 1000,
    level: float = 0.95,
    groups: Sequence | None = None,
) -> KappaEstimate:
    """Cohen's kappa and its percentile-bootstrap confidence interval.

    Args:
        a, b: ``(N,)`` labels of two raters on the same rows.
        rng: the random generator for the resamples.
        n_boot: number of bootstrap resamples (0: no interval, NaN bounds).
        level: the interval's coverage, e.g. 0.95.
        groups: optional ``(N,)`` cluster ids (the item of each row when an item has several rows,
            one per annotator): whole clusters are resampled, so rows of one item stay together.
            Without it, rows are resampled.

    Returns:
        A :class:`KappaEstimate`; ``n`` counts rows. The interval is NaN for fewer than 2 rows.
    """
    a, b = np.asarray(a), np.asarray(b)
    k = cohen_kappa(a, b)
    n = len(a)
    if n < 2 or n_boot == 0:
        return KappaEstimate(k, math.nan, math.nan, n)
    cats, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    ca, cb = codes[:n], codes[n:]
    m = len(cats)
    if groups is None:
        weights = np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(n_boot)])
    else:
        _, g = np.unique(np.asarray(groups), return_inverse=True)
        n_groups = g.max() + 1
        weights = np.stack(
            [np.bincount(rng.integers(0, n_groups, size=n_groups), minlength=n_groups)[g] for _ in range(n_boot)]
        )
    boots = _resampled_kappas(ca, cb, m, weights)
    alpha = (1 - level) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    return KappaEstimate(k, float(low), float(high), n)


def _resampled_kappas(ca: np.ndarray, cb: np.ndarray, m: int, weights: np.ndarray) -> np.ndarray:
    """``(n_boot,)`` kappas of rows with category codes ``ca``, ``cb`` (``(N,)`` in ``0..m-1``) under
    ``(n_boot, N)`` resampling weights, from the weighted confusion matrices of every resample at once."""
    n_boot = weights.shape[0]
    cell = ca * m + cb
    conf = np.stack([weights[:, cell == c].sum(axis=1) for c in range(m * m)], axis=1).reshape(n_boot, m, m)
    total = conf.sum(axis=(1, 2)).astype(float)
    p_o = np.trace(conf, axis1=1, axis2=2) / total
    p_e = (conf.sum(axis=2) * conf.sum(axis=1)).sum(axis=1) / total**2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p_e < 1, (p_o - p_e) / (1 - p_e), np.where(p_o == 1, 1.0, 0.0))


def paired_kappa_difference(
    predictions_a: Mapping[str, object],
    predictions_b: Mapping[str, object],
    labels_by_annotator: Mapping[str, Mapping[str, object]],
    *,
    rng: np.random.Generator,
    n_boot: int = 1000,
) -> dict:
    """How surely model A agrees with the experts better than model B, by a paired bootstrap over items.

    Both models' model-expert kappas (:func:`model_expert_kappa`) are computed on the same resamples of items (all
    of an item's expert labels together), so the item-to-item noise they share cancels (Efron and Tibshirani 1993,
    ch. 16, paired comparisons).

    Args:
        predictions_a, predictions_b: ``{item_id: label}`` of each model, covering the annotated items.
        labels_by_annotator: ``{annotator: {item_id: label}}`` (the evaluation set).

    Returns:
        ``{"difference": kappa_a - kappa_b, "p_a_better": share of resamples where A's kappa exceeds B's,
        "n_items"}``; NaN difference and 0.0 share when no item is labelled.
    """
    rows = [(predictions_a[i], predictions_b[i], lab, i) for v in labels_by_annotator.values()
            for i, lab in v.items() if i in predictions_a and i in predictions_b]
    if not rows:
        return {"difference": math.nan, "p_a_better": 0.0, "n_items": 0}
    pa, pb, expert, items = (np.asarray(x) for x in zip(*rows))
    diff = cohen_kappa(pa, expert) - cohen_kappa(pb, expert)
    cats, codes = np.unique(np.concatenate([pa, pb, expert]), return_inverse=True)
    n, m = len(pa), len(cats)
    ca, cb, ce = codes[:n], codes[n:2 * n], codes[2 * n:]
    _, g = np.unique(items, return_inverse=True)
    n_items = int(g.max()) + 1
    if n_boot == 0:
        return {"difference": float(diff), "p_a_better": float(diff > 0), "n_items": n_items}
    weights = np.stack([np.bincount(rng.integers(0, n_items, size=n_items), minlength=n_items)[g]
                        for _ in range(n_boot)])
    better = _resampled_kappas(ca, ce, m, weights) > _resampled_kappas(cb, ce, m, weights)
    return {"difference": float(diff), "p_a_better": float(better.mean()), "n_items": n_items}


def model_expert_kappa(
    predictions: Mapping[str, object],
    labels_by_annotator: Mapping[str, Mapping[str, object]],
    *,
    rng: np.random.Generator,
    n_boot: int = 1000,
) -> KappaEstimate:
    """Cohen's kappa between a model and the experts, pooled over every (item, expert) label.

    Each expert label is paired with the model's prediction for that item; the interval resamples
    items (all of an item's labels together). Comparing the model with each expert, rather than
    with a majority of experts, makes it comparable with the experts' own pairwise kappa (the
    ceiling, :func:`pairwise_kappa`).

    Args:
        predictions: ``{item_id: label}`` covering the annotated items (others are ignored).
        labels_by_annotator: ``{annotator: {item_id: label}}``.
    """
    rows = [
        (predictions[i], lab, i)
        for item_labels in labels_by_annotator.values()
        for i, lab in item_labels.items()
        if i in predictions
    ]
    if not rows:
        return KappaEstimate(math.nan, math.nan, math.nan, 0)
    pred, expert, items = zip(*rows)
    return kappa_with_ci(pred, expert, rng=rng, n_boot=n_boot, groups=items)


def pairwise_kappa(labels_by_annotator: Mapping[str, Mapping[str, object]]) -> dict:
    """Mean Cohen's kappa over annotator pairs, each pair on the items both labelled.

    Args:
        labels_by_annotator: ``{annotator: {item_id: label}}``.

    Returns:
        ``{"mean": float (NaN if no pair shares an item), "pairs": [{"a", "b", "kappa", "n"}], "n_items": int}``
        where ``n_items`` counts items with at least two annotators; the mean weights pairs by shared items.
    """
    pairs = []
    for x, y in itertools.combinations(sorted(labels_by_annotator), 2):
        shared = sorted(set(labels_by_annotator[x]) & set(labels_by_annotator[y]))
        if shared:
            k = cohen_kappa([labels_by_annotator[x][i] for i in shared], [labels_by_annotator[y][i] for i in shared])
            pairs.append({"a": x, "b": y, "kappa": k, "n": len(shared)})
    counts: dict[str, int] = {}
    for item_labels in labels_by_annotator.values():
        for item in item_labels:
            counts[item] = counts.get(item, 0) + 1
    weighted = [(p["kappa"], p["n"]) for p in pairs if np.isfinite(p["kappa"])]
    mean = float(np.average([k for k, _ in weighted], weights=[n for _, n in weighted])) if weighted else math.nan
    return {"mean": mean, "pairs": pairs, "n_items": sum(1 for c in counts.values() if c >= 2)}


# -- Multi-annotator agreement ----------------------------------------------------------------------


def kappa_matrix(labels_by_annotator: Mapping[str, Mapping[str, object]]) -> dict:
    """Cohen's kappa between every pair of annotators, each pair on the items both labelled.

    Args:
        labels_by_annotator: ``{annotator: {item_id: label}}`` for ``K`` annotators.

    Returns:
        ``{"annotators": [K names, sorted], "matrix": K x K list of lists, "n": K x K list of lists}``.
        ``matrix[i][j]`` is :func:`cohen_kappa` of annotators ``i`` and ``j`` on their ``n[i][j]`` shared
        items, ``None`` (JSON null, rather than NaN) where they share no item. The diagonal is 1.0 with
        ``n[i][i]`` the number of items annotator ``i`` labelled (``None`` and 0 for an annotator with none).
        The matrix is symmetric.
    """
    names = sorted(labels_by_annotator)
    k = len(names)
    matrix: list[list[float | None]] = [[None] * k for _ in range(k)]
    n = [[0] * k for _ in range(k)]
    for i, x in enumerate(names):
        n[i][i] = len(labels_by_annotator[x])
        matrix[i][i] = 1.0 if n[i][i] else None
    for i, j in itertools.combinations(range(k), 2):
        lx, ly = labels_by_annotator[names[i]], labels_by_annotator[names[j]]
        shared = sorted(set(lx) & set(ly))
        n[i][j] = n[j][i] = len(shared)
        if shared:
            kappa = cohen_kappa([lx[s] for s in shared], [ly[s] for s in shared])
            matrix[i][j] = matrix[j][i] = None if math.isnan(kappa) else kappa
    return {"annotators": names, "matrix": matrix, "n": n}


def _labels_by_item(
    labels_by_annotator: Mapping[str, Mapping[str, object]], labels: Sequence[str]
) -> dict[str, list[int]]:
    """``{item_id: [label index of each annotation]}``; raises ValueError on a label outside ``labels``."""
    index = {lab: c for c, lab in enumerate(labels)}
    by_item: dict[str, list[int]] = {}
    for annotator, item_labels in labels_by_annotator.items():
        for item, lab in item_labels.items():
            if lab not in index:
                raise ValueError(
                    f"annotator {annotator!r} gave item {item!r} the label {lab!r}, not one of {list(labels)}"
                )
            by_item.setdefault(item, []).append(index[lab])
    return by_item


def fleiss_kappa(labels_by_annotator: Mapping[str, Mapping[str, object]], labels: Sequence[str]) -> float:
    """Fleiss' kappa: chance-corrected agreement of many raters on nominal labels (Fleiss 1971,
    "Measuring nominal scale agreement among many raters", Psychological Bulletin 76(5)).

    Computed by ``statsmodels.stats.inter_rater.fleiss_kappa`` on the ``(N_items, len(labels))`` table of
    how many raters gave each item each label. Fleiss' statistic assumes every item has the same number of
    raters ``m`` (the raters need not be the same people), so only the items whose rater count is the
    most common count among items with at least 2 raters are used (on a tie, the larger count); the other
    items are left out. Use :func:`krippendorff_alpha` to use every item.

    Args:
        labels_by_annotator: ``{annotator: {item_id: label}}``.
        labels: the task's labels (the table's columns, in this order).

    Returns:
        The kappa; NaN when no item has 2 or more raters. 1.0 when every rating on the items used is
        the same label (perfect agreement, where the statistic is 0/0; the convention of
        :func:`cohen_kappa`).

    Raises:
        ValueError: a label is not in ``labels``.
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    by_item = _labels_by_item(labels_by_annotator, labels)
    counts = [len(v) for v in by_item.values() if len(v) >= 2]
    if not counts:
        return math.nan
    values, freq = np.unique(counts, return_counts=True)
    m = int(values[freq == freq.max()].max())
    table = np.array(
        [np.bincount(v, minlength=len(labels)) for v in by_item.values() if len(v) == m], dtype=float
    )
    if np.count_nonzero(table.sum(axis=0)) == 1:
        return 1.0
    return float(_fleiss(table, method="fleiss"))


def krippendorff_alpha(labels_by_annotator: Mapping[str, Mapping[str, object]], labels: Sequence[str]) -> float:
    """Krippendorff's alpha for nominal data: ``1 - observed / expected disagreement``, over any number
    of annotators with missing labels (Krippendorff 2004, "Content Analysis", 2nd ed., ch. 11;
    Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").

    Computed by the ``krippendorff`` package on the ``(K_annotators, N_items)`` reliability matrix of label
    indices (into ``labels``), NaN where an annotator did not label an item. Items with fewer than 2
    labels cannot be paired and do not count.

    Args:
        labels_by_annotator: ``{annotator: {item_id: label}}``.
        labels: the task's labels.

    Returns:
        Alpha; NaN when no item has 2 or more labels. 1.0 when every pairable label is the same
        (no variation: the sources leave alpha undefined, 0/0; the convention of :func:`cohen_kappa`).

    Raises:
        ValueError: a label is not in ``labels``.
    """
    import krippendorff

    by_item = _labels_by_item(labels_by_annotator, labels)
    items = sorted(i for i, v in by_item.items() if len(v) >= 2)
    if not items:
        return math.nan
    if len({c for i in items for c in by_item[i]}) == 1:
        return 1.0
    column = {item: j for j, item in enumerate(items)}
    index = {lab: c for c, lab in enumerate(labels)}
    names = sorted(a for a, item_labels in labels_by_annotator.items() if any(i in column for i in item_labels))
    data = np.full((len(names), len(items)), np.nan)
    for r, name in enumerate(names):
        for item, lab in labels_by_annotator[name].items():
            if item in column:
                data[r, column[item]] = index[lab]
    return float(
        krippendorff.alpha(
            reliability_data=data, value_domain=list(range(len(labels))), level_of_measurement="nominal"
        )
    )


def majority_vote(
    labels_by_annotator: Mapping[str, Mapping[str, object]], labels: Sequence[str], *, tie: str | None = None
) -> dict[str, object]:
    """The most frequent label of each item (label aggregation by plurality vote).

    Args:
        labels_by_annotator: ``{annotator: {item_id: label}}``.
        labels: the task's labels.
        tie: the label given to items whose top labels tie; None leaves those items out.

    Returns:
        ``{item_id: label}``.

    Raises:
        ValueError: a label outside ``labels``, or ``tie`` not one of them.
    """
    if tie is not None and tie not in labels:
        raise ValueError(f"tie label {tie!r} is not one of {list(labels)}")
    out: dict[str, object] = {}
    for item, votes in _labels_by_item(labels_by_annotator, labels).items():
        counts = np.bincount(votes, minlength=len(labels))
        top = np.flatnonzero(counts == counts.max())
        if len(top) == 1:
            out[item] = labels[top[0]]
        elif tie is not None:
            out[item] = tie
    return out
