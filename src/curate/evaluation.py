"""The evaluate step's figures (METHOD.md section 1, step 2), as functions of labels, scores and a random generator.

:meth:`curate.loop.Loop.evaluate` gathers a round's inputs (stored scores, thresholds, splits, the experts' labels)
and records what these return in ``rounds/rTTT/metrics.json``; nothing here reads the project or the database.
Every interval is a 95 % bootstrap interval drawn from the ``rng`` passed in, so the caller's order of calls fixes
the figures at a given seed.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from curate.agreement import kappa_with_ci, model_expert_kappa, paired_kappa_difference


def finite_or_minus_inf(x: float | None) -> float:
    """``x``, or minus infinity when it is None or not finite (so an undefined kappa never ranks first)."""
    return x if x is not None and np.isfinite(x) else -math.inf


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve of scores ``p`` for boolean targets ``y`` (both ``(n,)``); NaN with one class."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else math.nan


def eval_kappa(pred: Mapping[str, str], eval_experts: Mapping[str, Mapping[str, str]]) -> float:
    """Point estimate of the model-expert kappa of ``pred`` (``{item: label}``) on the evaluation set (no bootstrap:
    the figure that ranks models when choosing the served one)."""
    return model_expert_kappa(pred, eval_experts, n_boot=0, rng=np.random.default_rng(0)).kappa


def served_model(t: int, by_model: Mapping[int, dict], eval_experts: Mapping[str, Mapping[str, str]],
                 rng: np.random.Generator, *, keep_best: bool, confidence: float, n_boot: int) -> dict:
    """Which model round ``t`` serves: ``M_t`` unless an earlier model agrees with the experts better on today's eval
    set with paired-bootstrap probability ``>= confidence``, or ``M_t`` predicts one class only; then the best such
    earlier model by kappa (the newest on ties). Always ``M_t`` when ``keep_best`` is off, in round 0 or with no
    expert label in the eval set.

    Args:
        by_model: ``{s: {"kappa", "one_class", "pred", ...}}`` for ``s = 0 .. t`` (``pred``: ``{item: label}`` on the
            eval set; ``one_class``: the only label the model predicts over the pool, else None).

    Returns:
        ``{"round": served s, "p_better": {s: P(M_s better than M_t)}}`` for the earlier models compared.
    """
    out: dict = {"round": t, "p_better": {}}
    if not keep_best or t == 0 or not eval_experts or not any(eval_experts.values()):
        return out
    rivals = []
    for s in range(t):
        if by_model[s]["one_class"]:
            continue
        cmp = paired_kappa_difference(by_model[s]["pred"], by_model[t]["pred"], eval_experts, rng=rng, n_boot=n_boot)
        out["p_better"][s] = cmp["p_a_better"]
        if by_model[t]["one_class"] or cmp["p_a_better"] >= confidence:
            rivals.append(s)
    if rivals:
        out["round"] = max(rivals, key=lambda s: (finite_or_minus_inf(by_model[s]["kappa"]), s))
    return out


def metrics_on_test(pred: Sequence[str], gold: Sequence[str], y: np.ndarray, p_positive: np.ndarray,
                 rng: np.random.Generator, *, n_boot: int) -> dict:
    """Kappa (95 % bootstrap CI) and AUROC of a model against gold on the test split.

    Args:
        pred, gold: the model's and the gold labels of the test items, in one order.
        y: ``(n,)`` bool, gold is the positive label; ``p_positive``: ``(n,)`` the model's p(positive).
    """
    return {"kappa_test": kappa_with_ci(list(pred), list(gold), rng=rng, n_boot=n_boot).to_dict(),
            "auroc_test": auroc(y, p_positive)}


def crowd_metrics(crowd: Mapping[str, str], gold: Mapping[str, str] | None, test_ids: Sequence[str],
                  experts: Mapping[str, Mapping[str, str]], rng: np.random.Generator, *, n_boot: int) -> dict:
    """The crowd's agreement: with gold on the test split (``crowd_gold_kappa_test``, when there are gold and test
    items) and with every expert label so far (``crowd_expert_kappa``); 95 % bootstrap CIs."""
    out = {}
    if gold is not None and test_ids:
        ids = [i for i in test_ids if i in crowd]
        out["crowd_gold_kappa_test"] = kappa_with_ci([crowd[i] for i in ids], [gold[i] for i in ids], rng=rng,
                                                     n_boot=n_boot).to_dict()
    out["crowd_expert_kappa"] = model_expert_kappa(crowd, experts, rng=rng, n_boot=n_boot).to_dict()
    return out
