"""Core-set selection by k-center greedy: cover the embedding space with the labelled set.

Source: Sener & Savarese 2018, "Active Learning for Convolutional Neural Networks: A Core-Set Approach" (ICLR),
Algorithm 1 (k-Center-Greedy): repeatedly add the unlabelled item whose distance to its nearest labelled or
already-chosen item is largest. A label-free, diversity-only baseline for the boundary-pairs strategy.

Geometry: Euclidean distance between L2-normalised rows, ``d(x, y)^2 = 2 - 2 cos(x, y)`` (monotone in cosine, the
same geometry as boundary-pairs). Memory: besides the embeddings, O(N) float32 state (inverse norms and the running
minimum distance); rows are converted to float32 ``_CHUNK`` at a time, so a 10,000,000 x 384 float16 pool works
without a float32 copy.

Time: one pass over the pool for the ``L`` labelled items, O(N * L * d); then each pick updates the running minimum
distances lazily, chunk by chunk: a chunk's largest running minimum is an upper bound of its true one (distances
only shrink), so the chunks are visited largest bound first, the centres picked since a chunk was last visited are
applied to it (with the same arithmetic as an eager pass, so the picks are exactly those of updating every chunk
after every pick), and the search stops at the first chunk whose bound is exact. Picks mostly touch a few chunks
instead of all ``N`` rows: O(N * L * d) plus about O(budget * chunk * d) in practice, O(N * (L + budget) * d) at worst.
"""

from __future__ import annotations

import heapq

import numpy as np

from curate.select.base import Selection, StrategySettings, check_query_args, pool_rows

_CHUNK = 32768  # rows converted to float32 at a time (48 MiB at d = 384)
_BLOCK = 4096  # labelled rows compared at a time in the initial pass


def _unit_chunk(embeddings: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` as float32 unit rows ``(stop - start, d)`` (zero rows stay zero)."""
    x = np.array(embeddings[start:stop], dtype=np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1), 1e-12)[:, None]
    return x


def _sq_dist(x: np.ndarray, x_sq: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(n, m)`` squared Euclidean distances between unit rows ``x (n, d)`` and unit rows ``centres (m, d)``, given
    ``x_sq = (x * x).sum(axis=1)``."""
    sq = x_sq[:, None] + (centres * centres).sum(axis=1)[None, :] - 2.0 * (x @ centres.T)
    return np.maximum(sq, 0.0)


class _UnitRows:
    """The pool's rows as float32 unit rows (:func:`_unit_chunk`'s values exactly), ``_CHUNK`` at a time, into one
    reused buffer; each row's norm and squared unit norm are computed on its first read and kept (8 bytes a row),
    so a later pass over the rows only converts, divides and multiplies."""

    def __init__(self, embeddings: np.ndarray) -> None:
        n, d = embeddings.shape
        self.embeddings = embeddings
        self.buf = np.empty((min(_CHUNK, n), d), dtype=np.float32)
        self.norm = np.empty(n, dtype=np.float32)
        self.sq = np.empty(n, dtype=np.float32)
        self.known = np.zeros((n + _CHUNK - 1) // _CHUNK, dtype=bool)

    def chunk(self, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``start : start + _CHUNK`` as unit rows (a view of the buffer, valid until the next call) and their
        ``(x * x).sum(axis=1)``."""
        stop = min(start + _CHUNK, self.embeddings.shape[0])
        x = self.buf[: stop - start]
        np.copyto(x, self.embeddings[start:stop])  # float16 -> float32 is exact
        j = start // _CHUNK
        if not self.known[j]:
            self.norm[start:stop] = np.maximum(np.linalg.norm(x, axis=1), 1e-12)
        x /= self.norm[start:stop][:, None]
        if not self.known[j]:
            self.sq[start:stop] = (x * x).sum(axis=1)
            self.known[j] = True
        return x, self.sq[start:stop]


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
        embeddings = pool_rows(embeddings)  # a memory map is read a chunk at a time, its pages released
        n = labelled.shape[0]
        k = min(budget, int((~labelled).sum()))
        # min_dist[i]: distance of item i to its nearest centre; -1 marks labelled/picked items (never argmax).
        min_dist = np.full(n, np.inf, dtype=np.float32)
        min_dist[labelled] = -1.0
        lab_idx = np.flatnonzero(labelled)
        rows = _UnitRows(embeddings)
        for b in range(0, lab_idx.size, _BLOCK):
            centres = _unit_chunk(embeddings[lab_idx[b : b + _BLOCK]], 0, None)
            for s in range(0, n, _CHUNK):
                d = np.sqrt(_sq_dist(*rows.chunk(s), centres).min(axis=1))
                block = min_dist[s : s + _CHUNK]
                np.minimum(block, d, out=block, where=block >= 0)
        starts = list(range(0, n, _CHUNK))
        # Per chunk: the centres picked so far that it has not seen (an index into ``picked``), and a heap of
        # (-upper bound of its largest running minimum, chunk) entries; an entry is exact when nothing is pending.
        picked: list[np.ndarray] = []
        seen = [0] * len(starts)
        stale = [False] * len(starts)  # a pick inside the chunk lowered its maximum: recompute it
        heap = [(-float(min_dist[s : s + _CHUNK].max()), j) for j, s in enumerate(starts)]
        heapq.heapify(heap)

        def farthest() -> tuple[int, float]:
            """The first position of the largest running minimum (``np.argmax(min_dist)`` of the eager updates)."""
            while True:
                bound, j = heap[0]
                if seen[j] == len(picked) and not stale[j]:
                    s = starts[j]
                    return s + int(np.argmax(min_dist[s : s + _CHUNK])), -bound
                s = starts[j]
                block = min_dist[s : s + _CHUNK]
                if seen[j] < len(picked):
                    x, x_sq = rows.chunk(s)
                    for centre in picked[seen[j] :]:
                        d = np.sqrt(_sq_dist(x, x_sq, centre)[:, 0])
                        np.minimum(block, d, out=block, where=block >= 0)
                    seen[j] = len(picked)
                stale[j] = False
                heapq.heapreplace(heap, (-float(block.max()), j))

        picks: list[int] = []
        start = "labelled"
        for _ in range(k):
            if not picks and lab_idx.size == 0:
                c, start = int(rng.choice(np.flatnonzero(~labelled))), "random"
            else:
                c, _ = farthest()
            picks.append(c)
            min_dist[c] = -1.0
            stale[c // _CHUNK] = True
            picked.append(_unit_chunk(embeddings, c, c + 1))
        # the covering radius: the largest running minimum of an unpicked unlabelled item (every chunk up to date)
        radius = farthest()[1] if k and n else None
        remaining = np.array([radius], dtype=np.float32) if radius is not None and radius >= 0 else \
            np.empty(0, np.float32)
        if not k:
            remaining = min_dist[min_dist >= 0]
        info = {
            "n_unlabelled": int(n - lab_idx.size),
            "first_centre": start if k else None,
            "covering_radius": float(remaining.max()) if remaining.size and np.isfinite(remaining.max()) else None,
        }
        return Selection(np.array(picks, dtype=np.int64), np.arange(len(picks)), info)
