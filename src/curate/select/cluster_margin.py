"""Cluster-Margin: the lowest-margin candidates, spread round-robin over fixed clusters of the pool.

Source: Citovsky, DeSalvo, Gentile, Karydas, Rajagopalan, Rostamizadeh and Kumar, "Batch Active Learning at Scale"
(NeurIPS 2021), Algorithm 1: cluster the pool once; each round take the ``k_m`` unlabelled items of smallest margin,
group them by cluster, sort the clusters by how many candidates they hold (smallest first) and take one random
candidate from each cluster in turn until ``k_t`` items are chosen.

Deviation, stated: the paper clusters once with hierarchical agglomerative clustering (average linkage), which needs
the pairwise distances of the whole pool (O(N^2)); here the pool is clustered with spherical k-means (faiss) into
``clusters`` regions with a fixed ``cluster_seed``, so every round of a project sees the same clusters (the paper's
"once") and a pool of millions takes seconds.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from curate.select.base import Selection, StrategySettings, check_query_args, pool_rows
from curate.select.regions import nearest_centroid, spherical_kmeans
from curate.select.uncertainty import margin_order


def round_robin(candidates: np.ndarray, region: np.ndarray, budget: int, rng: np.random.Generator, *,
                region_order: np.ndarray, within: str) -> np.ndarray:
    """Take one candidate per region in turn, regions in ``region_order``, until ``budget`` are taken.

    Args:
        candidates: ``(m,)`` positions, in preference order (used when ``within == "order"``).
        region: ``(m,)`` region id of each candidate.
        budget: items to take at most.
        rng: draws within a region when ``within == "random"``.
        region_order: the region ids, each once, in the order they are visited in every turn.
        within: ``"random"`` (the paper) or ``"order"`` (the first remaining candidate of the region).

    Returns:
        ``(min(budget, m),)`` int64 positions in the order taken.
    """
    queues = {int(r): list(candidates[region == r]) for r in region_order}
    if within == "random":
        for q in queues.values():
            rng.shuffle(q)
    out: list[int] = []
    while len(out) < min(budget, candidates.size):
        for r in region_order:
            q = queues[int(r)]
            if q:
                out.append(int(q.pop(0)))
                if len(out) == budget:
                    break
    return np.asarray(out, dtype=np.int64)


class Settings(StrategySettings):
    """``[selection.cluster-margin]``: the parameters of :class:`ClusterMargin`."""

    clusters: int = Field(default=50, ge=1)
    candidate_factor: float = Field(default=10.0, ge=1)
    cluster_seed: int = 0
    kmeans_iterations: int = Field(default=20, ge=1)


class ClusterMargin:
    """Cluster-Margin (Citovsky et al. 2021) on fixed k-means regions; each item is its own group.

    Args (keyword-only; the fields of :class:`Settings`):
        clusters: k-means regions of the whole pool (fewer when the pool is smaller).
        candidate_factor: ``k_m = ceil(candidate_factor * budget)`` lowest-margin candidates (the paper's
            ``k_m / k_t``).
        cluster_seed: fixes the regions, so they are the same in every round.
        kmeans_iterations: Lloyd iterations.

    Raises:
        ValueError: a parameter out of range.
    """

    name = "cluster-margin"

    def __init__(self, *, clusters: int = 50, candidate_factor: float = 10.0, cluster_seed: int = 0,
                 kmeans_iterations: int = 20) -> None:
        if clusters < 1 or kmeans_iterations < 1 or candidate_factor < 1:
            raise ValueError("need clusters >= 1, kmeans_iterations >= 1 and candidate_factor >= 1")
        self.clusters = clusters
        self.candidate_factor = candidate_factor
        self.cluster_seed = cluster_seed
        self.kmeans_iterations = kmeans_iterations

    def query(self, *, scores: np.ndarray, embeddings: np.ndarray, labelled: np.ndarray, budget: int,
              rng: np.random.Generator, threshold: float = 0.5, expert_positive: np.ndarray | None = None) -> Selection:
        """Choose ``min(budget, number unlabelled)`` items: low margin ``|p - threshold|``, diverse regions.

        Args:
            scores: ``(N,)`` float32 p(positive).
            embeddings: ``(N, d)`` unit rows (float16 memory map is fine).
            labelled: ``(N,)`` bool, True for items never to select.
            budget: the number of items to return at most (``>= 0``).
            rng: breaks margin ties and draws inside a cluster.
            threshold: the decision threshold.
            expert_positive: unused (kept for the common signature).

        Returns:
            A :class:`~curate.select.base.Selection` in pick order, one group per item; ``info`` holds the number
            of candidates and of clusters they fell in.

        Raises:
            ValueError: when the shapes disagree or ``budget < 0``.
        """
        check_query_args(scores, embeddings, labelled, budget)
        embeddings = pool_rows(embeddings)  # a memory map is read a chunk at a time, its pages released
        m = math.ceil(self.candidate_factor * budget)
        candidates = margin_order(scores, ~labelled, rng, threshold)[:m]
        if candidates.size == 0:
            return Selection(np.empty(0, np.int64), np.empty(0, np.int64), {"n_candidates": 0})
        centroids = spherical_kmeans(embeddings, np.arange(len(scores)), self.clusters, seed=self.cluster_seed,
                                     iterations=self.kmeans_iterations)
        region, _ = nearest_centroid(embeddings, centroids, candidates)
        ids, counts = np.unique(region, return_counts=True)
        order = ids[np.lexsort((rng.random(ids.size), counts))]  # fewest candidates first, ties at random
        chosen = round_robin(candidates, region, budget, rng, region_order=order, within="random")
        info = {"n_candidates": int(candidates.size), "n_regions": int(len(centroids)),
                "n_regions_with_candidates": int(ids.size),
                "max_margin_chosen": float(np.abs(scores[chosen] - threshold).max()) if chosen.size else None}
        return Selection(chosen, np.arange(chosen.size), info)
