"""Boundary pairs: near-identical items that the current model labels differently.

Source: Google Research 2025, "Achieving 10,000x training data reduction with high-fidelity labels", as stated in
METHOD.md section 1, steps 2-5 (cluster each predicted label, find overlapping clusters, pair the nearest
cross-label items inside each overlap, spend the budget round-robin over the overlaps).

Geometry: rows are L2-normalised in float32 and compared by Euclidean distance (monotone in cosine). Labelled items
stay in the geometry (clusters, sizes, radii); they are never paired or selected.

Tractability (documented behaviour, so that a 1,000,000 x 384 pool takes seconds and a few hundred MB besides the
embeddings):

- k-means trains on at most ``max_points_per_centroid * k`` items per label, drawn with ``rng`` (faiss' own
  default cap), seeded by k-means++; every item is then assigned to its label's nearest centroid in one chunked pass.
- Overlap region: for an overlapping pair (A, B) only the unlabelled members of A within
  ``overlap_scale * r_B`` of B's centroid are paired (and vice versa: members of B within ``overlap_scale * r_A``
  of A's centroid). When fewer than ``min_candidates`` lie there (for example none), the ``min_candidates``
  members nearest to the other centroid are used instead; at most the ``max_candidates`` nearest are kept.
- Candidate pairs are computed only for the cluster pairs the round-robin reaches, by exact faiss search of the
  smaller side's few nearest neighbours in the larger side, deepened on demand; the pairs are exactly the greedy
  closest-first matching over all pairs of the two candidate sets (never an N x N matrix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np
from pydantic import Field

from curate.runtime import import_faiss
from curate.select.base import Selection, StrategySettings, check_query_args, pool_rows
from curate.select.regions import unit_rows
from curate.select.uncertainty import margin_order

_CHUNK = 32768  # rows converted to float32 at a time (48 MiB at d = 384)
_FIRST_DEPTH = 8  # neighbours per item in the first candidate search of a cluster pair


def _split(values: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    """``values`` cut into consecutive groups of ``counts[i]`` items (no groups when ``counts`` is empty)."""
    return np.split(values, np.cumsum(counts)[:-1]) if counts.size else []


def _greedy_matching(
    embeddings: np.ndarray, query: np.ndarray, target: np.ndarray, depth: int
) -> list[tuple[int, int]]:
    """Up to ``depth`` ``(query item, target item)`` pairs of the greedy closest-first matching (each item once)
    built from each query item's ``depth`` nearest targets (exact ``IndexFlatL2`` search; ties by distance, then
    query, then target position)."""
    faiss = import_faiss()  # here, not at import: torch and faiss load only when used
    index = faiss.IndexFlatL2(embeddings.shape[1])
    index.add(unit_rows(embeddings[target]))
    dist, nn = index.search(unit_rows(embeddings[query]), depth)
    rows, nn = np.repeat(np.arange(query.size), depth), nn.ravel()
    order = np.lexsort((nn, rows, dist.ravel()))
    used_q, used_t, pairs = set(), set(), []
    for i, j in zip(rows[order].tolist(), nn[order].tolist()):
        if i in used_q or j in used_t:
            continue
        used_q.add(i)
        used_t.add(j)
        pairs.append((int(query[i]), int(target[j])))
        if len(pairs) == depth:
            break
    return pairs


class Settings(StrategySettings):
    """``[selection.boundary-pairs]``: the parameters of :class:`BoundaryPairs` (the open choices of METHOD.md
    section 1, steps 2-5)."""

    clusters_per_label: int = Field(default=20, ge=1)
    radius_quantile: float = Field(default=0.9, gt=0, le=1)
    overlap_scale: float = Field(default=1.0, gt=0)
    pairs_per_cluster_pair: int | None = Field(default=None, ge=1)
    near_duplicate_distance: float = Field(default=0.05, ge=0)
    coverage: Literal["size", "radius"] = "size"
    kmeans_iterations: int = Field(default=20, ge=1)


@dataclass
class _Clusters:
    """Clusters of both predicted labels: ids ``0..n_positive-1`` are positive, the rest benign."""

    centroids: np.ndarray  # (K, d) float32 unit rows
    sizes: np.ndarray  # (K,) int64, all members, labelled included
    radii: np.ndarray  # (K,) float64
    n_positive: int
    members: list[np.ndarray]  # per cluster: sorted int64 positions of its unlabelled members
    dist: np.ndarray  # (N, K) float32 distance of every item to every centroid


class BoundaryPairs:
    """Select cross-label nearest pairs inside overlapping clusters, round-robin over the overlaps.

    Args (keyword-only; the fields and defaults of :class:`Settings`):
        clusters_per_label: k of k-means inside each predicted label (fewer when the label has fewer items).
        radius_quantile: a cluster's radius is this quantile of its members' distances to its centroid.
        overlap_scale: clusters A, B overlap when ``||c_A - c_B|| < overlap_scale * (r_A + r_B)``; also scales
            the overlap region searched for pairs (see the module docstring).
        pairs_per_cluster_pair: at most this many pairs from one cluster pair per query (None: no cap).
        near_duplicate_distance: skip a pair when an item lies closer than this (Euclidean, unit vectors) to an
            item already selected in this query.
        coverage: the round-robin order of cluster pairs, descending: ``size`` = |A| + |B|, ``radius`` = r_A + r_B.
        kmeans_iterations: Lloyd iterations of faiss k-means.

    Raises:
        ValueError: a parameter is out of range.
    """

    name = "boundary-pairs"
    min_candidates = 64  # overlap-region fallback size per side
    max_candidates = 1024  # overlap-region cap per side (search cost is at most max_candidates**2 * d per pair)
    max_points_per_centroid = 256  # k-means training sample per centroid (faiss' default)

    def __init__(
        self,
        *,
        clusters_per_label: int = 20,
        radius_quantile: float = 0.9,
        overlap_scale: float = 1.0,
        pairs_per_cluster_pair: int | None = None,
        near_duplicate_distance: float = 0.05,
        coverage: Literal["size", "radius"] = "size",
        kmeans_iterations: int = 20,
    ) -> None:
        if clusters_per_label < 1 or kmeans_iterations < 1 or (pairs_per_cluster_pair or 1) < 1:
            raise ValueError("clusters_per_label, kmeans_iterations and pairs_per_cluster_pair must be >= 1")
        if not 0 < radius_quantile <= 1 or overlap_scale <= 0 or near_duplicate_distance < 0:
            raise ValueError("need 0 < radius_quantile <= 1, overlap_scale > 0, near_duplicate_distance >= 0")
        if coverage not in ("size", "radius"):
            raise ValueError(f"coverage must be 'size' or 'radius', got {coverage!r}")
        self.clusters_per_label = clusters_per_label
        self.radius_quantile = radius_quantile
        self.overlap_scale = overlap_scale
        self.pairs_per_cluster_pair = pairs_per_cluster_pair
        self.near_duplicate_distance = near_duplicate_distance
        self.coverage = coverage
        self.kmeans_iterations = kmeans_iterations

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
        """Choose up to ``budget`` unlabelled items as boundary pairs, filling any rest by smallest margin.

        Both items of a pair share a group id. With one slot left (odd budget) the next pair's item of smaller
        margin ``|p - threshold|`` goes in alone. When the pairs run out (no overlapping clusters, a label
        predicted for no items, every candidate used) the rest is filled by uncertainty sampling among the
        unlabelled, unselected items, each its own group; ``info["fallback"]`` counts them.

        Args:
            scores: ``(N,)`` p(positive); predicted positive when ``scores >= threshold``.
            embeddings: ``(N, d)`` float16/float32 unit rows (a memory map is fine; read in chunks).
            labelled: ``(N,)`` bool, True for items never to select.
            budget: the number of items to return at most (``>= 0``).
            rng: seeds k-means and its sample, breaks margin ties.
            threshold: the decision threshold.
            expert_positive: unused (kept for the common signature).

        Returns:
            A :class:`~curate.select.base.Selection` of ``min(budget, number unlabelled)`` items in the order
            chosen; ``info`` holds JSON-serialisable counts (clusters, overlaps, pairs, fallback).

        Raises:
            ValueError: when the shapes disagree or ``budget < 0``.
        """
        check_query_args(scores, embeddings, labelled, budget)
        embeddings = pool_rows(embeddings)  # a memory map is read a chunk at a time, its pages released
        positive = scores >= threshold
        clusters = self._cluster(embeddings, positive, labelled, rng)
        cluster_pairs = self._overlapping(clusters)
        chosen, groups, counts = self._round_robin(clusters, cluster_pairs, embeddings, scores, budget, threshold)
        free = ~labelled
        free[chosen] = False
        rest = margin_order(scores, free, rng, threshold)[: budget - len(chosen)]
        first = groups[-1] + 1 if groups else 0
        info = {
            "n_predicted_positive": int(positive.sum()),
            "n_clusters_positive": clusters.n_positive,
            "n_clusters_benign": len(clusters.sizes) - clusters.n_positive,
            "n_overlapping_pairs": len(cluster_pairs),
            **counts,
            "fallback": int(rest.size),
        }
        indices = np.concatenate([np.asarray(chosen, dtype=np.int64), rest])
        return Selection(indices, groups + list(range(first, first + rest.size)), info)

    def _centroids(self, embeddings: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(k, d)`` unit centroids of spherical k-means (k-means++ seeding) on ``items``; k = 0 when empty."""
        d = embeddings.shape[1]
        k = min(self.clusters_per_label, items.size)
        if k == 0:
            return np.empty((0, d), dtype=np.float32)
        sample = np.sort(rng.choice(items, size=min(items.size, k * self.max_points_per_centroid), replace=False))
        faiss = import_faiss()  # here, not at import: torch and faiss load only when used
        kmeans = faiss.Kmeans(
            d,
            k,
            niter=self.kmeans_iterations,
            seed=int(rng.integers(2**31 - 1)),
            spherical=True,
            min_points_per_centroid=1,
            max_points_per_centroid=self.max_points_per_centroid,
            init_method=faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS,
        )
        kmeans.train(unit_rows(embeddings[sample]))
        return unit_rows(kmeans.centroids)  # faiss leaves them unnormalised when k == sample size

    def _cluster(
        self, embeddings: np.ndarray, positive: np.ndarray, labelled: np.ndarray, rng: np.random.Generator
    ) -> _Clusters:
        """Step 2: k-means per predicted label, nearest-centroid assignment of all items, sizes and radii."""
        positive_centroids = self._centroids(embeddings, np.flatnonzero(positive), rng)
        centroids = np.concatenate([positive_centroids, self._centroids(embeddings, np.flatnonzero(~positive), rng)])
        n, k, kp = positive.size, len(centroids), len(positive_centroids)
        own_label = np.arange(k) < kp  # (K,) True for positive clusters
        dist = np.empty((n, k), dtype=np.float32)
        assign = np.empty(n, dtype=np.int64)
        for start in range(0, n, _CHUNK):
            rows = slice(start, start + _CHUNK)
            dist[rows] = np.sqrt(np.maximum(2.0 - 2.0 * (unit_rows(embeddings[rows]) @ centroids.T), 0.0))
            same = positive[rows, None] == own_label[None, :]
            assign[rows] = np.argmin(np.where(same, dist[rows], np.inf), axis=1)
        own = dist[np.arange(n), assign]
        sizes = np.bincount(assign, minlength=k)
        order = np.argsort(assign, kind="stable")
        radii = np.array([np.quantile(g, self.radius_quantile) if g.size else 0.0 for g in _split(own[order], sizes)])
        unlabelled = order[~labelled[order]]
        members = _split(unlabelled, np.bincount(assign[unlabelled], minlength=k))
        return _Clusters(centroids, sizes, radii, kp, members, dist)

    def _overlapping(self, cl: _Clusters) -> list[tuple[int, int]]:
        """Step 3: overlapping (positive, benign) cluster ids by coverage, descending (ties: positive, benign id)."""
        kp, c, r = cl.n_positive, cl.centroids, cl.radii
        between = np.linalg.norm(c[:kp, None, :] - c[None, kp:, :], axis=2)
        overlap = between < self.overlap_scale * (r[:kp, None] + r[None, kp:])
        overlap &= (cl.sizes[:kp, None] > 0) & (cl.sizes[None, kp:] > 0)
        a, b = np.nonzero(overlap)
        b = b + kp
        cover = cl.sizes[a] + cl.sizes[b] if self.coverage == "size" else r[a] + r[b]
        order = np.argsort(-cover, kind="stable")
        return list(zip(a[order].tolist(), b[order].tolist()))

    def _side(self, cl: _Clusters, own: int, other: int) -> np.ndarray:
        """Unlabelled members of cluster ``own`` in the overlap region facing ``other`` (module docstring)."""
        members = cl.members[own]
        d = cl.dist[members, other]
        inside = int(np.count_nonzero(d < self.overlap_scale * cl.radii[other]))
        keep = min(max(inside, self.min_candidates), self.max_candidates)
        return np.sort(members[np.argpartition(d, keep - 1)[:keep]] if keep < d.size else members)

    @staticmethod
    def _pairs(embeddings: np.ndarray, a: np.ndarray, b: np.ndarray) -> Iterator[tuple[int, int]]:
        """Step 4: the greedy closest-first matching of items ``a`` with items ``b`` (each item used once), lazily.

        Each item of the smaller side gets its ``depth`` nearest neighbours in the other side (exact faiss search);
        the greedy matching of these candidates (ties by position) equals the matching over all (a, b) pairs for
        its first ``depth`` pairs, since the j-th pair that matching takes is among its item's j nearest
        neighbours (every closer one was used by an earlier pair). When those are consumed, the depth doubles.
        No vectors are held between pairs.

        Yields:
            ``(a_i, b_j)`` position pairs, closest first.
        """
        swap = a.size > b.size  # query the smaller side
        query, target = (b, a) if swap else (a, b)
        done, depth = 0, _FIRST_DEPTH
        while done < query.size:
            depth = min(depth, target.size)
            pairs = _greedy_matching(embeddings, query, target, depth)
            yield from ((t, q) if swap else (q, t) for q, t in pairs[done:])
            done, depth = len(pairs), 2 * depth

    def _round_robin(
        self,
        cl: _Clusters,
        cluster_pairs: list[tuple[int, int]],
        embeddings: np.ndarray,
        scores: np.ndarray,
        budget: int,
        threshold: float,
    ) -> tuple[list[int], list[int], dict[str, int]]:
        """Step 5: one pair per cluster pair in turn until the budget is spent or the pairs run out.

        Returns:
            The chosen positions, their group ids (one per pair, or for the single item) and counts for ``info``.
        """
        chosen: list[int] = []
        groups: list[int] = []
        vectors = np.empty((budget, embeddings.shape[1]), dtype=np.float32)
        streams: dict[int, Iterator[tuple[int, int]]] = {}
        taken = [0] * len(cluster_pairs)
        skipped = n_pairs = single = 0
        active = list(range(len(cluster_pairs)))
        while active and len(chosen) < budget:
            still = []
            for c in active:
                if len(chosen) == budget:
                    break
                if c not in streams:
                    a, b = cluster_pairs[c]
                    streams[c] = self._pairs(embeddings, self._side(cl, a, b), self._side(cl, b, a))
                for a, b in streams[c]:  # its next acceptable pair; an exhausted cluster pair leaves the rotation
                    pair = unit_rows(embeddings[[a, b]])
                    close = np.sqrt(np.maximum(2.0 - 2.0 * pair @ vectors[: len(chosen)].T, 0.0))
                    if a in chosen or b in chosen or bool((close < self.near_duplicate_distance).any()):
                        skipped += 1
                        continue
                    if budget - len(chosen) == 1:
                        chosen.append(a if abs(scores[a] - threshold) <= abs(scores[b] - threshold) else b)
                        groups.append(n_pairs)
                        single = 1
                    else:
                        vectors[len(chosen) : len(chosen) + 2] = pair
                        chosen += [a, b]
                        groups += [n_pairs, n_pairs]
                        n_pairs += 1
                    taken[c] += 1
                    if self.pairs_per_cluster_pair is None or taken[c] < self.pairs_per_cluster_pair:
                        still.append(c)
                    break
            active = still
        return chosen, groups, {
            "n_cluster_pairs_searched": len(streams),
            "n_cluster_pairs_used": sum(t > 0 for t in taken),
            "n_pairs_selected": n_pairs,
            "n_single": single,
            "n_skipped": skipped,
        }
