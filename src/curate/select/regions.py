"""Geometry shared by the query strategies: spherical k-means regions and exact nearest neighbours.

Rows are L2-normalised in float32 a chunk at a time, so a float16 memory-mapped ``(N, d)`` pool never needs a float32
copy; distances are Euclidean between unit rows (``d^2 = 2 - 2 cos``, monotone in cosine).
"""

from __future__ import annotations

import numpy as np

from curate.runtime import import_faiss

CHUNK = 32768  # rows converted to float32 at a time (48 MiB at d = 384)
MAX_POINTS_PER_CENTROID = 256  # k-means training sample per centroid (faiss' default)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``(n, d)`` rows as a new float32 array of unit rows (zero rows stay zero)."""
    x = np.array(x, dtype=np.float32)
    x /= np.maximum(np.sqrt(np.einsum("ij,ij->i", x, x)), 1e-12)[:, None]
    return x


def spherical_kmeans(
    embeddings: np.ndarray, items: np.ndarray, k: int, *, seed: int, iterations: int = 20
) -> np.ndarray:
    """Centroids of spherical k-means (faiss, k-means++ seeding) on the rows ``items`` of ``embeddings``.

    At most ``MAX_POINTS_PER_CENTROID * k`` items train it (drawn with ``seed``), as faiss does by default.

    Args:
        embeddings: ``(N, d)`` float16/float32 rows.
        items: ``(n,)`` int64 positions to cluster.
        k: clusters wanted; fewer (``n``) when there are fewer items; 0 gives ``(0, d)``.
        seed: fixes the sample and the seeding.
        iterations: Lloyd iterations.

    Returns:
        ``(min(k, n), d)`` float32 unit centroids.
    """
    d = embeddings.shape[1]
    k = min(int(k), int(items.size))
    if k <= 0:
        return np.empty((0, d), dtype=np.float32)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(items, size=min(items.size, k * MAX_POINTS_PER_CENTROID), replace=False))
    faiss = import_faiss()  # here, not at import: torch and faiss load only when used (after torch, see there)
    kmeans = faiss.Kmeans(
        d, k, niter=iterations, seed=int(rng.integers(2**31 - 1)), spherical=True, min_points_per_centroid=1,
        max_points_per_centroid=MAX_POINTS_PER_CENTROID, init_method=faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS,
    )
    kmeans.train(unit_rows(embeddings[sample]))
    return unit_rows(kmeans.centroids)  # faiss leaves them unnormalised when k == sample size


def nearest_centroid(embeddings: np.ndarray, centroids: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The nearest centroid of each row (chunked).

    Args:
        embeddings: ``(N, d)`` rows.
        centroids: ``(k, d)`` unit rows, ``k >= 1``.
        rows: ``(n,)`` positions to assign (None: all ``N``).

    Returns:
        ``(n,)`` int64 centroid ids and ``(n,)`` float32 distances to them.
    """
    rows = np.arange(embeddings.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    assign = np.empty(rows.size, dtype=np.int64)
    dist = np.empty(rows.size, dtype=np.float32)
    for start in range(0, rows.size, CHUNK):
        part = rows[start : start + CHUNK]
        sims = unit_rows(embeddings[part]) @ centroids.T
        best = np.argmax(sims, axis=1)
        assign[start : start + part.size] = best
        dist[start : start + part.size] = np.sqrt(np.maximum(2.0 - 2.0 * sims[np.arange(part.size), best], 0.0))
    return assign, dist


def nearest_neighbours(embeddings: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest pool rows of each query row, the query itself excluded.

    The pool is searched a chunk at a time with faiss (``IndexFlatIP`` on unit rows) and the partial results are
    merged, so memory stays O(queries * k + CHUNK * d) whatever ``N`` is. Time O(N * n * d).

    Args:
        embeddings: ``(N, d)`` rows (the whole pool).
        queries: ``(n,)`` int64 positions into ``embeddings``.
        k: neighbours per query (``1 <= k < N``).

    Returns:
        ``(n, k)`` int64 neighbour positions, nearest first, and ``(n, k)`` float32 distances.
    """
    queries = np.asarray(queries, dtype=np.int64)
    n_pool = embeddings.shape[0]
    k = min(int(k), n_pool - 1)
    q = unit_rows(embeddings[queries])
    best_sim = np.full((queries.size, k + 1), -np.inf, dtype=np.float32)
    best_idx = np.full((queries.size, k + 1), -1, dtype=np.int64)
    faiss = import_faiss()  # here, not at import: torch and faiss load only when used (after torch, see there)
    for start in range(0, n_pool, CHUNK):
        block = unit_rows(embeddings[start : start + CHUNK])
        index = faiss.IndexFlatIP(block.shape[1])
        index.add(block)
        sim, idx = index.search(q, min(k + 1, block.shape[0]))
        sim = np.concatenate([best_sim, sim], axis=1)
        idx = np.concatenate([best_idx, np.where(idx >= 0, idx + start, -1)], axis=1)
        order = np.argsort(-sim, axis=1, kind="stable")[:, : k + 1]
        best_sim = np.take_along_axis(sim, order, axis=1)
        best_idx = np.take_along_axis(idx, order, axis=1)
    # drop the query itself (or, for exact duplicates, whichever copy comes first: it is at distance 0 either way)
    is_self = best_idx == queries[:, None]
    drop = np.where(is_self.any(axis=1), np.argmax(is_self, axis=1), k)
    keep = np.ones_like(is_self)
    keep[np.arange(queries.size), drop] = False
    nn = best_idx[keep].reshape(queries.size, k)
    dist = np.sqrt(np.maximum(2.0 - 2.0 * best_sim[keep].reshape(queries.size, k), 0.0))
    return nn, dist.astype(np.float32)
