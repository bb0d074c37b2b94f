"""The rules every label obeys on its way into the store, and the checks of untrusted text.

One path for every way a label enters the database: the simulated oracle (``curate run``), the
labelling app (``curate serve``) and ``curate import`` all call :meth:`LabelRules.check` inside the
transaction that inserts the label, so the rules see the labels already stored (and those inserted
earlier in the same transaction):

- **item**: the item is in the project's pool;
- **annotator**: the name obeys :func:`annotator_name_problem` (the rules ``curate annotators add``
  applies) and, unless the caller says otherwise, is registered in the ``annotators`` table;
- **label**: one of the task's labels (case-sensitive);
- **round**: a whole number from 0 to the project's last round (see :func:`round_limit`);
- **time**: ``created_at``, when given, lies between 2000-01-01 and a few minutes from now;
- **need**: an item selected with ``labels_needed = n`` never holds more than ``n`` labels (items
  never selected have no need, hence no limit).

The text checks (:func:`text_problem`, :func:`loads_strict`) turn hostile input (lone surrogate
escapes, NUL characters, ``NaN``/``Infinity``, numbers that overflow, nesting deeper than Parquet can
store) into one-line errors instead of tracebacks.
"""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Container, Sequence

from curate.errors import CurateError
from curate.records import Annotation
from curate.store import Connection, Store

__all__ = [
    "CLOCK_SKEW_S",
    "EARLIEST_TIME",
    "MAX_DEPTH",
    "MAX_NAME",
    "JSONProblem",
    "LabelRules",
    "Rejection",
    "annotator_name_problem",
    "check_annotator_name",
    "label_need",
    "loads_strict",
    "round_limit",
    "text_fix",
    "text_problem",
    "time_problem",
]

MAX_NAME = 128  # the annotators.name / annotations.annotator column's length
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc).timestamp()  # no label of this tool is older
CLOCK_SKEW_S = 300.0  # how far in the future a created_at may lie (clocks of other machines)
MAX_DEPTH = 32  # JSON nesting (the top-level value counts 1); Parquet refuses schemas about twice as deep

_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


# --------------------------------------------------------------------------- text


def text_problem(value: str) -> str | None:
    """What makes ``value`` unstorable as text, or None: a NUL character or a lone surrogate (what a
    JSON escape such as ``\\ud800`` without its pair decodes to; it is not a character and cannot be
    written as UTF-8)."""
    bad = _BAD_CHARS.search(value)
    if bad is None:
        return None
    char = bad.group()
    if char == "\x00":
        return f"holds a NUL character (\\u0000) at position {bad.start() + 1}"
    return (f"holds a lone surrogate escape (\\u{ord(char):04x}) at position {bad.start() + 1}, "
            "which is not a character")


def text_fix(value: str) -> str:
    """How to fix what :func:`text_problem` found in ``value``."""
    if "\x00" in value:
        return "remove the NUL character (\\u0000 in JSON)"
    return ("remove the lone surrogate, or write the character it stands for (a character beyond U+FFFF is "
            "written as a pair of escapes, e.g. \\ud83d\\ude00, or as the character itself)")


def annotator_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be an annotator's name, or None when it can.

    The rules of ``curate annotators add``, applied to every way a name enters the store: a string of
    1 to :data:`MAX_NAME` characters, no spaces at its start or end, no control, format, private-use,
    unassigned or line-separator character (newline, NUL, zero-width and bidirectional marks, lone
    surrogates), and no ``<`` or ``>`` (a name is shown in web pages; it must not look like HTML).
    """
    if not isinstance(name, str):
        return f"is {type(name).__name__}, not text"
    if not name.strip():
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long (at most {MAX_NAME})"
    if name != name.strip():
        return "has spaces at its start or end"
    for position, char in enumerate(name, start=1):
        category = unicodedata.category(char)
        if category in _INVISIBLE:
            return (f"holds the invisible or control character U+{ord(char):04X} ({category}) at position "
                    f"{position}")
        if char in "<>":
            return f"holds {char!r} (a name must not look like HTML)"
    return None


def check_annotator_name(name: str) -> str:
    """``name`` when :func:`annotator_name_problem` finds nothing.

    Raises:
        CurateError: one line naming the problem and the fix.
    """
    problem = annotator_name_problem(name)
    if problem is not None:
        raise CurateError(f"annotator name {name!r} {problem}; give 1 to {MAX_NAME} visible characters, "
                          "without < or >")
    return name


def time_problem(created_at: float, *, now: float | None = None) -> str | None:
    """Why ``created_at`` (Unix seconds) cannot be a label's time, or None: not a finite number, before
    2000-01-01, or more than :data:`CLOCK_SKEW_S` seconds after ``now`` (default: the current time)."""
    now = time.time() if now is None else now
    if not isinstance(created_at, (int, float)) or isinstance(created_at, bool) or not math.isfinite(created_at):
        return f"created_at {created_at!r} is not a time"
    if created_at < EARLIEST_TIME:
        return f"created_at {_iso(created_at)} is before 2000-01-01"
    if created_at > now + CLOCK_SKEW_S:
        return f"created_at {_iso(created_at)} is in the future (it is now {_iso(now)})"
    return None


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return repr(ts)


# --------------------------------------------------------------------------- strict JSON


class JSONProblem(ValueError):
    """JSON text that Python's ``json`` module would accept but curate refuses (see :func:`loads_strict`).

    Attributes:
        msg: what is wrong, without a file or line.
        fix: how to fix it.
    """

    def __init__(self, msg: str, fix: str) -> None:
        super().__init__(f"{msg}; {fix}")
        self.msg = msg
        self.fix = fix


def _constant(token: str) -> Any:
    raise JSONProblem(f"{token} is not a JSON number (JSON has no NaN or Infinity)",
                      "write the value as null, or as a string")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise JSONProblem(f"the number {token[:40]} is too large for a 64-bit float",
                          "write a smaller number, or write it as a string")
    return value


def loads_strict(text: str, *, strings: bool = True) -> Any:
    """``json.loads`` for untrusted text.

    Refuses what Python's parser accepts but a project cannot hold: the literals ``NaN``, ``Infinity``
    and ``-Infinity``; numbers that overflow a float (``1e999``); integers of more than 4300 digits;
    nesting deeper than :data:`MAX_DEPTH`; and, with ``strings``, NUL characters and lone surrogates in
    any string or key (see :func:`text_problem`).

    Returns:
        The parsed value (dicts, lists, str, int, float, bool, None).

    Raises:
        json.JSONDecodeError: the text is not JSON (its ``msg``, ``lineno`` and ``colno`` say where).
        JSONProblem: one of the refusals above (its ``msg`` and ``fix``).
    """
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_finite_float)
    except JSONProblem:
        raise
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise JSONProblem(f"the value is nested more than {MAX_DEPTH} levels deep",
                          "flatten the value, or remove the field") from None
    except ValueError:  # an integer beyond Python's digit limit (sys.get_int_max_str_digits())
        raise JSONProblem("a number has more digits than Python reads (4300)",
                          "write a shorter number, or write it as a string") from None
    # Cheap filters: a NUL or a lone surrogate can only come from a \u escape; depth needs brackets.
    check_strings = strings and "\\u" in text
    check_depth = text.count("[") + text.count("{") > MAX_DEPTH
    if check_strings or check_depth:
        problem = _scan(value, check_strings)
        if problem is not None:
            raise problem
    return value


def _scan(value: Any, check_strings: bool) -> JSONProblem | None:
    """The first NUL / lone surrogate in a string or key, or a nesting deeper than MAX_DEPTH."""
    stack: list[tuple[Any, int, str | None]] = [(value, 1, None)]
    while stack:
        v, depth, field = stack.pop()
        if isinstance(v, str):
            if check_strings:
                problem = text_problem(v)
                if problem is not None:
                    where = f"the value of field {field!r}" if field is not None else "a string"
                    return JSONProblem(f"{where} {problem}", text_fix(v))
            continue
        if isinstance(v, (dict, list)):
            if depth > MAX_DEPTH:
                where = f"field {field!r}" if field is not None else "the value"
                return JSONProblem(f"{where} is nested more than {MAX_DEPTH} levels deep",
                                   "flatten the value, or remove the field")
            if isinstance(v, dict):
                for key, item in v.items():
                    here = key if field is None else field
                    if check_strings:
                        problem = text_problem(key)
                        if problem is not None:
                            return JSONProblem(f"the key {key!r} {problem}", f"rename the key; {text_fix(key)}")
                    stack.append((item, depth + 1, here))
            else:
                stack.extend((item, depth + 1, field) for item in v)
    return None


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Rejection:
    """Why a label may not enter the store.

    Attributes:
        rule: ``"item"``, ``"annotator"``, ``"unregistered"``, ``"label"``, ``"round"``, ``"time"`` or ``"need"``.
        problem: what is wrong, e.g. ``"item 'x' already has the 2 label(s) it needs"``.
        fix: how to fix it (callers with a better-suited fix, such as an option name, give their own).
    """

    rule: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}"


def round_limit(conn: Connection, configured_rounds: int) -> int:
    """The last round a label may name: ``max(configured_rounds, latest selected round + 1)``.

    ``configured_rounds`` is ``loop.rounds`` of ``curate.toml`` (``curate run --rounds`` writes it):
    rounds 0 to ``rounds - 1`` select items, so this leaves one round of slack beyond the plan and
    never refuses a round the project has selected.
    """
    latest = Store.latest_selected_round(conn)
    return max(int(configured_rounds), -1 if latest is None else int(latest) + 1)


def label_need(conn: Connection, item_id: str, round_index: int | None = None) -> int | None:
    """How many labels ``item_id`` needs: its ``labels_needed`` in round ``round_index``'s selection, else the
    largest over the rounds that selected it; None when no round selected it (no limit)."""
    rows = Store.label_needs_of_item(conn, item_id)
    if not rows:
        return None
    for r, need in rows:
        if r == round_index:
            return int(need)
    return max(int(need) for _, need in rows)


@dataclass(frozen=True)
class LabelRules:
    """The project's rules for a new label (see the module doc).

    Attributes:
        labels: the task's labels.
        known: the pool's item ids (a set or ``project.position``).
        max_round: the last round a label may name (:func:`round_limit`); None: not checked (the caller
            gives the current round itself, as the labelling app and the loop do).
        registered: require the annotator in the ``annotators`` table (False for the simulated experts,
            who are not people with an account).
    """

    labels: Sequence[str]
    known: Container[str]
    max_round: int | None = None
    registered: bool = True

    def check(self, conn: Connection, ann: Annotation, *, created_at: float | None = None,
              now: float | None = None) -> Rejection | None:
        """The first rule ``ann`` breaks, or None, read in the caller's transaction.

        Checked in this order: item, annotator name, registration, label, round, ``created_at`` (when
        given), then the item's label need. An (item, annotator) pair already in the store passes the
        need rule (the insert will skip it: one label per item and annotator).
        """
        item = ann.item_id
        if not isinstance(item, str) or item not in self.known:
            return Rejection("item", f"unknown item {_show(item)}: not in this project's pool",
                             "give the id of an item in the pool")
        problem = annotator_name_problem(ann.annotator)
        if problem is not None:
            return Rejection("annotator", f"annotator name {_show(ann.annotator)} {problem}",
                             f"give 1 to {MAX_NAME} visible characters, without < or >")
        if self.registered and not Store.annotator_exists(conn, ann.annotator):
            return Rejection("unregistered", f"annotator {ann.annotator!r} is not registered",
                             "register them with `curate annotators add PROJECT NAME`")
        if not isinstance(ann.label, str) or ann.label not in self.labels:
            return Rejection("label", f"label {_show(ann.label)} is not one of the task's labels {list(self.labels)}",
                             "use one of the task's labels (they are case-sensitive)")
        r = ann.round
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            return Rejection("round", f"round {_show(r)} is not a round number", "give a whole number >= 0")
        if self.max_round is not None and r > self.max_round:
            return Rejection("round", f"round {r} is beyond the project's rounds (0 to {self.max_round})",
                             f"give a round from 0 to {self.max_round}, or plan more rounds "
                             "(loop.rounds in curate.toml, `curate run --rounds N`)")
        if created_at is not None:
            problem = time_problem(created_at, now=now)
            if problem is not None:
                return Rejection("time", problem, "give the time the label was made (ISO 8601, UTC), or leave it empty")
        if Store.has_annotation(conn, item, ann.annotator):
            return None
        need = label_need(conn, item, r)
        if need is not None:
            have = Store.labels_of_item(conn, item)
            if have >= need:
                return Rejection("need", f"item {item!r} already has the {need} label(s) it needs",
                                 "it takes no more labels")
        return None


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
