"""Uncertainty sampling by the smallest margin |p - threshold|.

Source: Lewis & Gale 1994, "A sequential algorithm for training text classifiers" (uncertainty sampling),
in its margin form for a binary classifier; the baseline of METHOD.md section 1.
"""

from __future__ import annotations

import numpy as np

from curate.select.base import Selection, StrategySettings, check_query_args


def margin_order(
    scores: np.ndarray, candidates: np.ndarray, rng: np.random.Generator, threshold: float = 0.5
) -> np.ndarray:
    """Order candidate items by margin ``|p - threshold|``, smallest first, ties broken at random.

    Args:
        scores: ``(N,)`` p(positive).
        candidates: ``(N,)`` bool mask of the items to order.
        rng: draws the tie-breaking keys (one per candidate).
        threshold: the decision threshold.

    Returns:
        ``(n_candidates,)`` int64 positions into ``scores``.
    """
    idx = np.flatnonzero(candidates)
    margin = np.abs(scores[idx].astype(np.float64) - threshold)
    return idx[np.lexsort((rng.random(idx.size), margin))]


class Settings(StrategySettings):
    """Uncertainty sampling takes no settings (its ``[selection.uncertainty]`` table is empty)."""


class UncertaintySampling:
    """The unlabelled items closest to the decision threshold; each item is its own group."""

    name = "uncertainty"

    def query(
        self,
        *,
        scores: np.ndarray,
        embeddings: np.ndarray,
        labelled: np.ndarray,
        budget: int,
        rng: np.random.Generator,
        threshold: float = 0.5,
        expert_positive: np.ndarray | None = None,
    ) -> Selection:
        """Take the ``min(budget, number unlabelled)`` unlabelled items of smallest margin ``|p - threshold|``.

        Args:
            scores: ``(N,)`` float32 p(positive).
            embeddings: ``(N, d)`` unit rows; only the shape is checked.
            labelled: ``(N,)`` bool, True for items never to select.
            budget: the number of items to return at most (``>= 0``).
            rng: breaks ties between equal margins.
            threshold: the decision threshold.
            expert_positive: unused (kept for the common signature).

        Returns:
            A :class:`~curate.select.base.Selection`, smallest margin first, one group per item.

        Raises:
            ValueError: when the shapes disagree or ``budget < 0``.
        """
        check_query_args(scores, embeddings, labelled, budget)
        chosen = margin_order(scores, ~labelled, rng, threshold)[:budget]
        return Selection(chosen, np.arange(chosen.size), {"n_unlabelled": int(np.count_nonzero(~labelled))})
