"""Random sampling: the baseline every strategy is compared against (METHOD.md section 1, "Baselines")."""

from __future__ import annotations

import numpy as np

from curate.select.base import Selection, StrategySettings, check_query_args


class Settings(StrategySettings):
    """Random sampling takes no settings (its ``[selection.random]`` table is empty)."""


class RandomSampling:
    """Uniform sampling without replacement among the unlabelled pool items; each item is its own group."""

    name = "random"

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
        """Draw ``min(budget, number unlabelled)`` unlabelled items uniformly at random.

        Args:
            scores: ``(N,)`` p(positive); only its shape is used.
            embeddings: ``(N, d)`` unit rows; only the shape is checked.
            labelled: ``(N,)`` bool, True for items never to select.
            budget: the number of items to return at most (``>= 0``).
            rng: the only source of randomness.
            threshold: unused (kept for the common signature).
            expert_positive: unused (kept for the common signature).

        Returns:
            A :class:`~curate.select.base.Selection` in draw order, one group per item.

        Raises:
            ValueError: when the shapes disagree or ``budget < 0``.
        """
        check_query_args(scores, embeddings, labelled, budget)
        pool = np.flatnonzero(~labelled)
        chosen = rng.choice(pool, size=min(budget, pool.size), replace=False)
        return Selection(chosen, np.arange(chosen.size), {"n_unlabelled": int(pool.size)})
