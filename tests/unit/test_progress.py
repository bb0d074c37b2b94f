"""Progress as a long run shows it: plain lines in a log (start, a steady interval, end), rich bars in a terminal."""

from __future__ import annotations

import io
import re
import time

import pytest

from curate.errors import CurateError
from curate.progress import INTERVAL_ENV, ProgressLines, progress_callback, progress_interval


@pytest.fixture
def no_terminal(monkeypatch):
    """Output that is no terminal, whatever the environment the tests run in says (rich reads these)."""
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_log_lines_give_done_total_rate_and_time_left():
    out, clock = io.StringIO(), _Clock()
    lines = ProgressLines("training", total=40, unit="steps", stream=out, interval_s=30, clock=clock)
    lines.start()
    for _ in range(12):  # 12 steps in 6 s: no line before 30 s
        clock.now += 0.5
        lines.advance(1)
    clock.now += 24  # 30 s since the start, 12 more steps ...
    lines.advance(12)
    for _ in range(10):  # ... then 10 steps within the next 30 s: no line
        clock.now += 1
        lines.advance(1)
    clock.now += 26
    lines.advance(6)  # 40 of 40 at 66 s: the end line says it
    lines.finish()
    assert out.getvalue().splitlines() == [
        "training: started, 40 steps",
        "training: 24/40 steps (60 %), 0.8 steps/s, about 20 s left",
        "training: done, 40 steps in 1 min 06 s (0.606 steps/s)",
    ]


def test_an_unfinished_stage_says_how_far_it_got():
    out, clock = io.StringIO(), _Clock()
    lines = ProgressLines("embedding", total=19_459, unit="items", stream=out, interval_s=30, clock=clock)
    lines.start()
    clock.now += 45
    lines.advance(4_096)
    clock.now += 15
    lines.finish()
    assert out.getvalue().splitlines() == [
        "embedding: started, 19,459 items",
        "embedding: 4,096/19,459 items (21 %), 91 items/s, about 2 min 49 s left",
        "embedding: done, 4,096 of 19,459 items in 1 min 00 s (68.3 items/s)",
    ]


def test_without_a_terminal_each_stage_prints_lines_at_the_set_interval(monkeypatch, no_terminal):
    monkeypatch.setenv(INTERVAL_ENV, "0.05")
    out = io.StringIO()
    with progress_callback("scoring", total=5, stream=out) as advance:
        for _ in range(5):
            time.sleep(0.06)  # longer than the interval: every step but the last prints a line
            advance(1)
    got = out.getvalue().splitlines()
    assert got[0] == "scoring: started, 5 items"
    middle = got[1:-1]
    assert len(middle) == 4 and all(re.fullmatch(r"scoring: [1-4]/5 items \(\d+ %\), [\d.]+ items/s, about \d+ s left",
                                                 line) for line in middle), got
    assert re.fullmatch(r"scoring: done, 5 items in \d+ s \([\d.]+ items/s\)", got[-1]), got
    assert "\x1b" not in out.getvalue() and "━" not in out.getvalue()  # no bar, no terminal codes


def test_default_interval_is_30_s_and_a_quiet_run_prints_nothing(monkeypatch, no_terminal):
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert progress_interval() == 30.0
    out = io.StringIO()
    with progress_callback("embedding", total=3, stream=out) as advance:
        for _ in range(3):
            advance(1)
    assert [line.split(",")[0] for line in out.getvalue().splitlines()] == ["embedding: started", "embedding: done"]
    quiet = io.StringIO()
    with progress_callback("embedding", total=3, stream=quiet, enabled=False) as advance:
        advance(3)
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("value", ["soon", "-5", "nan"])
def test_a_bad_interval_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(INTERVAL_ENV, value)
    with pytest.raises(CurateError, match=rf"^{INTERVAL_ENV}='{re.escape(value)}': give the seconds"):
        progress_interval()


def test_the_terminal_bar_names_its_unit(monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    out = io.StringIO()
    with progress_callback("training", total=40, unit="steps", stream=out) as advance:
        for _ in range(40):
            advance(1)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "━" in text and re.search(r"40/40 steps", text), text
    assert "started" not in text  # a bar, not log lines
