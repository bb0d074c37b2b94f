"""The evaluate step's figures (curate.evaluation) and the scout and oracle factories on constructed inputs: no
model, no shared data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curate import evaluation
from curate.config import OracleConfig, ScoutConfig
from curate.models.scout import EmbeddingScout, make_embedding_scout
from curate.oracle import SimulatedExperts, WebOracle, make_oracle

LABELS = ["benign", "positive"]


def test_metrics_on_test_give_kappa_with_interval_and_auroc():
    gold = ["positive", "benign", "benign", "positive", "benign", "benign"]
    y = np.array([g == "positive" for g in gold])
    p = np.array([0.9, 0.2, 0.4, 0.7, 0.1, 0.6])
    m = evaluation.metrics_on_test(["positive" if v >= 0.5 else "benign" for v in p], gold, y, p,
                                   np.random.default_rng(0), n_boot=50)
    assert m["kappa_test"]["n"] == 6 and m["kappa_test"]["low"] <= m["kappa_test"]["kappa"] <= m["kappa_test"]["high"]
    assert m["auroc_test"] == 1.0  # every positive scored above every benign item
    assert math.isnan(evaluation.auroc(np.array([True, True]), np.array([0.2, 0.3])))  # one class: undefined


def test_served_model_and_eval_kappa():
    items = [f"i{k}" for k in range(30)]
    truth = {i: LABELS[k % 3 == 0] for k, i in enumerate(items)}
    experts = {"e1": truth}
    wrong = {i: (v if k % 3 else LABELS[v == "benign"]) for k, (i, v) in enumerate(truth.items())}
    assert evaluation.eval_kappa(truth, experts) == 1.0 and evaluation.eval_kappa(wrong, experts) < 0.5
    by_model = {0: {"kappa": 1.0, "one_class": None, "pred": truth}, 1: {"kappa": 0.3, "one_class": None, "pred": wrong}}
    kw = dict(confidence=0.9, n_boot=200)
    served = evaluation.served_model(1, by_model, experts, np.random.default_rng(0), keep_best=True, **kw)
    assert served["round"] == 0 and served["p_better"][0] >= 0.9
    assert evaluation.served_model(1, by_model, experts, np.random.default_rng(0), keep_best=False, **kw) == {
        "round": 1, "p_better": {}}
    assert evaluation.served_model(1, by_model, {}, np.random.default_rng(0), keep_best=True, **kw)["round"] == 1


def test_crowd_metrics():
    crowd = {"a": "positive", "b": "benign", "c": "benign"}
    gold = {"a": "positive", "b": "benign", "c": "positive"}
    experts = {"e1": {"a": "positive", "b": "benign"}}
    m = evaluation.crowd_metrics(crowd, gold, ["a", "b", "c"], experts, np.random.default_rng(0), n_boot=20)
    assert m["crowd_gold_kappa_test"]["n"] == 3 and m["crowd_expert_kappa"]["kappa"] == 1.0
    assert set(evaluation.crowd_metrics(crowd, None, [], experts, np.random.default_rng(0), n_boot=20)) == {
        "crowd_expert_kappa"}


def test_oracle_factory():
    gold = {"a": "positive", "b": "benign"}
    assert isinstance(make_oracle(OracleConfig(kind="web"), None, LABELS, seed=0), WebOracle)
    sim = make_oracle(OracleConfig(experts_per_item=3, expert_kappa=0.7), gold, LABELS, seed=4)
    assert isinstance(sim, SimulatedExperts) and sim.gold == gold


def test_embedding_scout_factory():
    vocab = {"a positive item": [1.0, 0.0], "an ordinary item": [0.0, 1.0]}

    def embed(texts):
        rows = np.array([vocab.get(t, [0.6, 0.8]) for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    settings = ScoutConfig(prior=0.25, negative_description="an ordinary item")
    scout = make_embedding_scout(LABELS, "positive", "a positive item", settings, embed=embed)
    assert isinstance(scout, EmbeddingScout)
    pool = embed(["a positive item", "an ordinary item"] * 4)
    proba = scout.calibrate(pool).proba_from_embeddings(pool)
    assert proba.shape == (8, 2) and np.allclose(proba.sum(axis=1), 1)
    assert proba[0, 1] > proba[1, 1]
