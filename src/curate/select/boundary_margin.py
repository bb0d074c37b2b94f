"""Boundary-margin: low-margin items where the labels around them actually mix.

The idea of boundary-case curation (Google Research 2025, METHOD.md section 1: "overlap marks a region where the
model's labels are confused") with a test that can say no. The source's radius-sum overlap rule marks every cluster
pair as overlapping in 384 dimensions (distances concentrate; METHOD.md section 5), so here the boundary is read off
each candidate's own neighbourhood instead:

1. candidates: the ``ceil(candidate_factor * budget)`` unlabelled items of smallest margin ``|p - threshold|``
   (uncertainty sampling, Lewis & Gale 1994);
2. mixing: each candidate's ``neighbours`` nearest pool items (exact search); a neighbour's label is the experts'
   majority where it has expert labels, else the model's prediction; the candidate's *mix* is the share of
   neighbours whose label differs from the candidate's predicted label (0: a homogeneous region, the model is merely
   unsure; near 0.5: the labels interleave, the boundary runs through here; expert labels that contradict the model
   raise it where the model is known to be wrong);
3. boundary candidates are those with ``mix >= min_mix``; they go first, in margin order, and the others (margin
   order) only fill what is left;
4. ``spread`` (optional): ``none`` keeps margin order (the default); ``round-robin`` visits fixed k-means regions of
   the pool in turn, one candidate each, the region with most boundary candidates first (after Cluster-Margin,
   Citovsky et al. 2021); ``proportional`` gives each region a share of the budget in proportion to its boundary
   candidates. Measured with the proxy student (benchmarks/results/label_efficiency): round-robin costs positives on
   a rare class (5 % positives: 11-19 % of the curated set against 33 % in margin order) and test kappa with them;
   proportional helped on Webis (+0.01 to +0.02 over ``none``) and cost a little on the rare classes, so the
   default is ``none``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from curate.select.base import Selection, StrategySettings, check_query_args, pool_rows
from curate.select.cluster_margin import round_robin
from curate.select.regions import nearest_centroid, nearest_neighbours, spherical_kmeans
from curate.select.uncertainty import margin_order


def neighbourhood_mix(pred: np.ndarray, neighbours: np.ndarray, own: np.ndarray,
                      expert_positive: np.ndarray | None = None) -> np.ndarray:
    """Share of each candidate's neighbours whose label differs from the candidate's predicted label.

    Args:
        pred: ``(N,)`` bool predicted-positive of every pool item.
        neighbours: ``(m, k)`` int64 neighbour positions of ``m`` candidates.
        own: ``(m,)`` bool predicted-positive of the candidates.
        expert_positive: ``(N,)`` float, the experts' positive vote share of labelled items, NaN elsewhere (None:
            predictions only). Where finite it replaces the prediction (positive when ``>= 0.5``).

    Returns:
        ``(m,)`` float64 in ``[0, 1]``.
    """
    label = pred
    if expert_positive is not None:
        known = np.isfinite(expert_positive)
        label = np.where(known, np.nan_to_num(expert_positive) >= 0.5, pred)
    return (label[neighbours] != own[:, None]).mean(axis=1) if neighbours.size else np.zeros(own.size)


class Settings(StrategySettings):
    """``[selection.boundary-margin]``: the parameters of :class:`BoundaryMargin`."""

    clusters: int = Field(default=50, ge=1)
    candidate_factor: float = Field(default=10.0, ge=1)
    neighbours: int = Field(default=10, ge=1)
    min_mix: float = Field(default=0.1, ge=0, le=1)
    spread: Literal["round-robin", "proportional", "none"] = "none"
    cluster_seed: int = 0
    kmeans_iterations: int = Field(default=20, ge=1)


class BoundaryMargin:
    """Low-margin items in mixed neighbourhoods (optionally spread over regions); each item is its own group.

    Args (keyword-only; the fields of :class:`Settings`):
        clusters: k-means regions of the whole pool (``spread`` other than ``none``).
        candidate_factor: ``ceil(candidate_factor * budget)`` lowest-margin candidates.
        neighbours: ``k`` of the neighbourhood that measures mixing.
        min_mix: a candidate is on the boundary when at least this share of its neighbours carry the other label.
        spread: ``none``, ``round-robin`` or ``proportional`` (see the module docstring).
        cluster_seed: fixes the regions, so they are the same in every round.
        kmeans_iterations: Lloyd iterations.

    Raises:
        ValueError: a parameter out of range.
    """

    name = "boundary-margin"

    def __init__(self, *, clusters: int = 50, candidate_factor: float = 10.0, neighbours: int = 10,
                 min_mix: float = 0.1, spread: str = "none", cluster_seed: int = 0,
                 kmeans_iterations: int = 20) -> None:
        if clusters < 1 or kmeans_iterations < 1 or neighbours < 1 or candidate_factor < 1:
            raise ValueError("need clusters, kmeans_iterations, neighbours >= 1 and candidate_factor >= 1")
        if not 0 <= min_mix <= 1:
            raise ValueError(f"min_mix must be in [0, 1], got {min_mix}")
        if spread not in ("round-robin", "proportional", "none"):
            raise ValueError(f"spread must be round-robin, proportional or none, got {spread!r}")
        self.spread = spread
        self.clusters = clusters
        self.candidate_factor = candidate_factor
        self.neighbours = neighbours
        self.min_mix = min_mix
        self.cluster_seed = cluster_seed
        self.kmeans_iterations = kmeans_iterations

    def query(self, *, scores: np.ndarray, embeddings: np.ndarray, labelled: np.ndarray, budget: int,
              rng: np.random.Generator, threshold: float = 0.5, expert_positive: np.ndarray | None = None) -> Selection:
        """Choose ``min(budget, number unlabelled)`` items (see the module docstring).

        Args:
            scores: ``(N,)`` float32 p(positive); predicted positive when ``>= threshold``.
            embeddings: ``(N, d)`` unit rows (float16 memory map is fine; searched in chunks).
            labelled: ``(N,)`` bool, True for items never to select.
            budget: the number of items to return at most (``>= 0``).
            rng: breaks margin ties and ties between regions.
            threshold: the decision threshold.
            expert_positive: ``(N,)`` float experts' positive vote share of labelled items, NaN elsewhere, or None.

        Returns:
            A :class:`~curate.select.base.Selection` in pick order, one group per item; ``info`` counts the
            candidates, the boundary candidates, the regions used and the mean mix of the chosen items.

        Raises:
            ValueError: when the shapes disagree, ``budget < 0``, or ``expert_positive`` is not ``(N,)``.
        """
        check_query_args(scores, embeddings, labelled, budget)
        embeddings = pool_rows(embeddings)  # a memory map is read a chunk at a time, its pages released
        if expert_positive is not None and np.shape(expert_positive) != scores.shape:
            raise ValueError(f"expert_positive must be ({scores.size},), got {np.shape(expert_positive)}")
        m = math.ceil(self.candidate_factor * budget)
        candidates = margin_order(scores, ~labelled, rng, threshold)[:m]
        if candidates.size == 0:
            return Selection(np.empty(0, np.int64), np.empty(0, np.int64), {"n_candidates": 0})
        pred = scores >= threshold
        nn, _ = nearest_neighbours(embeddings, candidates, self.neighbours)
        mix = neighbourhood_mix(pred, nn, pred[candidates], expert_positive)
        on_boundary = mix >= self.min_mix
        region = np.zeros(candidates.size, dtype=np.int64)
        if self.spread != "none":
            centroids = spherical_kmeans(embeddings, np.arange(len(scores)), self.clusters, seed=self.cluster_seed,
                                         iterations=self.kmeans_iterations)
            region, _ = nearest_centroid(embeddings, centroids, candidates)
        chosen = self._spread(candidates[on_boundary], region[on_boundary], budget, rng)
        if chosen.size < budget:  # too few boundary candidates: the rest by margin
            chosen = np.concatenate([chosen, candidates[~on_boundary][: budget - chosen.size]])
        pos = {int(c): j for j, c in enumerate(candidates)}
        chosen_mix = mix[[pos[int(c)] for c in chosen]]
        info = {"n_candidates": int(candidates.size), "n_boundary_candidates": int(on_boundary.sum()),
                "n_regions_used": int(np.unique(region[[pos[int(c)] for c in chosen]]).size) if chosen.size else 0,
                "mean_mix_chosen": float(chosen_mix.mean()) if chosen.size else None,
                "n_filled_off_boundary": int((chosen_mix < self.min_mix).sum())}
        return Selection(chosen, np.arange(chosen.size), info)

    def _spread(self, candidates: np.ndarray, region: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
        """Choose ``budget`` of the margin-ordered ``candidates``: ``round-robin`` over regions (most candidates
        first, ties at random), ``proportional`` (each region a share of the budget in proportion to its candidates,
        largest remainders first), or ``none`` (margin order)."""
        if candidates.size == 0 or budget <= 0:
            return np.empty(0, np.int64)
        if self.spread == "none":
            return candidates[:budget]
        ids, counts = np.unique(region, return_counts=True)
        order = ids[np.lexsort((rng.random(ids.size), -counts))]
        if self.spread == "round-robin":
            return round_robin(candidates, region, budget, rng, region_order=order, within="order")
        want = min(budget, candidates.size) * counts / counts.sum()
        quota = np.floor(want).astype(int)
        extra = np.argsort(-(want - quota), kind="stable")[: min(budget, candidates.size) - quota.sum()]
        quota[extra] += 1
        left = {int(r): int(q) for r, q in zip(ids, quota)}
        out = []
        for c, r in zip(candidates.tolist(), region.tolist()):
            if left[r] > 0:
                out.append(c)
                left[r] -= 1
        return np.asarray(out, dtype=np.int64)
