"""Query strategies on small constructed pools whose boundary regions are known.

The main pool lies on the unit circle: at each of three sites a predicted-positive arc and a predicted-benign arc
meet and interleave in a known overlap arc of +-0.03 rad around the site; far away lie one positive-only and one
benign-only blob that overlap nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from curate.select import BoundaryPairs, RandomSampling, UncertaintySampling, make_strategy
from curate.select.base import Selection

SITES = (0.0, 2 * np.pi / 3, 4 * np.pi / 3)
FAR_POSITIVE, FAR_BENIGN = np.pi / 3, np.pi
OVERLAP_HALF_WIDTH = 0.03


def circle_pool(seed: int = 0, per_blob: tuple[int, ...] = (40, 40, 40), far: bool = True):
    """Unit-circle pool: returns embeddings (N, 2) float32, scores (N,), angles (N,), site (N,) (-1 = far blob)."""
    rng = np.random.default_rng(seed)
    angles, positive, site = [], [], []
    for s, (theta, n) in enumerate(zip(SITES, per_blob)):
        angles += [theta + rng.uniform(-0.09, OVERLAP_HALF_WIDTH, n), theta + rng.uniform(-OVERLAP_HALF_WIDTH, 0.09, n)]
        positive += [np.ones(n, bool), np.zeros(n, bool)]
        site += [np.full(2 * n, s)]
    if far:
        angles += [FAR_POSITIVE + rng.uniform(-0.05, 0.05, 40), FAR_BENIGN + rng.uniform(-0.05, 0.05, 40)]
        positive += [np.ones(40, bool), np.zeros(40, bool)]
        site += [np.full(80, -1)]
    angles, positive, site = np.concatenate(angles), np.concatenate(positive), np.concatenate(site)
    scores = np.where(positive, rng.uniform(0.5, 1.0, angles.size), rng.uniform(0.0, 0.5, angles.size))
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    return embeddings, scores.astype(np.float32), angles, site


def query(strategy, embeddings, scores, labelled=None, budget=12, seed=0, threshold=0.5) -> Selection:
    if labelled is None:
        labelled = np.zeros(len(scores), bool)
    return strategy.query(
        scores=scores,
        embeddings=embeddings,
        labelled=labelled,
        budget=budget,
        rng=np.random.default_rng(seed),
        threshold=threshold,
    )


def pairs_of(selection: Selection) -> list[tuple[int, int]]:
    """The two-item groups in selection order."""
    out = []
    for g in dict.fromkeys(selection.groups.tolist()):
        members = selection.indices[selection.groups == g]
        if members.size == 2:
            out.append((int(members[0]), int(members[1])))
    return out


def greedy_matching(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Brute force: all (a, b) distances, closest first, each item used once."""
    d = np.linalg.norm(x[a][:, None, :].astype(np.float64) - x[b][None, :, :], axis=2)
    used_a, used_b, out = set(), set(), []
    for flat in np.argsort(d, axis=None, kind="stable"):
        i, j = divmod(int(flat), b.size)
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((int(a[i]), int(b[j])))
    return out


def angular_distance(angles: np.ndarray, theta: float) -> np.ndarray:
    return np.abs((angles - theta + np.pi) % (2 * np.pi) - np.pi)


# ---------------------------------------------------------------- boundary pairs


def test_pairs_are_cross_label_in_the_overlap_and_never_labelled():
    x, p, angles, site = circle_pool()
    labelled = np.zeros(len(p), bool)
    near = np.flatnonzero((site >= 0) & (angular_distance(angles, 0.0) < OVERLAP_HALF_WIDTH))
    labelled[near[::2]] = True  # half of site 0's overlap arc already has expert labels
    # the default near-duplicate distance (0.05) is wider than this toy overlap arc; see the near-duplicate test
    sel = query(BoundaryPairs(clusters_per_label=4, near_duplicate_distance=0.001), x, p, labelled, budget=12)

    assert len(sel.indices) == 12 and sel.info["fallback"] == 0
    assert not labelled[sel.indices].any()  # (d)
    pairs = pairs_of(sel)
    assert len(pairs) == 6
    for a, b in pairs:  # (a) one predicted positive and one predicted benign, positive first
        assert p[a] >= 0.5 > p[b]
    chosen = sel.indices
    assert (site[chosen] >= 0).all()  # (e) never in the far blobs ...
    centre = np.array(SITES)[site[chosen]]
    assert (angular_distance(angles[chosen], centre) < 2 * OVERLAP_HALF_WIDTH).all()  # ... but at the boundary
    json.dumps(sel.info)
    assert sel.info["n_clusters_positive"] == 4 and sel.info["n_clusters_benign"] == 4
    assert sel.info["n_overlapping_pairs"] == 3


def test_each_pair_is_the_closest_unused_pair_of_its_cluster_pair():
    """(b) against brute force over the documented overlap region (min_candidates lowered so that it bites)."""
    x, p, angles, site = circle_pool(seed=1)
    labelled = np.zeros(len(p), bool)
    labelled[np.random.default_rng(5).choice(len(p), 20, replace=False)] = True
    strategy = BoundaryPairs(clusters_per_label=4, near_duplicate_distance=0.0)
    strategy.min_candidates = 2
    sel = query(strategy, x, p, labelled, budget=18)
    assert sel.info["fallback"] == 0

    def side(own: np.ndarray, other: np.ndarray) -> np.ndarray:
        centroid = x[other].astype(np.float64).mean(axis=0)
        centroid /= np.linalg.norm(centroid)
        radius = np.quantile(np.linalg.norm(x[other] - centroid, axis=1), strategy.radius_quantile)
        unlabelled = own[~labelled[own]]
        d = np.linalg.norm(x[unlabelled] - centroid, axis=1)
        keep = min(max(int((d < strategy.overlap_scale * radius).sum()), strategy.min_candidates), d.size)
        return np.sort(unlabelled[np.argsort(d)[:keep]])

    by_site = {s: [pair for pair in pairs_of(sel) if site[pair[0]] == s] for s in range(3)}
    for s, chosen in by_site.items():
        a = np.flatnonzero((site == s) & (p >= 0.5))
        b = np.flatnonzero((site == s) & (p < 0.5))
        a_side, b_side = side(a, b), side(b, a)
        assert a_side.size < (~labelled[a]).sum()  # the restriction is active
        assert chosen == greedy_matching(x, a_side, b_side)[: len(chosen)]
        assert len(chosen) >= 2  # (c) spread over all three cluster pairs, round-robin


def test_round_robin_spreads_over_cluster_pairs_ordered_by_size():
    x, p, _, site = circle_pool(per_blob=(30, 60, 45))
    sel = query(BoundaryPairs(clusters_per_label=4), x, p, budget=6)
    assert [int(site[a]) for a, _ in pairs_of(sel)] == [1, 2, 0]  # (c) one per cluster pair, largest first
    assert sel.info["n_cluster_pairs_used"] == 3


def test_pairs_per_cluster_pair_caps_and_fallback_fills():
    x, p, _, _ = circle_pool()
    sel = query(BoundaryPairs(clusters_per_label=4, pairs_per_cluster_pair=1), x, p, budget=12)
    assert sel.info["n_pairs_selected"] == 3 and sel.info["fallback"] == 6
    assert len(sel.indices) == 12 and len(np.unique(sel.groups)) == 9
    margins = np.abs(p - 0.5)
    free = np.setdiff1d(np.arange(len(p)), sel.indices[:6])
    assert np.allclose(np.sort(margins[sel.indices[6:]]), np.sort(margins[free])[:6])


def test_odd_budget_takes_the_smaller_margin_item_alone():
    x, p, _, _ = circle_pool()
    sel = query(BoundaryPairs(clusters_per_label=4), x, p, budget=7)
    assert len(sel.indices) == 7 and sel.info["n_pairs_selected"] == 3 and sel.info["n_single"] == 1
    assert (sel.groups == sel.groups[-1]).sum() == 1
    a, b = pairs_of(query(BoundaryPairs(clusters_per_label=4), x, p, budget=8))[3]  # the pair it was cut from
    assert sel.indices[-1] == (a if abs(p[a] - 0.5) <= abs(p[b] - 0.5) else b)


def test_near_duplicates_of_chosen_items_are_skipped():
    x, p, _, _ = circle_pool()
    x, p = np.concatenate([x, x]), np.concatenate([p, p])  # every item twice
    sel = query(BoundaryPairs(clusters_per_label=4, near_duplicate_distance=0.05), x, p, budget=12)
    paired = [i for pair in pairs_of(sel) for i in pair]
    groups = {i: g for i, g in zip(sel.indices.tolist(), sel.groups.tolist())}
    for i in paired:
        for j in paired:
            if groups[i] != groups[j]:
                assert np.linalg.norm(x[i] - x[j]) >= 0.05
    assert sel.info["n_skipped"] > 0


def test_fallback_fills_the_budget_when_nothing_overlaps():
    rng = np.random.default_rng(3)
    angles = np.concatenate([rng.uniform(-0.1, 0.1, 50), np.pi + rng.uniform(-0.1, 0.1, 50)])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    p = np.concatenate([rng.uniform(0.5, 1, 50), rng.uniform(0, 0.5, 50)]).astype(np.float32)
    sel = query(BoundaryPairs(clusters_per_label=3), x, p, budget=10)
    assert sel.info["n_overlapping_pairs"] == 0 and sel.info["fallback"] == 10
    assert set(sel.indices.tolist()) == set(np.argsort(np.abs(p - 0.5))[:10].tolist())
    assert len(np.unique(sel.groups)) == 10

    only_benign = query(BoundaryPairs(), x, p * 0.1, budget=10)  # no item predicted positive
    assert only_benign.info["n_clusters_positive"] == 0 and only_benign.info["fallback"] == 10


def test_budget_above_the_unlabelled_count_returns_all_unlabelled():
    x, p, _, _ = circle_pool(per_blob=(6, 6, 6), far=False)
    labelled = np.zeros(len(p), bool)
    labelled[::5] = True
    sel = query(BoundaryPairs(clusters_per_label=3), x, p, labelled, budget=1000)
    assert sorted(sel.indices.tolist()) == np.flatnonzero(~labelled).tolist()
    assert sel.info["n_pairs_selected"] > 0


def test_boundary_pairs_is_deterministic_given_the_seed():
    x, p, _, _ = circle_pool()
    first = query(BoundaryPairs(clusters_per_label=4), x.astype(np.float16), p, budget=15, seed=11)
    again = query(BoundaryPairs(clusters_per_label=4), x.astype(np.float16), p, budget=15, seed=11)
    assert first.indices.tolist() == again.indices.tolist()
    assert first.groups.tolist() == again.groups.tolist() and first.info == again.info


def test_lazy_matching_equals_brute_force_greedy():
    """The faiss search with a doubling depth yields exactly the greedy matching over all pairs."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a, b = np.arange(0, 45), np.arange(45, 120)
    assert list(BoundaryPairs._pairs(x, a, b)) == greedy_matching(x, a, b)
    assert list(BoundaryPairs._pairs(x, b, a)) == [(j, i) for i, j in greedy_matching(x, a, b)]


def test_empty_pool_and_zero_budget():
    x, p, _, _ = circle_pool()
    assert query(BoundaryPairs(), x, p, budget=0).indices.size == 0
    empty = query(BoundaryPairs(), x[:0], p[:0], budget=5)
    assert empty.indices.size == 0 and empty.info["fallback"] == 0


# ---------------------------------------------------------------- random and uncertainty


def test_random_sampling_draws_unique_unlabelled_items():
    x, p, _, _ = circle_pool()
    labelled = np.zeros(len(p), bool)
    labelled[:200] = True
    sel = query(RandomSampling(), x, p, labelled, budget=30)
    assert len(sel.indices) == 30 and not labelled[sel.indices].any()
    assert sel.groups.tolist() == list(range(30))
    assert sel.indices.tolist() == query(RandomSampling(), x, p, labelled, budget=30).indices.tolist()
    assert sel.indices.tolist() != query(RandomSampling(), x, p, labelled, budget=30, seed=1).indices.tolist()
    assert sorted(query(RandomSampling(), x, p, labelled, budget=999).indices.tolist()) == list(range(200, len(p)))


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_uncertainty_sampling_takes_the_smallest_margins(threshold):
    x, p, _, _ = circle_pool()
    labelled = np.zeros(len(p), bool)
    labelled[np.argsort(np.abs(p - threshold))[:3]] = True  # the three most uncertain are labelled already
    sel = query(UncertaintySampling(), x, p, labelled, budget=10, threshold=threshold)
    expected = [i for i in np.argsort(np.abs(p - threshold)) if not labelled[i]][:10]
    assert sel.indices.tolist() == expected


def test_uncertainty_breaks_ties_with_the_rng():
    x = np.tile(np.array([[1.0, 0.0]], np.float32), (50, 1))
    p = np.full(50, 0.5, np.float32)
    one, other = (query(UncertaintySampling(), x, p, budget=5, seed=s).indices.tolist() for s in (0, 1))
    assert one != other and len(set(one)) == 5


# ---------------------------------------------------------------- contract and factory


@pytest.mark.parametrize("strategy", [RandomSampling(), UncertaintySampling(), BoundaryPairs()])
def test_shape_errors(strategy):
    x, p, _, _ = circle_pool()
    ok = np.zeros(len(p), bool)
    for scores, emb, labelled, budget in [
        (p[:, None], x, ok, 5),
        (p, x[:-1], ok, 5),
        (p, x[:, 0], ok, 5),
        (p, x, ok.astype(int), 5),
        (p, x, ok[:-1], 5),
        (p, x, ok, -1),
    ]:
        with pytest.raises(ValueError):
            strategy.query(scores=scores, embeddings=emb, labelled=labelled, budget=budget, rng=np.random.default_rng(0))


def test_make_strategy():
    strategy = make_strategy("boundary-pairs", clusters_per_label=7, coverage="radius", pairs_per_cluster_pair=2)
    assert isinstance(strategy, BoundaryPairs) and strategy.name == "boundary-pairs"
    assert (strategy.clusters_per_label, strategy.coverage, strategy.pairs_per_cluster_pair) == (7, "radius", 2)
    assert isinstance(make_strategy("random", clusters_per_label=7), RandomSampling)
    assert make_strategy("uncertainty").name == "uncertainty"
    assert make_strategy("coreset", clusters_per_label=7).name == "coreset"
    with pytest.raises(ValueError, match="boundary-pairs, cluster-margin, coreset, random, typiclust, uncertainty"):
        make_strategy("entropy")
    with pytest.raises(ValueError):
        BoundaryPairs(coverage="volume")
