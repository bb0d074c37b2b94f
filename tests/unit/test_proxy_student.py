"""The proxy student (logistic regression on frozen embeddings) and the paired kappa comparison, on constructed data."""

from __future__ import annotations

import numpy as np
import pytest

from curate.agreement import cohen_kappa, paired_kappa_difference
from curate.config import StudentConfig
from curate.errors import CurateError
from curate.models.proxy import ProxyStudent
from curate.models.student import load_student, make_student

LABELS = ["benign", "positive"]


def pool(n: int = 400, seed: int = 0, positive_share: float = 0.1):
    """Unit embeddings in 16-d whose first coordinate separates a rare positive class; returns (x, y)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < positive_share
    x = rng.normal(size=(n, 16))
    x[:, 0] += np.where(y, 2.0, -2.0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float16), y


def onehot(y: np.ndarray) -> np.ndarray:
    return np.stack([~y, y], axis=1).astype(np.float32)


def test_fit_predict_save_load_round_trip(tmp_path):
    x, y = pool()
    student = make_student(LABELS, StudentConfig(kind="proxy"), texts=[""] * len(x), embeddings=x)
    items = np.arange(0, 200)
    info = student.fit(items, onehot(y[items]))
    assert info["examples"] == 200 and info["classes_seen"] == LABELS
    p = student.predict_proba(None)
    assert p.shape == (400, 2) and p.dtype == np.float32 and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert cohen_kappa(y[200:], p[200:, 1] >= 0.5) > 0.8  # learns the rare class (balanced weights)
    student.save(tmp_path / "m")
    again = load_student(tmp_path / "m", LABELS, StudentConfig(kind="proxy"), texts=[], embeddings=x)
    assert isinstance(again, ProxyStudent)
    assert np.allclose(again.predict_proba(np.array([3, 250])), p[[3, 250]], atol=1e-6)
    with pytest.raises(CurateError, match="trained for labels"):
        ProxyStudent.load(tmp_path / "m", ["a", "b"], StudentConfig(kind="proxy"), x)


def test_one_class_labels_predict_that_class_and_soft_targets_count():
    x, y = pool()
    student = ProxyStudent(LABELS, StudentConfig(kind="proxy"), x)
    student.fit(np.arange(5), np.tile([1.0, 0.0], (5, 1)).astype(np.float32))
    assert (student.predict_proba()[:, 0] == 1).all()
    soft = onehot(y[:100])
    soft[:10] = 0.5  # ten items the experts disagreed on
    assert student.fit(np.arange(100), soft)["classes_seen"] == LABELS
    with pytest.raises(ValueError):
        student.fit(np.arange(3), np.ones((2, 2), np.float32))


def test_weak_stage_rows_join_the_expert_fit(tmp_path):
    x, y = pool(seed=1)
    weak = ProxyStudent(LABELS, StudentConfig(kind="proxy"), x)
    weak.fit(np.arange(100, 400), onehot(y[100:400]))  # weak labels for most of the pool
    weak.save(tmp_path / "weak")
    # one expert label only (one class): alone it could learn nothing; with the weak rows it still separates
    sequential = ProxyStudent(LABELS, StudentConfig(kind="proxy"), x, init_from=tmp_path / "weak")
    info = sequential.fit(np.array([0]), onehot(y[:1]))
    assert info["weak_examples"] == 300
    assert cohen_kappa(y[:100], sequential.predict_proba(np.arange(100))[:, 1] >= 0.5) > 0.8


def test_expert_rows_weigh_proxy_expert_weight_each_after_a_weak_stage(tmp_path):
    """A few expert labels that contradict 300 weak labels: 4 each (the default) leaves the weak model's decisions
    standing; 0 (all expert rows together weigh as much as all weak rows) lets them take over."""
    x, y = pool(seed=2, positive_share=0.3)
    weak = ProxyStudent(LABELS, StudentConfig(kind="proxy"), x)
    weak.fit(np.arange(100, 400), onehot(y[100:400]))
    weak.save(tmp_path / "weak")
    flipped = np.arange(10)  # ten expert items labelled against the weak labels' rule
    agree = {}
    for w in (4.0, 0.0):
        s = ProxyStudent(LABELS, StudentConfig(kind="proxy", proxy_expert_weight=w), x, init_from=tmp_path / "weak")
        s.fit(flipped, onehot(~y[flipped]))
        agree[w] = cohen_kappa(y[10:100], s.predict_proba(np.arange(10, 100))[:, 1] >= 0.5)
    assert StudentConfig().proxy_expert_weight == 4.0
    assert agree[4.0] > 0.8 and agree[0.0] < agree[4.0] - 0.3, agree


def test_paired_kappa_difference_cancels_shared_noise():
    rng = np.random.default_rng(0)
    truth = rng.random(300) < 0.4
    experts = {"e1": {str(i): bool(t) for i, t in enumerate(truth)}}
    good = {str(i): bool(t) if rng.random() > 0.1 else not t for i, t in enumerate(truth)}
    bad = {str(i): bool(t) if rng.random() > 0.3 else not t for i, t in enumerate(truth)}
    cmp = paired_kappa_difference(good, bad, experts, rng=np.random.default_rng(1), n_boot=300)
    assert cmp["difference"] > 0.2 and cmp["p_a_better"] > 0.99 and cmp["n_items"] == 300
    same = paired_kappa_difference(good, good, experts, rng=np.random.default_rng(1), n_boot=300)
    assert same["difference"] == 0 and same["p_a_better"] == 0.0
    assert paired_kappa_difference(good, bad, {}, rng=np.random.default_rng(1))["n_items"] == 0
