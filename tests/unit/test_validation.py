"""The shared rules for labels (curate.validation) and the strict JSON reader; metrics.json is strict JSON."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from curate.oracle.base import Annotation
from curate.store import Store, annotators
from curate.validation import (
    MAX_DEPTH,
    JSONProblem,
    LabelRules,
    annotator_name_problem,
    loads_strict,
    round_limit,
    time_problem,
)
from curate.web.auth import add_annotator

LABELS = ["no", "yes"]


@pytest.mark.parametrize("name, fragment", [
    ("alice", None),
    ("carol@example.org", None),
    ("Zoë Ørsted", None),
    ("", "empty"),
    ("   ", "empty"),
    ("a" * 129, "129 characters"),
    (" alice", "spaces"),
    ("a\nb", "U+000A"),
    ("a\x00b", "U+0000"),
    ("a\u200bb", "U+200B"),  # zero-width space
    ("a\u202eb", "U+202E"),  # right-to-left override
    ("lone \ud800", "U+D800"),
    ("<b>x</b>", "HTML"),
    ("x>y", "HTML"),
    (5, "not text"),
])
def test_annotator_name_rules(name, fragment):
    problem = annotator_name_problem(name)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem


def test_annotators_add_applies_the_same_name_rules(tmp_path):
    store = Store(tmp_path)
    for bad in ["<script>x</script>", "a\nb", "a\x00b", "x\ud800"]:
        with pytest.raises(Exception) as err:
            add_annotator(store, bad)
        assert "annotator name" in str(err.value) and "\n" not in str(err.value)
    assert add_annotator(store, "  alice  ")  # surrounding spaces are trimmed, as before
    with store.engine.connect() as conn:
        assert [r[0] for r in conn.execute(annotators.select().with_only_columns(annotators.c.name))] == ["alice"]


def test_time_rules():
    now = 1.8e9
    assert time_problem(now - 3600, now=now) is None
    assert time_problem(now + 60, now=now) is None  # a little clock skew is fine
    assert "future" in time_problem(253402214400.0, now=now)  # 9999-12-31
    assert "before 2000" in time_problem(0.0, now=now)
    assert "not a time" in time_problem(math.nan, now=now)


@pytest.mark.parametrize("text, fragment", [
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('{"a": Infinity}', "Infinity is not a JSON number"),
    ('{"a": -Infinity}', "-Infinity is not a JSON number"),
    ('{"a": 1e999}', "too large"),
    ('{"a": ' + "9" * 5000 + "}", "digits"),
    ("[" * 100_000, "nested"),
    ('{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", "nested more than"),
    ('{"a": "x\\ud800"}', "lone surrogate"),
    ('{"a\\udc00": 1}', "lone surrogate"),
    ('{"a": ["\\u0000"]}', "NUL"),
])
def test_loads_strict_refuses(text, fragment):
    with pytest.raises(JSONProblem) as err:
        loads_strict(text)
    assert fragment in err.value.msg


def test_loads_strict_accepts_what_a_pool_holds():
    assert loads_strict('{"t": "\\ud83d\\ude00 caf\\u00e9", "n": 1e300, "i": 12345678901234567890}') == {
        "t": "😀 café", "n": 1e300, "i": 12345678901234567890}
    assert loads_strict('{"a": "\\ud800"}', strings=False) == {"a": "\ud800"}  # the caller checks strings itself
    with pytest.raises(json.JSONDecodeError):
        loads_strict('{"a": ')


def _selection(store: Store, round_index: int, rows: list[tuple[str, int]]) -> None:
    with store.transaction() as conn:
        store.add_selection(conn, round_index, [
            {"item_id": i, "position": k, "group_id": k, "strategy": "random", "score": 0.5, "labels_needed": n}
            for k, (i, n) in enumerate(rows)
        ])


def test_label_rules_check_every_rule_in_the_transaction(tmp_path):
    store = Store(tmp_path)
    for name in ("ana", "ben", "cy"):
        add_annotator(store, name)
    _selection(store, 0, [("a", 2), ("b", 1)])
    known = {"a", "b", "c"}
    with store.transaction() as conn:
        rules = LabelRules(LABELS, known, max_round=round_limit(conn, 6))
        assert rules.max_round == 6
        assert round_limit(conn, 0) == 1  # round 0 was selected: rounds up to 1 are sane

        def rule(ann, **kw):
            rejection = rules.check(conn, ann, **kw)
            return None if rejection is None else rejection.rule

        assert rule(Annotation("zzz", "ana", "yes", 0)) == "item"
        assert rule(Annotation("a", "a\nb", "yes", 0)) == "annotator"
        assert rule(Annotation("a", "dan", "yes", 0)) == "unregistered"
        assert rule(Annotation("a", "ana", "Yes", 0)) == "label"
        assert rule(Annotation("a", "ana", "yes", 7)) == "round"
        assert rule(Annotation("a", "ana", "yes", 1_000_000_000_000)) == "round"
        assert rule(Annotation("a", "ana", "yes", -1)) == "round"
        assert rule(Annotation("a", "ana", "yes", 0), created_at=253402214400.0) == "time"
        assert rule(Annotation("a", "ana", "yes", 0), created_at=time.time() - 60) is None
        # the label need, counting what the transaction already inserted
        for who in ("ana", "ben"):
            assert rule(Annotation("a", who, "yes", 0)) is None
            assert store.add_annotation(conn, Annotation("a", who, "yes", 0))
        assert rule(Annotation("a", "cy", "yes", 0)) == "need"
        assert "already has the 2 label(s) it needs" in rules.check(conn, Annotation("a", "cy", "no", 0)).problem
        assert rule(Annotation("a", "ana", "no", 0)) is None  # already there: the insert skips it
        assert rule(Annotation("c", "cy", "no", 0)) is None  # never selected: no need
        # the simulated experts are not accounts
        assert LabelRules(LABELS, known, registered=False).check(conn, Annotation("b", "expert-1", "no", 0)) is None


def test_metrics_json_is_strict_json(tmp_path):
    """metrics.json never holds a bare NaN or Infinity (finding 7): the loop's writer turns them into null. This
    already held before issue 12; the test pins it."""
    from curate.loop import _write_json

    m = {"kappa": math.nan, "auroc": np.float32("nan"), "high": math.inf, "low": -np.inf, "n": np.int64(3),
         "ci": (0.1, math.nan), "nested": {"x": [np.float64("inf"), 0.5]}}
    path = tmp_path / "rounds" / "r001" / "metrics.json"
    _write_json(path, m)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = loads_strict(text)
    assert back == {"kappa": None, "auroc": None, "high": None, "low": None, "n": 3, "ci": [0.1, None],
                    "nested": {"x": [None, 0.5]}}
