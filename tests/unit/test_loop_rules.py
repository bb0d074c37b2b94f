"""The loop's rules on constructed inputs (no model, no shared data): the decision threshold, which model a round
serves, and the stopping rule with one-class students."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curate.config import TaskConfig
from curate.loop import Loop
from curate.project import Project, init_project

LABELS = ["benign", "positive"]


@pytest.fixture
def loop(tmp_path) -> Loop:
    rows = [{"id": f"i{k}", "text": f"item number {k}", "label": LABELS[k % 5 == 0]} for k in range(50)]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    task = TaskConfig(labels=LABELS, positive="positive", prompt="a positive item", gold_field="label")
    init_project(tmp_path / "p", pool, task=task, overrides={"scout": {"prior": 0.2}})
    return Loop(Project.open(tmp_path / "p"), progress=False, log=lambda s: None)


def _set(loop: Loop, **loop_settings) -> None:
    loop.config = loop.config.model_copy(update={"loop": loop.config.loop.model_copy(update=loop_settings)})


def test_threshold_matches_the_expected_positive_share(loop):
    p = np.linspace(0.0, 1.0, 101)
    thr = loop.threshold_from_pool(p)
    assert np.mean(p >= thr) == pytest.approx(0.2, abs=0.011)  # scout.prior of the pool predicted positive
    proba = np.stack([1 - p[:50], p[:50]], axis=1)
    assert np.mean(loop.predicted_labels(proba) == "positive") == pytest.approx(0.2, abs=0.03)
    _set(loop, threshold_rule="fixed", threshold=0.7)
    assert loop.threshold_from_pool(p) == 0.7
    two = np.array([[0.4, 0.6], [0.2, 0.8]])
    assert list(loop.predicted_labels(two, loop.threshold_from_pool(two[:, 1]))) == ["benign", "positive"]


def _model(kappa: float, pred: dict, one_class: str | None = None) -> dict:
    return {"kappa": kappa, "threshold": 0.5, "one_class": one_class, "pred": pred}


def test_served_model_needs_a_sure_win_or_a_one_class_student(loop):
    items = [f"i{k}" for k in range(40)]
    truth = {i: LABELS[k % 3 == 0] for k, i in enumerate(items)}
    experts = {"e1": truth, "e2": truth}
    good = dict(truth)
    noisy = {i: (v if k % 4 else LABELS[v == "benign"]) for k, (i, v) in enumerate(truth.items())}  # 25 % wrong
    slightly = {i: (v if k != 5 else LABELS[v == "benign"]) for k, (i, v) in enumerate(truth.items())}
    rng = np.random.default_rng(0)
    # M_1 much worse than M_0 on the eval set: M_0 is served
    served = loop._served(1, {0: _model(1.0, good), 1: _model(0.5, noisy)}, experts, rng)
    assert served["round"] == 0 and served["p_better"][0] >= 0.9
    # one item of difference is not a sure win: the new student is served
    served = loop._served(1, {0: _model(1.0, good), 1: _model(0.95, slightly)}, experts, rng)
    assert served["round"] == 1 and served["p_better"][0] < 0.9
    # a one-class student gives way to the best earlier model that is not one-class
    only = {i: "benign" for i in items}
    models = {0: _model(0.2, noisy), 1: _model(0.6, slightly), 2: _model(0.0, only, one_class="benign")}
    assert loop._served(2, models, experts, rng)["round"] == 1
    _set(loop, keep_best=False)
    assert loop._served(2, models, experts, rng)["round"] == 2


def _history(kappas: dict[int, float], one_class: dict[int, str | None], eval_kappa=0.3, ceiling=0.8) -> list[dict]:
    t = max(kappas)
    return [{"round": t, "kappa_eval": {"kappa": eval_kappa}, "expert_expert_kappa": ceiling, "items_labelled": 100 * t,
             "kappa_eval_by_model": {str(s): k for s, k in kappas.items()},
             "one_class_by_model": {str(s): one_class.get(s) for s in kappas}}]


def test_plateau_ignores_one_class_students_and_the_ceiling_rule_can_be_off(loop):
    _set(loop, patience=2, rounds=10)
    flat = {0: 0.1, 1: 0.5, 2: 0.4, 3: 0.45}
    assert loop.stop_reason(3, _history(flat, {})).startswith("plateau")
    # rounds 2 and 3 predicted one class only: they say nothing, so no plateau yet
    assert loop.stop_reason(3, _history(flat, {2: "benign", 3: "benign"})) is None
    rising = {0: 0.1, 1: 0.3, 2: 0.4, 3: 0.45}
    assert loop.stop_reason(3, _history(rising, {})) is None
    assert loop.stop_reason(3, _history(rising, {}, eval_kappa=0.85)).startswith("ceiling reached")
    _set(loop, stop_at_ceiling=False)
    assert loop.stop_reason(3, _history(rising, {}, eval_kappa=0.85)) is None
    assert loop.stop_reason(10, _history({**rising, 10: 0.5}, {})) == "round limit: 10 rounds"
