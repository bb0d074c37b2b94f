"""The stopping rules (curate.stopping) on constructed round histories: no model, no database, no shared data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from curate.config import LoopConfig
from curate.stopping import (
    budget_spent,
    ceiling_reached,
    plateau,
    prediction_kappa,
    predictions_stable,
    round_limit,
    stop_reason,
)


def _round(t: int, *, kappa: float = 0.3, ceiling: float = 0.8, labelled: int | None = None,
           by_model: dict[int, float] | None = None, one_class_by_model: dict[int, str | None] | None = None,
           stability: float | None = None, one_class: str | None = None) -> dict:
    """One round's metrics with the keys the rules read (as Loop.evaluate records them: JSON, string keys)."""
    by_model = by_model if by_model is not None else {s: 0.1 * s for s in range(t + 1)}
    one_class_by_model = one_class_by_model or {}
    return {"round": t, "kappa_eval": {"kappa": kappa}, "expert_expert_kappa": ceiling,
            "items_labelled": 100 * t if labelled is None else labelled,
            "kappa_eval_by_model": {str(s): k for s, k in by_model.items()},
            "one_class_by_model": {str(s): one_class_by_model.get(s) for s in by_model},
            "prediction_kappa_previous": stability if t else None, "one_class": one_class}


def _history(n: int, **last) -> list[dict]:
    """Rounds 0..n-1 with default metrics, the last built with ``last``."""
    return [_round(t) for t in range(n - 1)] + [_round(n - 1, **last)]


# -- ceiling ---------------------------------------------------------------------------------------


def test_ceiling_stops_a_student_as_good_as_the_experts():
    assert ceiling_reached(_history(3, kappa=0.8, ceiling=0.8)) == (
        "ceiling reached: model-expert kappa 0.800 >= expert-expert kappa 0.800")
    assert ceiling_reached(_history(3, kappa=0.79, ceiling=0.8)) is None
    assert ceiling_reached(_history(3, kappa=0.9, ceiling=0.8), enabled=False) is None
    assert ceiling_reached(_history(1, kappa=0.9, ceiling=0.8)) is None  # round 0: the scout never stops it
    for undefined in (math.nan, None):
        assert ceiling_reached(_history(3, kappa=undefined, ceiling=0.8)) is None
        assert ceiling_reached(_history(3, kappa=0.9, ceiling=undefined)) is None


# -- plateau ---------------------------------------------------------------------------------------


def test_plateau_compares_recent_students_with_earlier_ones_on_the_current_eval_set():
    flat = {0: 0.1, 1: 0.5, 2: 0.4, 3: 0.45}
    assert plateau(_history(4, by_model=flat), patience=2, min_delta=0.0) == (
        "plateau: on the current eval set no student of the last 2 rounds beats 0.500 by more than 0.0")
    rising = {0: 0.1, 1: 0.3, 2: 0.4, 3: 0.45}
    assert plateau(_history(4, by_model=rising), patience=2, min_delta=0.0) is None
    # an improvement must exceed min_delta
    assert plateau(_history(4, by_model=rising), patience=2, min_delta=0.2).startswith("plateau")
    assert plateau(_history(4, by_model={0: 0.1, 1: 0.3, 2: 0.3}), patience=1, min_delta=0.0).startswith("plateau")
    # the scout (round 0) is no student: rounds 1..3 are 3 students, not more than patience 3
    assert plateau(_history(4, by_model={0: 0.9, 1: 0.2, 2: 0.2, 3: 0.2}), patience=3, min_delta=0.0) is None
    # only the last round's measurement counts (earlier rounds' eval sets were smaller)
    history = [_round(0), _round(1, by_model={0: 0.0, 1: 0.9}), _round(2, by_model={0: 0.0, 1: 0.2, 2: 0.5})]
    assert plateau(history, patience=1, min_delta=0.0) is None


def test_plateau_leaves_out_one_class_students():
    flat = {0: 0.1, 1: 0.5, 2: 0.4, 3: 0.45}
    assert plateau(_history(4, by_model=flat, one_class_by_model={2: "benign", 3: "benign"}), patience=2,
                   min_delta=0.0) is None
    # one one-class student left out: 1 and 3 remain, 3 does not beat 1
    assert plateau(_history(4, by_model=flat, one_class_by_model={2: "benign"}), patience=1,
                   min_delta=0.0).startswith("plateau")
    # int keys (before the JSON round trip) work the same as string keys
    m = _round(3, by_model=flat)
    m["kappa_eval_by_model"] = {int(s): k for s, k in m["kappa_eval_by_model"].items()}
    m["one_class_by_model"] = {2: "benign", 3: "benign"}
    assert plateau([m], patience=2, min_delta=0.0) is None


def test_plateau_with_undefined_kappas():
    # NaN kappas are ignored; a side with none counts as -1
    assert plateau(_history(4, by_model={0: 0.1, 1: math.nan, 2: 0.4, 3: math.nan}), patience=2,
                   min_delta=0.0) is None
    assert plateau(_history(4, by_model={0: 0.1, 1: 0.2, 2: math.nan, 3: math.nan}), patience=2,
                   min_delta=0.0).startswith("plateau: on the current eval set no student of the last 2 rounds beats "
                                             "0.200")


# -- stabilising predictions -----------------------------------------------------------------------


def _stable_history(values: list[float | None], one_class: dict[int, str] | None = None) -> list[dict]:
    """Round 0 plus one round per value of ``prediction_kappa_previous``."""
    one_class = one_class or {}
    return [_round(0)] + [_round(t, stability=v, one_class=one_class.get(t)) for t, v in enumerate(values, start=1)]


def test_predictions_stable_averages_the_last_window():
    stable = _stable_history([0.5, 0.99, 1.0, 0.995])
    assert predictions_stable(stable, min_kappa=0.99, window=3) == (
        "predictions stable: kappa between successive rounds' pool predictions averages 0.995 >= 0.99 over the "
        "last 3 rounds")
    assert predictions_stable(stable, min_kappa=0.99, window=4) is None  # 0.5 in the window
    assert predictions_stable(_stable_history([0.99, 0.98, 0.99]), min_kappa=0.99, window=3) is None
    assert predictions_stable(_stable_history([0.9, 0.8]), min_kappa=0.8, window=1) is not None
    # too few rounds, round 0 (no previous model) or a round without the value break the window
    assert predictions_stable(_stable_history([1.0, 1.0]), min_kappa=0.99, window=3) is None
    assert predictions_stable(_stable_history([1.0, 1.0]), min_kappa=0.99, window=2) is not None
    assert predictions_stable([_round(0)], min_kappa=0.5, window=1) is None
    assert predictions_stable(_stable_history([1.0, None, 1.0]), min_kappa=0.99, window=3) is None
    assert predictions_stable(_stable_history([1.0, math.nan, 1.0]), min_kappa=0.99, window=3) is None


def test_predictions_stable_ignores_one_class_models():
    assert predictions_stable(_stable_history([1.0, 1.0, 1.0], one_class={2: "benign"}), min_kappa=0.99,
                              window=3) is None
    assert predictions_stable(_stable_history([1.0, 1.0, 1.0], one_class={1: "benign"}), min_kappa=0.99,
                              window=2) is not None  # round 1 is outside the window


def test_prediction_kappa_between_rounds():
    a = np.array([0, 1, 1, 0, 1, 0, 0, 0])
    assert prediction_kappa(a, a) == 1.0
    assert prediction_kappa(np.zeros(5), np.zeros(5)) == 1.0  # identical one-class predictions agree perfectly
    b = a.copy()
    b[0] = 1
    # p_o = 7/8; a has 3/8 positive, b 4/8: p_e = (3*4 + 5*4)/64 = 1/2; kappa = (7/8 - 1/2)/(1/2) = 0.75
    assert prediction_kappa(a, b) == pytest.approx(0.75)
    assert prediction_kappa(["x", "y"], ["y", "x"]) == pytest.approx(-1.0)
    assert math.isnan(prediction_kappa([], []))
    with pytest.raises(ValueError):
        prediction_kappa([0, 1], [0])


# -- limits ----------------------------------------------------------------------------------------


def test_round_limit_and_budget():
    assert round_limit(_history(4), rounds=3) == "round limit: 3 rounds"
    assert round_limit(_history(4), rounds=4) is None
    assert round_limit(_history(1), rounds=0) == "round limit: 0 rounds"
    assert budget_spent(_history(3, labelled=200), total_budget=200) == "budget spent: 200 of 200 items labelled"
    assert budget_spent(_history(3, labelled=210), total_budget=200) == "budget spent: 210 of 200 items labelled"
    assert budget_spent(_history(3, labelled=199), total_budget=200) is None
    assert budget_spent(_history(3, labelled=10**6), total_budget=None) is None


# -- the rules together ----------------------------------------------------------------------------


def test_stop_reason_applies_the_rules_in_order():
    settings = LoopConfig(patience=2, rounds=3, total_budget=300, stable_window=2)
    flat = {0: 0.1, 1: 0.5, 2: 0.4, 3: 0.45}
    # every rule fires on round 3: the ceiling first, then plateau, round limit, budget
    h = _history(4, kappa=0.9, ceiling=0.8, by_model=flat, labelled=300)
    assert stop_reason(h, settings).startswith("ceiling reached")
    assert stop_reason(h, settings.model_copy(update={"stop_at_ceiling": False})).startswith("plateau")
    settings = settings.model_copy(update={"stop_at_ceiling": False, "patience": 3})
    assert stop_reason(h, settings) == "round limit: 3 rounds"
    assert stop_reason(h, settings.model_copy(update={"rounds": 6})) == "budget spent: 300 of 300 items labelled"
    assert stop_reason(h, settings.model_copy(update={"rounds": 6, "total_budget": None})) is None
    # stabilising predictions: off by default, checked after the plateau and before the limits when on
    stable = _stable_history([1.0, 1.0, 1.0])
    stable[-1]["kappa_eval_by_model"] = {"0": 0.1, "1": 0.5, "2": 0.4, "3": 0.45}
    quiet = LoopConfig(rounds=3, patience=3)
    assert stop_reason(stable, quiet) == "round limit: 3 rounds"
    on = quiet.model_copy(update={"stop_when_stable": True})
    assert stop_reason(stable, on).startswith("predictions stable: ")
    assert stop_reason(stable, on.model_copy(update={"patience": 2})).startswith("plateau")


def test_stop_reason_on_a_json_round_trip_matches():
    """A resumed run reads the history back from the database as JSON (NaN kept, keys as strings)."""
    h = _history(4, by_model={0: 0.1, 1: 0.5, 2: math.nan, 3: 0.45}, kappa=math.nan)
    again = json.loads(json.dumps(h))
    settings = LoopConfig(patience=2)
    assert stop_reason(again, settings) == stop_reason(h, settings) is not None
