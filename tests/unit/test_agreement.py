import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from curate.agreement import cohen_kappa, kappa_with_ci, majority_vote, model_expert_kappa, pairwise_kappa


def test_cohen_kappa_matches_sklearn_and_edge_cases():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 400)
    b = np.where(rng.random(400) < 0.3, rng.integers(0, 3, 400), a)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert math.isnan(cohen_kappa([], []))
    assert cohen_kappa(["x", "x"], ["x", "x"]) == 1.0
    with pytest.raises(ValueError):
        cohen_kappa([1, 2], [1])


def test_bootstrap_interval_contains_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    widths = []
    for n in (100, 2000):
        a = rng.integers(0, 2, n)
        b = np.where(rng.random(n) < 0.15, 1 - a, a)
        est = kappa_with_ci(a, b, rng=np.random.default_rng(5), n_boot=500)
        assert est.low <= est.kappa <= est.high
        assert est.n == n
        widths.append(est.high - est.low)
    assert widths[1] < widths[0] / 2


def test_cluster_bootstrap_is_wider_when_rows_are_duplicated():
    # The same 150 items counted twice: resampling rows pretends there are 300 independent items.
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2, 150)
    b = np.where(rng.random(150) < 0.2, 1 - a, a)
    a2, b2, g = np.tile(a, 2), np.tile(b, 2), np.tile(np.arange(150), 2)
    rows = kappa_with_ci(a2, b2, rng=np.random.default_rng(1), n_boot=800)
    items = kappa_with_ci(a2, b2, rng=np.random.default_rng(1), n_boot=800, groups=g)
    assert items.kappa == pytest.approx(rows.kappa)
    assert (items.high - items.low) > 1.2 * (rows.high - rows.low)


def test_pairwise_and_model_expert_kappa():
    experts = {
        "e1": {"a": "pos", "b": "neg", "c": "pos", "d": "neg"},
        "e2": {"a": "pos", "b": "neg", "c": "neg", "d": "neg"},
        "e3": {"x": "pos"},
    }
    pw = pairwise_kappa(experts)
    assert pw["n_items"] == 4
    assert [(p["a"], p["b"]) for p in pw["pairs"]] == [("e1", "e2")]
    assert pw["mean"] == pytest.approx(cohen_kappa_score(["pos", "neg", "pos", "neg"], ["pos", "neg", "neg", "neg"]))
    pred = {"a": "pos", "b": "neg", "c": "pos", "d": "neg", "x": "neg"}
    est = model_expert_kappa(pred, experts, rng=np.random.default_rng(0), n_boot=200)
    pooled_pred = ["pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg", "neg"]
    pooled_exp = ["pos", "neg", "pos", "neg", "pos", "neg", "neg", "neg", "pos"]
    assert est.kappa == pytest.approx(cohen_kappa_score(pooled_pred, pooled_exp))
    assert est.n == 9


def test_majority_vote_with_and_without_a_tie_label():
    """(Snow et al. 2008 RTE, the real-data check of these functions: tests/integration/test_real_data.py.)"""
    votes = {
        "w1": {"a": "1", "b": "0", "c": "1", "d": "0"},
        "w2": {"a": "1", "b": "1", "c": "0"},
        "w3": {"a": "0", "b": "1"},
    }
    # a: 1,1,0 -> 1; b: 0,1,1 -> 1; c: 1,0 tie; d: 0 alone -> 0
    assert majority_vote(votes, ["0", "1"]) == {"a": "1", "b": "1", "d": "0"}
    assert majority_vote(votes, ["0", "1"], tie="0") == {"a": "1", "b": "1", "c": "0", "d": "0"}
    assert majority_vote({}, ["0", "1"]) == {}
    with pytest.raises(ValueError):
        majority_vote(votes, ["0", "1"], tie="2")
    with pytest.raises(ValueError):
        majority_vote({"w": {"a": "9"}}, ["0", "1"])
