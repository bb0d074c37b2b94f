"""TypiClust: typical items of uncovered clusters, for a first round with no useful model.

Source: Hacohen, Dekel and Weinshall, "Active Learning on a Budget: Opposite Strategies Suit High and Low Budgets"
(ICML 2022), Algorithm 1 (TPC_RP): cluster the pool into ``L + B`` clusters (``L`` labelled, ``B`` the budget); take
the ``B`` largest clusters that hold no labelled item; in each, choose the item of highest *typicality*, the inverse
of its mean distance to its ``K`` nearest neighbours in the cluster (``K = 20`` there). Clusters with fewer than
``min_cluster_size`` items are skipped. Scores are not used: at a low budget with a weak scout, typical and diverse
items teach more than uncertain ones.

Stratified by predicted label (``by_label``, after the source's step 2, "cluster each predicted label separately"):
the budget is split evenly between the items the current model predicts positive (``scores >= threshold``) and the
rest, and each part is chosen by TypiClust inside its predicted label. With a rare positive class this labels far
more positives in the first round than plain TypiClust (whose typical items are mostly benign), while staying typical
and diverse.

Tractability: k-means is faiss' spherical k-means on a sample (``regions.spherical_kmeans``); typicality inside a
cluster of more than ``max_members`` items is computed on a random ``max_members`` of them (the pick is then the most
typical of that sample).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from curate.select.base import Selection, StrategySettings, check_query_args, pool_rows
from curate.select.regions import nearest_centroid, spherical_kmeans, unit_rows
from curate.select.uncertainty import margin_order


def typicality(x: np.ndarray, k: int) -> np.ndarray:
    """``(n,)`` typicality of unit rows ``x (n, d)``: 1 / mean Euclidean distance to the ``k`` nearest other rows."""
    n = x.shape[0]
    if n < 2:
        return np.ones(n)
    k = min(k, n - 1)
    d = np.sqrt(np.maximum(2.0 - 2.0 * (x @ x.T), 0.0))
    np.fill_diagonal(d, np.inf)
    nearest = np.partition(d, k - 1, axis=1)[:, :k]
    return 1.0 / np.maximum(nearest.mean(axis=1), 1e-9)


class Settings(StrategySettings):
    """``[selection.typiclust]``: the parameters of :class:`TypiClust` (also when it is the cold start)."""

    typiclust_neighbours: int = Field(default=20, ge=1)
    min_cluster_size: int = Field(default=5, ge=1)
    by_label: bool = True  # half the budget inside each predicted label
    kmeans_iterations: int = Field(default=20, ge=1)


class TypiClust:
    """TypiClust (Hacohen et al. 2022); each item is its own group.

    Args (keyword-only; the fields of :class:`Settings`):
        typiclust_neighbours: ``K`` of typicality.
        min_cluster_size: clusters smaller than this are not used.
        max_clusters: at most this many k-means clusters (``L + B`` is capped here).
        max_members: typicality is computed on at most this many members of a cluster.
        kmeans_iterations: Lloyd iterations.
        by_label: split the budget evenly between the predicted labels (see the module docstring).

    Raises:
        ValueError: a parameter out of range.
    """

    name = "typiclust"

    def __init__(self, *, typiclust_neighbours: int = 20, min_cluster_size: int = 5, max_clusters: int = 2000,
                 max_members: int = 2000, kmeans_iterations: int = 20, by_label: bool = True) -> None:
        if min(typiclust_neighbours, min_cluster_size, max_clusters, max_members, kmeans_iterations) < 1:
            raise ValueError("typiclust parameters must all be >= 1")
        self.k = typiclust_neighbours
        self.min_cluster_size = min_cluster_size
        self.max_clusters = max_clusters
        self.max_members = max_members
        self.kmeans_iterations = kmeans_iterations
        self.by_label = by_label

    def query(self, *, scores: np.ndarray, embeddings: np.ndarray, labelled: np.ndarray, budget: int,
              rng: np.random.Generator, threshold: float = 0.5, expert_positive: np.ndarray | None = None) -> Selection:
        """Choose ``min(budget, number unlabelled)`` typical items of the largest uncovered clusters.

        When fewer usable uncovered clusters exist than the budget, the rest is filled by smallest margin
        ``|p - threshold|`` (``info["fallback"]``).

        Args:
            scores: ``(N,)`` p(positive); used only by the fallback.
            embeddings: ``(N, d)`` unit rows.
            labelled: ``(N,)`` bool, True for items never to select (they mark clusters as covered).
            budget: the number of items to return at most (``>= 0``).
            rng: seeds k-means and the member samples, breaks ties.
            threshold: the fallback's decision threshold.
            expert_positive: unused (kept for the common signature).

        Returns:
            A :class:`~curate.select.base.Selection` in pick order (largest cluster first), one group per item.

        Raises:
            ValueError: when the shapes disagree or ``budget < 0``.
        """
        check_query_args(scores, embeddings, labelled, budget)
        embeddings = pool_rows(embeddings)  # a memory map is read a chunk at a time, its pages released
        n = len(scores)
        free = ~labelled
        budget = min(budget, int(free.sum()))
        if budget == 0:
            return Selection(np.empty(0, np.int64), np.empty(0, np.int64), {"n_clusters": 0, "fallback": 0})
        if self.by_label:
            positive = scores >= threshold
            parts = [np.flatnonzero(positive), np.flatnonzero(~positive)]
            n_free = [int(free[p].sum()) for p in parts]
            half = min(budget // 2 + budget % 2, n_free[0])  # the positive side gets the odd item
            budgets = [half, min(budget - half, n_free[1])]
        else:
            parts, budgets = [np.arange(n)], [budget]
        chosen: list[int] = []
        info = {"n_clusters": 0, "n_uncovered_usable": 0}
        for items, b in zip(parts, budgets):
            picked, k, usable = self._typical(embeddings, items, labelled, b, rng)
            chosen += picked
            info["n_clusters"] += k
            info["n_uncovered_usable"] += usable
        rest = free.copy()
        rest[chosen] = False
        fill = margin_order(scores, rest, rng, threshold)[: budget - len(chosen)]
        idx = np.concatenate([np.asarray(chosen, dtype=np.int64), fill])
        info.update(fallback=int(fill.size), by_label=self.by_label)
        if self.by_label:
            info["budget_positive_side"] = budgets[0]
        return Selection(idx, np.arange(idx.size), info)

    def _typical(self, embeddings: np.ndarray, items: np.ndarray, labelled: np.ndarray, budget: int,
                 rng: np.random.Generator) -> tuple[list[int], int, int]:
        """TPC_RP inside ``items``: the most typical member of each of the ``budget`` largest uncovered clusters.

        Returns:
            The chosen positions, the number of clusters and of usable uncovered clusters.
        """
        if budget <= 0 or items.size == 0:
            return [], 0, 0
        k = min(int(labelled[items].sum()) + budget, self.max_clusters, items.size)
        centroids = spherical_kmeans(embeddings, items, k, seed=int(rng.integers(2**31 - 1)),
                                     iterations=self.kmeans_iterations)
        assign, _ = nearest_centroid(embeddings, centroids, items)
        sizes = np.bincount(assign, minlength=len(centroids))
        covered = np.zeros(len(centroids), dtype=bool)
        covered[assign[labelled[items]]] = True
        usable = np.flatnonzero(~covered & (sizes >= self.min_cluster_size))
        usable = usable[np.lexsort((rng.random(usable.size), -sizes[usable]))]  # largest first, ties at random
        chosen: list[int] = []
        for c in usable:
            if len(chosen) == budget:
                break
            members = items[assign == c]
            if members.size > self.max_members:
                members = np.sort(rng.choice(members, size=self.max_members, replace=False))
            typ = typicality(unit_rows(embeddings[members]), self.k)
            typ[labelled[members]] = -np.inf
            if np.isfinite(typ).any():
                chosen.append(int(members[int(np.argmax(typ))]))
        return chosen, int(len(centroids)), int(usable.size)
