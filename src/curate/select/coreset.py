"""Core-set selection by k-center greedy: cover the embedding space with the labelled set.

Source: Sener & Savarese 2018, "Active Learning for Convolutional Neural Networks: A Core-Set Approach" (ICLR),
Algorithm 1 (k-Center-Greedy): repeatedly add the unlabelled item whose distance to its nearest labelled or
already-chosen item is largest. A label-free, diversity-only baseline for the boundary-pairs strategy.

Geometry: Euclidean distance between L2-normalised rows, ``d(x, y)^2 = 2 - 2 cos(x, y)`` (monotone in cosine, the
same geometry as boundary-pairs). Memory: besides the embeddings, O(N) float32 state (inverse norms and the running
minimum distance); rows are converted to float32 ``_CHUNK`` at a time, so a 1,000,000 x 384 float16 pool works
without a float32 copy. Time: O(N * (L + budget) * d) for ``L`` labelled items.
"""

from __future__ import annotations

import numpy as np

from curate.select.base import Selection, StrategySettings, check_query_args

_CHUNK = 32768  # rows converted to float32 at a time (48 MiB at d = 384)
_BLOCK = 4096  # labelled rows compared at a time in the initial pass


def _unit_chunk(embeddings: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` as float32 unit rows ``(stop - start, d)`` (zero rows stay zero)."""
    x = np.array(embeddings[start:stop], dtype=np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1), 1e-12)[:, None]
    return x


def _sq_dist(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(n, m)`` squared Euclidean distances between unit rows ``x (n, d)`` and unit rows ``centres (m, d)``."""
    sq = (x * x).sum(axis=1)[:, None] + (centres * centres).sum(axis=1)[None, :] - 2.0 * (x @ centres.T)
    return np.maximum(sq, 0.0)


class Settings(StrategySettings):
    """Core-set greedy takes no settings (its ``[selection.coreset]`` table is empty)."""


class CoreSetGreedy:
    """k-center greedy (Sener & Savarese 2018) over unit embeddings; each item is its own group.

    Scores are ignored: the selection depends only on the geometry and the labelled set (and on ``rng`` for the
    first pick when nothing is labelled). Ties between equal distances go to the lowest position.
    """

    name = "coreset"

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
        """Choose ``min(budget, number unlabelled)`` items, each the farthest from the labelled + chosen set.

        Args:
            scores: ``(N,)`` p(positive); only its shape is used.
            embeddings: ``(N, d)`` float16/float32 rows (normalised here).
            labelled: ``(N,)`` bool, True for items never to select (they are the initial centres).
            budget: the number of items to return at most (``>= 0``).
            rng: draws the first centre when nothing is labelled (no other randomness).
            threshold: unused (kept for the common signature).
            expert_positive: unused (kept for the common signature).

        Returns:
            A :class:`~curate.select.base.Selection` in pick order; ``info`` holds the covering radius (the largest
            remaining min-distance of an unpicked unlabelled item) after the picks and how the first centre was chosen.

        Raises:
            ValueError: when the shapes disagree or ``budget < 0``.
        """
        check_query_args(scores, embeddings, labelled, budget)
        n = labelled.shape[0]
        k = min(budget, int((~labelled).sum()))
        # min_dist[i]: distance of item i to its nearest centre; -1 marks labelled/picked items (never argmax).
        min_dist = np.full(n, np.inf, dtype=np.float32)
        min_dist[labelled] = -1.0
        lab_idx = np.flatnonzero(labelled)
        for b in range(0, lab_idx.size, _BLOCK):
            centres = _unit_chunk(embeddings[lab_idx[b : b + _BLOCK]], 0, None)
            for s in range(0, n, _CHUNK):
                d = np.sqrt(_sq_dist(_unit_chunk(embeddings, s, s + _CHUNK), centres).min(axis=1))
                block = min_dist[s : s + _CHUNK]
                np.minimum(block, d, out=block, where=block >= 0)
        picks: list[int] = []
        start = "labelled"
        for _ in range(k):
            if not picks and lab_idx.size == 0:
                c, start = int(rng.choice(np.flatnonzero(~labelled))), "random"
            else:
                c = int(np.argmax(min_dist))
            picks.append(c)
            min_dist[c] = -1.0
            centre = _unit_chunk(embeddings, c, c + 1)
            for s in range(0, n, _CHUNK):
                d = np.sqrt(_sq_dist(_unit_chunk(embeddings, s, s + _CHUNK), centre)[:, 0])
                block = min_dist[s : s + _CHUNK]
                np.minimum(block, d, out=block, where=block >= 0)
        remaining = min_dist[min_dist >= 0]
        info = {
            "n_unlabelled": int(n - lab_idx.size),
            "first_centre": start if k else None,
            "covering_radius": float(remaining.max()) if remaining.size and np.isfinite(remaining.max()) else None,
        }
        return Selection(np.array(picks, dtype=np.int64), np.arange(len(picks)), info)
