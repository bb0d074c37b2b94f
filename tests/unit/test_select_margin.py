"""The margin-based strategies with diversity (cluster-margin, boundary-margin), TypiClust and their geometry, on
small constructed pools whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curate.select import BoundaryMargin, ClusterMargin, TypiClust, make_strategy, strategy_parameters
from curate.select.boundary_margin import neighbourhood_mix
from curate.select.regions import nearest_centroid, nearest_neighbours, spherical_kmeans
from curate.select.typiclust import typicality


def blobs(centres: int = 6, per: int = 40, dim: int = 8, spread: float = 0.05, seed: int = 0):
    """``centres`` tight blobs of ``per`` unit vectors each; returns (x (N, dim) float32, blob id (N,))."""
    rng = np.random.default_rng(seed)
    c = np.eye(dim)[:centres] if centres <= dim else rng.normal(size=(centres, dim))  # orthogonal: well apart
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = np.repeat(c, per, axis=0) + spread * rng.normal(size=(centres * per, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(centres), per)


def query(strategy, x, p, labelled=None, budget=10, seed=0, threshold=0.5, expert_positive=None):
    labelled = np.zeros(len(p), bool) if labelled is None else labelled
    return strategy.query(scores=p.astype(np.float32), embeddings=x, labelled=labelled, budget=budget,
                          rng=np.random.default_rng(seed), threshold=threshold, expert_positive=expert_positive)


# ------------------------------------------------------------------------------------------- geometry
def test_nearest_neighbours_equal_brute_force_across_chunks(monkeypatch):
    import curate.select.regions as regions

    x, _ = blobs(centres=5, per=30, dim=6, spread=0.3, seed=2)
    monkeypatch.setattr(regions, "CHUNK", 37)  # several chunks, one of them partial
    queries = np.array([0, 5, 77, 149])
    nn, dist = nearest_neighbours(x.astype(np.float16), queries, 7)
    full = np.linalg.norm(x.astype(np.float64)[queries][:, None, :] - x.astype(np.float64)[None, :, :], axis=2)
    full[np.arange(queries.size), queries] = np.inf  # the query itself is excluded
    want = np.argsort(full, axis=1, kind="stable")[:, :7]
    assert nn.shape == (4, 7) and not (nn == queries[:, None]).any()
    assert np.allclose(np.sort(full[np.arange(4)[:, None], nn], axis=1), np.sort(full[np.arange(4)[:, None], want], axis=1),
                       atol=2e-3)
    assert np.allclose(dist, full[np.arange(4)[:, None], nn], atol=2e-3)


def test_kmeans_regions_recover_the_blobs_and_are_fixed_by_the_seed():
    x, blob = blobs()
    c1 = spherical_kmeans(x, np.arange(len(x)), 6, seed=3)
    c2 = spherical_kmeans(x, np.arange(len(x)), 6, seed=3)
    assert np.array_equal(c1, c2) and np.allclose(np.linalg.norm(c1, axis=1), 1, atol=1e-5)
    assign, dist = nearest_centroid(x, c1)
    for b in range(6):  # every blob lands in one region, and regions are distinct
        assert len(np.unique(assign[blob == b])) == 1
    assert len(np.unique(assign)) == 6 and (dist < 0.3).all()
    assert spherical_kmeans(x, np.arange(0), 6, seed=0).shape == (0, 8)


def test_neighbourhood_mix_reads_predictions_and_expert_labels():
    pred = np.array([True, True, False, False, True])
    nn = np.array([[1, 2], [0, 4], [3, 0]])
    own = pred[[0, 1, 2]]
    assert neighbourhood_mix(pred, nn, own).tolist() == [0.5, 0.0, 0.5]
    experts = np.full(5, np.nan)
    experts[4] = 0.0  # the experts say item 4 is benign, the model says positive
    assert neighbourhood_mix(pred, nn, own, experts).tolist() == [0.5, 0.5, 0.5]


def test_typicality_prefers_the_dense_centre():
    x, _ = blobs(centres=1, per=50, spread=0.05, seed=4)
    outlier = np.ones((1, 8), np.float32) / np.sqrt(8)
    x = np.concatenate([x, outlier])
    t = typicality(x, 10)
    assert t.argmin() == 50 and t.shape == (51,)


# ----------------------------------------------------------------------------------------- strategies
def test_cluster_margin_spreads_low_margin_candidates_over_regions():
    x, blob = blobs(centres=5, per=40)
    rng = np.random.default_rng(0)
    p = rng.uniform(0.0, 1.0, len(x))
    p[blob == 0] = 0.5 + rng.uniform(-0.01, 0.01, 40)  # blob 0 holds the 40 smallest margins
    sel = query(ClusterMargin(clusters=5, candidate_factor=6), x, p, budget=10)
    assert len(sel.indices) == 10 and len(np.unique(sel.indices)) == 10
    # uncertainty sampling would take all ten from blob 0; cluster-margin spreads them
    assert len(np.unique(blob[sel.indices])) >= 3
    margin = np.abs(p - 0.5)
    assert margin[sel.indices].max() <= np.sort(margin)[59] + 1e-9  # all among the 60 candidates
    json.dumps(sel.info)


def test_boundary_margin_prefers_mixed_neighbourhoods_and_spreads():
    x, blob = blobs(centres=4, per=40, spread=0.05)
    rng = np.random.default_rng(1)
    p = np.where(blob % 2 == 0, rng.uniform(0.52, 0.6, len(x)), rng.uniform(0.4, 0.48, len(x)))
    # blobs 0 and 1: the model is unsure but the labels are homogeneous (all above / all below 0.5) ...
    # ... blob 2 (positive side) and 3: interleaved predictions, the boundary runs through them
    for b in (2, 3):
        idx = np.flatnonzero(blob == b)
        p[idx] = np.where(np.arange(idx.size) % 2 == 0, rng.uniform(0.55, 0.65, idx.size),
                          rng.uniform(0.35, 0.45, idx.size))
    p[blob == 0] = rng.uniform(0.50, 0.52, 40)  # blob 0 has the very smallest margins, but no mixing
    sel = query(BoundaryMargin(clusters=4, candidate_factor=12, neighbours=8, min_mix=0.25, spread="round-robin"), x, p,
                budget=10)
    assert sel.info["n_filled_off_boundary"] == 0
    assert set(blob[sel.indices].tolist()) == {2, 3}  # uncertainty would take blob 0
    assert sel.info["n_regions_used"] == 2


def test_boundary_margin_fills_off_the_boundary_when_nothing_mixes():
    x, blob = blobs(centres=3, per=30)
    p = np.where(blob == 0, 0.7, 0.2) + np.random.default_rng(2).uniform(-0.05, 0.05, len(x))
    sel = query(BoundaryMargin(clusters=3, candidate_factor=3, min_mix=0.5), x, p, budget=9)
    assert len(sel.indices) == 9 and sel.info["n_boundary_candidates"] == 0
    assert sel.info["n_filled_off_boundary"] == 9


def test_typiclust_takes_one_typical_item_per_uncovered_cluster():
    x, blob = blobs(centres=6, per=20, spread=0.05)
    labelled = np.zeros(len(x), bool)
    labelled[np.flatnonzero(blob == 0)[0]] = True  # blob 0 is covered by a label; L + B = 6 clusters, the blobs
    sel = query(TypiClust(by_label=False), x, np.full(len(x), 0.5), labelled, budget=5)
    assert sorted(blob[sel.indices].tolist()) == [1, 2, 3, 4, 5]  # one per uncovered blob, none from blob 0
    for i in sel.indices:  # the most typical member of its blob
        members = np.flatnonzero(blob == blob[i])
        assert typicality(x[members], 20)[np.flatnonzero(members == i)[0]] >= typicality(x[members], 20).max() - 1e-9
    assert sel.info["fallback"] == 0


@pytest.mark.parametrize("name", ["cluster-margin", "boundary-margin", "typiclust"])
def test_new_strategies_keep_the_contract(name):
    x, _ = blobs(centres=3, per=10)
    p = np.random.default_rng(0).uniform(size=len(x))
    labelled = np.zeros(len(x), bool)
    labelled[::3] = True
    strategy = make_strategy(name, clusters=3, min_cluster_size=2)
    everything = query(strategy, x, p, labelled, budget=1000)
    assert sorted(everything.indices.tolist()) == np.flatnonzero(~labelled).tolist()
    assert query(strategy, x, p, labelled, budget=0).indices.size == 0
    a, b = query(strategy, x.astype(np.float16), p, labelled, budget=7, seed=4), query(
        strategy, x.astype(np.float16), p, labelled, budget=7, seed=4)
    assert a.indices.tolist() == b.indices.tolist() and not labelled[a.indices].any()
    with pytest.raises(ValueError):
        query(strategy, x[:-1], p, labelled)


def test_registry_hands_each_strategy_its_own_parameters():
    assert "min_mix" in strategy_parameters("boundary-margin") and "min_mix" not in strategy_parameters("cluster-margin")
    s = make_strategy("boundary-margin", min_mix=0.3, clusters=7, clusters_per_label=99, coverage="radius")
    assert (s.min_mix, s.clusters) == (0.3, 7)
    with pytest.raises(ValueError, match="boundary-margin, boundary-pairs, cluster-margin, coreset"):
        make_strategy("entropy")
    with pytest.raises(ValueError):
        BoundaryMargin(min_mix=1.5)


# ------------------------------------------------------------------------------------------- BADGE
def test_badge_gradient_scale_peaks_on_the_threshold_and_signs_the_predicted_label():
    from curate.select.badge import gradient_scale

    p = np.array([0.01, 0.2, 0.3, 0.31, 0.9, 0.999])
    g = gradient_scale(p, threshold=0.3)
    assert g[2] == pytest.approx(-0.5)  # on the threshold: predicted positive, the largest norm
    assert (g[:2] > 0).all() and (g[2:] < 0).all()  # predicted negatives pull up, predicted positives down
    assert np.argsort(-np.abs(g)).tolist()[:2] == [2, 3]
    assert abs(g[0]) < 0.05 and abs(g[5]) < 0.05  # certain items have (nearly) no gradient
    assert np.allclose(gradient_scale(p, 0.5), p - (p >= 0.5))  # at t = 0.5 it is the paper's p - onehot
    with pytest.raises(ValueError, match="threshold"):
        gradient_scale(p, threshold=1.0)


def test_badge_spreads_a_batch_over_uncertain_blobs_where_margin_takes_one():
    x, blob = blobs(centres=6, per=40, dim=8, spread=0.05)
    p = np.full(len(x), 0.02)
    p[blob == 0] = 0.5  # blob 0 is the most uncertain, by a hair
    p[blob == 1] = 0.45
    p[blob == 2] = 0.44
    p[blob == 3] = 0.43
    margin = query(make_strategy("uncertainty"), x, p, budget=4)
    assert set(blob[margin.indices]) == {0}
    badge = query(make_strategy("badge", candidate_multiple=40), x, p, budget=4)  # candidates: the 160 uncertain
    assert set(blob[badge.indices]) == {0, 1, 2, 3} and badge.info["n_candidates"] == 160  # one per uncertain blob
    assert blob[badge.indices[0]] == 0  # the largest gradient first
    for seed in range(5):  # with certain items among the candidates too, never two from one blob
        wide = query(make_strategy("badge"), x, p, budget=4, seed=seed)
        assert len(set(blob[wide.indices])) == 4 and wide.info["n_candidates"] == 200
    labelled = blob == 1
    again = query(make_strategy("badge"), x, p, labelled=labelled, budget=10, seed=5)
    assert not labelled[again.indices].any() and again.indices.size == 10
    # the same seed, the same batch
    assert np.array_equal(query(make_strategy("badge"), x, p, budget=4, seed=3).indices,
                          query(make_strategy("badge"), x, p, budget=4, seed=3).indices)


def test_badge_kmeans_pp_takes_the_rest_by_norm_when_every_point_coincides():
    from curate.select.badge import kmeans_pp

    pts = np.repeat(np.array([[1.0, 0.0]]), 5, axis=0) * np.array([[3], [1], [2], [1], [1]])
    pts[[1, 3, 4]] = pts[0]  # four rows equal the first (largest) one
    got = kmeans_pp(pts, 3, np.random.default_rng(0))
    assert got[0] == 0 and 2 in got.tolist() and len(set(got.tolist())) == 3
    assert kmeans_pp(pts, 0, np.random.default_rng(0)).size == 0
    with pytest.raises(ValueError, match="candidate_multiple"):
        make_strategy("badge", candidate_multiple=0.5)
