"""BADGE: k-means++ seeding over the hallucinated last-layer gradients (uncertain *and* diverse items).

Source: Ash, Zhang, Krishnamurthy, Langford and Agarwal, "Deep Batch Active Learning by Diverse, Uncertain Gradient
Lower Bounds" (ICLR 2020), Algorithm 1: each unlabelled item's embedding is the gradient of the cross-entropy loss
with respect to the last layer's weights, taking the model's own predicted label as the truth,
``g = (p - onehot(y_hat)) (x) x`` for penultimate features ``x``; the batch is chosen by k-means++ seeding
(Arthur & Vassilvitskii 2007) over those gradients: the item of largest gradient norm first, then each next item with
probability proportional to its squared distance to the nearest item chosen so far. The norm of ``g`` grows with the
model's uncertainty, the distance with the item's novelty, so one rule trades the two off without a weight.

For a binary classifier the two rows of ``g`` are ``+-(p - [y_hat = 1]) x``, so the distances are those of
``(p - [y_hat = 1]) x`` up to a constant factor of sqrt(2); that single row is what is used.

Deviations, stated:

- ``x`` is the pool's (frozen) sentence embedding, not the fine-tuned student's own penultimate layer. For the proxy
  student (a logistic-regression head on those embeddings) it is the exact gradient; for a fine-tuned student it
  is the gradient of a linear head on the frozen encoder, an approximation.
- The decision threshold ``t`` need not be 0.5 (curate labels at the score quantile of the expected positive
  share). The gradient is taken for the model whose bias is shifted so that it decides at ``t``:
  ``q = sigmoid(logit(p) - logit(t))``, so the item on the threshold has the largest gradient, as in the paper.
- k-means++ runs over the ``candidate_multiple * budget`` unlabelled items of largest gradient norm (smallest margin),
  not the whole pool, so a pool of millions costs one pass to rank it and ``budget`` passes over the candidates.
  Items outside them have small gradients and are seldom drawn by the D^2 rule anyway.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field
from scipy.special import expit, logit

from curate.select.base import Selection, StrategySettings, check_query_args, pool_rows

_EPS = 1e-6


def gradient_scale(scores: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The signed scale ``q - [q >= 0.5]`` of each item's last-layer gradient, ``q = sigmoid(logit(p) - logit(t))``.

    Args:
        scores: ``(N,)`` p(positive) in [0, 1].
        threshold: the decision threshold ``t`` in (0, 1).

    Returns:
        ``(N,)`` float64 in (-0.5, 0.5]: its absolute value is the gradient norm of a unit-norm item (largest on the
        threshold, 0 where the model is certain); positive for predicted negatives, negative for predicted positives.

    Raises:
        ValueError: ``threshold`` outside (0, 1).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    p = np.clip(np.asarray(scores, dtype=np.float64), _EPS, 1 - _EPS)
    return expit(logit(p) - logit(threshold)) - (p >= threshold)


def kmeans_pp(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding as BADGE uses it: the row of largest norm first, then D^2 sampling.

    Not ``sklearn.cluster.kmeans_plusplus``: that draws the first centre at random and picks each next one greedily
    among several D^2 draws; BADGE's reference code takes the largest gradient first and one D^2 draw per item.

    Args:
        points: ``(m, d)`` float rows.
        k: rows to choose (``<= m``).
        rng: draws each next row.

    Returns:
        ``(min(k, m),)`` int64 row positions, in the order chosen, no repeats. When every remaining row lies on a
        chosen one (all distances 0), the rest are taken in order of norm.
    """
    m = points.shape[0]
    k = min(k, m)
    if k == 0:
        return np.empty(0, np.int64)
    norms = np.einsum("ij,ij->i", points, points)
    chosen = [int(np.argmax(norms))]
    taken = np.zeros(m, bool)
    d2 = np.full(m, np.inf)
    while True:
        last = chosen[-1]
        taken[last] = True
        diff = points - points[last]
        d2 = np.minimum(d2, np.einsum("ij,ij->i", diff, diff))
        d2[taken] = 0.0
        if len(chosen) == k:
            break
        total = float(d2.sum())
        if total <= 0.0:  # every remaining row coincides with a chosen one
            rest = np.flatnonzero(~taken)
            chosen.extend(int(i) for i in rest[np.argsort(-norms[rest], kind="stable")][: k - len(chosen)])
            break
        chosen.append(int(rng.choice(m, p=d2 / total)))
    return np.asarray(chosen, dtype=np.int64)


class Settings(StrategySettings):
    """``[selection.badge]``: the parameters of :class:`Badge`."""

    candidate_multiple: float = Field(default=50.0, ge=1)


class Badge:
    """BADGE (Ash et al. 2020) on the pool's embeddings; each item is its own group.

    Args (keyword-only; the fields of :class:`Settings`):
        candidate_multiple: k-means++ runs over the ``ceil(candidate_multiple * budget)`` unlabelled items of largest
            gradient norm.

    Raises:
        ValueError: ``candidate_multiple < 1``.
    """

    name = "badge"

    def __init__(self, *, candidate_multiple: float = 50.0) -> None:
        if candidate_multiple < 1:
            raise ValueError(f"candidate_multiple must be >= 1, got {candidate_multiple}")
        self.candidate_multiple = candidate_multiple

    def query(self, *, scores: np.ndarray, embeddings: np.ndarray, labelled: np.ndarray, budget: int,
              rng: np.random.Generator, threshold: float = 0.5, expert_positive: np.ndarray | None = None) -> Selection:
        """Choose ``min(budget, number unlabelled)`` items by k-means++ over their gradient embeddings.

        Args:
            scores: ``(N,)`` float32 p(positive).
            embeddings: ``(N, d)`` unit rows (a float16 memory map is fine; only the candidates' rows are read).
            labelled: ``(N,)`` bool, True for items never to select.
            budget: the number of items to return at most (``>= 0``).
            rng: breaks ties between equal gradient norms and draws the D^2 samples.
            threshold: the decision threshold, in (0, 1).
            expert_positive: unused (kept for the common signature).

        Returns:
            A :class:`~curate.select.base.Selection` in pick order, one group per item; ``info`` holds the number of
            candidates and the largest margin ``|p - threshold|`` chosen.

        Raises:
            ValueError: when the shapes disagree, ``budget < 0`` or ``threshold`` is outside (0, 1).
        """
        check_query_args(scores, embeddings, labelled, budget)
        scale = gradient_scale(scores, threshold)
        idx = np.flatnonzero(~labelled)
        m = min(idx.size, math.ceil(self.candidate_multiple * budget))
        order = np.lexsort((rng.random(idx.size), -np.abs(scale[idx])))
        candidates = np.sort(idx[order[:m]])  # in pool order: rows are read in one forward pass
        if candidates.size == 0 or budget == 0:
            return Selection(np.empty(0, np.int64), np.empty(0, np.int64), {"n_candidates": int(candidates.size)})
        rows = np.asarray(pool_rows(embeddings)[candidates], dtype=np.float32)
        grads = rows * scale[candidates, None].astype(np.float32)
        chosen = candidates[kmeans_pp(grads, budget, rng)]
        info = {"n_candidates": int(candidates.size),
                "max_margin_chosen": float(np.abs(scores[chosen] - threshold).max())}
        return Selection(chosen, np.arange(chosen.size), info)
