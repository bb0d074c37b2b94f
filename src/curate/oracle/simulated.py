"""Simulated experts and crowd labels from the data's own columns.

Simulated experts answer from the gold column; each expert independently replaces the gold
label by a uniformly drawn other label with probability ``f``, where ``f`` is solved so that the
expected Cohen's kappa between two experts equals a target (default 0.8, the ceiling reported in
METHOD.md; 1.0 gives perfect experts). Every answer is a deterministic function of
(seed, item id, expert), so a resumed or repeated run gets the same labels.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Mapping, Sequence

import numpy as np

from curate.errors import CurateError
from curate.oracle.base import Annotation


def expected_pairwise_kappa(flip_rate: float, prevalence: Sequence[float]) -> float:
    """Expected Cohen's kappa between two experts who each flip the gold label independently.

    Args:
        flip_rate: probability ``f`` that an expert replaces the gold label by another one
            (uniformly among the ``K - 1`` others).
        prevalence: ``(K,)`` gold label shares (summing to 1).
    """
    pi = np.asarray(prevalence, dtype=float)
    k = len(pi)
    f = flip_rate
    marg = pi * (1 - f) + (1 - pi) * f / (k - 1)
    p_o = (1 - f) ** 2 + f**2 / (k - 1)
    p_e = float((marg**2).sum())
    return (p_o - p_e) / (1 - p_e) if p_e < 1 else 1.0


def flip_rate_for_kappa(target: float, prevalence: Sequence[float]) -> float:
    """The flip rate ``f`` whose :func:`expected_pairwise_kappa` equals ``target`` (bisection).

    Raises:
        ValueError: ``target`` outside (0, 1].
    """
    if not 0 < target <= 1:
        raise ValueError(f"target kappa must be in (0, 1], got {target}")
    if target >= 1:
        return 0.0
    k = len(prevalence)
    lo, hi = 0.0, (k - 1) / k  # kappa falls from 1 at f = 0 to 0 at f = (K-1)/K
    for _ in range(60):
        mid = (lo + hi) / 2
        if expected_pairwise_kappa(mid, prevalence) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _unit_draw(*parts: object) -> float:
    """A uniform [0, 1) number that depends only on ``parts`` (stable across runs and platforms)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class SimulatedExperts:
    """An oracle of ``n_experts`` noisy experts answering from gold labels.

    Args:
        gold: ``{item_id: label}`` for every item that may be asked.
        labels: the task's labels.
        n_experts: independent experts per item (annotators ``expert-1`` ... ``expert-n``).
        target_kappa: the expected pairwise expert kappa.
        seed: the run's seed.
    """

    def __init__(
        self, gold: dict[str, str], labels: list[str], *, n_experts: int = 2, target_kappa: float = 0.8, seed: int = 0
    ) -> None:
        self.gold = gold
        self.labels = list(labels)
        counts = np.array([sum(1 for v in gold.values() if v == lab) for lab in self.labels], dtype=float)
        if counts.sum() == 0:
            raise CurateError("simulated oracle: the gold column has no labels; pass --gold-field with a labelled column")
        self.prevalence = counts / counts.sum()
        self.flip_rate = flip_rate_for_kappa(target_kappa, self.prevalence)
        self.annotators = [f"expert-{i + 1}" for i in range(n_experts)]
        self.seed = seed

    def answer(self, item_id: str, annotator: str) -> str:
        """The label ``annotator`` gives ``item_id`` (deterministic)."""
        truth = self.gold[item_id]
        if _unit_draw(self.seed, "flip", item_id, annotator) >= self.flip_rate:
            return truth
        others = [lab for lab in self.labels if lab != truth]
        return others[int(_unit_draw(self.seed, "other", item_id, annotator) * len(others))]

    def annotate(
        self, needs: Sequence[tuple[str, int]], have: Mapping[str, set[str]], round_index: int
    ) -> Iterable[Annotation]:
        """Item by item, experts ``expert-1 .. expert-n`` (``n`` = labels needed) who have not labelled it
        yet answer blind (only the item is seen)."""
        for item_id, needed in needs:
            for annotator in self.annotators[:needed]:
                if annotator not in have.get(item_id, ()):
                    yield Annotation(item_id, annotator, self.answer(item_id, annotator), round_index)


def crowd_labels(judgments: Sequence, ids: Sequence[str], labels: list[str], positive: str, *, seed: int) -> dict[str, str]:
    """One crowd label per item: a judgment drawn at random among the item's crowd judgments.

    Args:
        judgments: per item, either a list of numeric judgments in [0, 1] (Webis: 5 values in
            {0, 1/3, 2/3, 1}; positive when the drawn value >= 0.5) or a list of label strings, or a
            single label string / number.
        ids: the items' ids, aligned with ``judgments``.

    Returns:
        ``{item_id: label}`` for items with at least one judgment.
    """
    negatives = [lab for lab in labels if lab != positive]
    out = {}
    for item_id, value in zip(ids, judgments):
        if value is None:
            continue
        values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
        values = [v for v in values if v is not None]
        if not values:
            continue
        drawn = values[int(_unit_draw(seed, "crowd", item_id) * len(values))]
        if isinstance(drawn, str):
            out[item_id] = drawn
        elif len(labels) == 2:
            out[item_id] = positive if float(drawn) >= 0.5 else negatives[0]
        else:
            raise CurateError("crowd judgments are numeric but the task has more than two labels; give label strings")
    return out
