"""Issue 12, part A: every bad input is a one-line error; import obeys the app's rules; init cleans up after a kill.

Every case runs the real command line (``python -m curate.cli``) in a subprocess and asserts exit status 2, exactly
one line on stderr (``error: ...``), no traceback, and nothing written: no project folder and no temporary folder
for ``init``; the same annotations and annotators for ``import``. Pools are a few lines built here (no shared data).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, run_cli

LABELS = ["no", "yes"]
INIT = ["--labels", "no,yes", "--positive", "yes", "--prompt", "Is it a yes?"]
N_ITEMS = 20


def _rows(n: int = 4) -> list[dict]:
    return [{"id": f"i{k:02d}", "text": f"item number {k} says {'yes' if k % 2 else 'no'}", "label": LABELS[k % 2]}
            for k in range(n)]


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _parallel(fn, cases: list) -> list:
    """Run ``fn`` over the cases, a few subprocesses at a time (each is mostly Python start-up)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(fn, cases))


def _one_line_error(proc: subprocess.CompletedProcess) -> str | None:
    """None when the command failed as it should: exit 2, one line ``error: ...`` on stderr, no traceback."""
    err = proc.stderr.strip()
    if proc.returncode != 2:
        return f"exit {proc.returncode}"
    if len(err.splitlines()) != 1:
        return f"{len(err.splitlines())} lines on stderr"
    if not err.startswith("error:") or "Traceback" in proc.stderr:
        return "not an 'error:' line"
    return None


# ------------------------------------------------------------------------------------------- init: hostile pools


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def _hostile_pools(d: Path) -> list[tuple[str, Path, list[str], list[str]]]:
    """(case, pool file, extra init options, fragments the message must hold)."""
    good = _jsonl(_rows())
    line = b'{"id": "i09", "text": %s}\n'
    cases: list[tuple[str, bytes | None, str, list[str], list[str]]] = [
        # finding 1: a lone surrogate escape, in the text, an id, a key, a kept column
        ("surrogate in text", good + b'{"id": "i09", "text": "lone \\ud800 surrogate"}\n', "jsonl", [],
         ["line 5", "lone surrogate", "'text'"]),
        ("low surrogate in id", b'{"id": "\\udc00", "text": "x"}\n' + good, "jsonl", [], ["line 1", "surrogate"]),
        ("surrogate in a key", good + b'{"id": "i09", "text": "x", "\\ud83d": 1}\n', "jsonl", [], ["line 5", "key"]),
        ("surrogate in a kept column", good + b'{"id": "i09", "text": "x", "label": "\\udfff"}\n', "jsonl", [],
         ["line 5", "'label'"]),
        ("reversed surrogate pair", good + line % b'"\\ude00\\ud83d"', "jsonl", [], ["line 5", "surrogate"]),
        # finding 7: NUL, NaN, Infinity
        ("escaped NUL in text", good + line % b'"a\\u0000b"', "jsonl", [], ["line 5", "NUL"]),
        ("raw NUL byte", good + b'{"id": "i09", "text": "a\x00b"}\n', "jsonl", [], ["line 5", "NUL"]),
        ("NUL in CSV", b"id,text\ni00,fine\ni01,a\x00b\n", "csv", [], ["line 3", "NUL"]),
        ("bare NaN", good + b'{"id": "i09", "text": "x", "score": NaN}\n', "jsonl", [], ["line 5", "NaN"]),
        ("bare Infinity", good + b'{"id": "i09", "text": "x", "score": Infinity}\n', "jsonl", [], ["Infinity"]),
        ("bare -Infinity", good + b'{"id": "i09", "text": "x", "score": -Infinity}\n', "jsonl", [], ["Infinity"]),
        ("NaN as the text", good + line % b"NaN", "jsonl", [], ["line 5", "NaN"]),
        # huge numbers
        ("float overflow", good + b'{"id": "i09", "text": "x", "s": 1e999}\n', "jsonl", [], ["line 5", "too large"]),
        ("5000-digit integer", good + b'{"id": "i09", "text": "x", "s": ' + b"9" * 5000 + b"}\n", "jsonl", [],
         ["line 5", "digits"]),
        ("5000-digit id", good + b'{"id": ' + b"7" * 5000 + b', "text": "x"}\n', "jsonl", [], ["line 5"]),
        ("integer beyond 64 bits", good + b'{"id": "i09", "text": "x", "s": ' + b"9" * 30 + b"}\n", "jsonl", [],
         ["line 5", "64-bit"]),
        # deep nesting
        ("nesting 100000 deep", good + b'{"id": "i09", "text": "x", "d": ' + _deep(100_000) + b"}\n", "jsonl", [],
         ["line 5", "nested"]),
        ("nesting 40 deep", good + b'{"id": "i09", "text": "x", "d": ' + _deep(40) + b"}\n", "jsonl", [],
         ["line 5", "nested"]),
        ("deep text", good + line % _deep(50), "jsonl", [], ["line 5"]),
        # encodings
        ("UTF-16 LE with BOM", "\n".join(json.dumps(r) for r in _rows()).encode("utf-16"), "jsonl", [], ["UTF-16"]),
        ("UTF-16 BE with BOM", b"\xfe\xff" + "\n".join(json.dumps(r) for r in _rows()).encode("utf-16-be"),
         "jsonl", [], ["UTF-16"]),
        ("UTF-16 without BOM", "\n".join(json.dumps(r) for r in _rows()).encode("utf-16-le"), "jsonl", [],
         ["line 1", "NUL"]),
        ("UTF-32 with BOM", "\n".join(json.dumps(r) for r in _rows()).encode("utf-32"), "jsonl", [], ["UTF-32"]),
        ("UTF-16 CSV", "id,text\ni00,hello\n".encode("utf-16"), "csv", [], ["UTF-16"]),
        ("two UTF-8 BOMs", b"\xef\xbb\xbf\xef\xbb\xbf" + good, "jsonl", [], ["line 1"]),
        ("Latin-1 line in UTF-8", good + '{"id": "i09", "text": "café"}\n'.encode("latin-1"), "jsonl", [],
         ["line 5", "UTF-8"]),
        ("encoded surrogate (CESU-8)", good + b'{"id": "i09", "text": "\xed\xa0\x80"}\n', "jsonl", [],
         ["line 5", "UTF-8"]),
        ("overlong UTF-8", good + b'{"id": "i09", "text": "\xc0\xaf"}\n', "jsonl", [], ["line 5", "UTF-8"]),
        ("Latin-1 CSV", "id,text\ni00,José\n".encode("latin-1"), "csv", [], ["line 2", "UTF-8"]),
        # empty and not JSON Lines
        ("empty file", b"", "jsonl", [], ["empty"]),
        ("blank lines only", b"\n  \n\t\n", "jsonl", [], ["no items"]),
        ("one JSON array", json.dumps(_rows()).encode(), "json", [], ["line 1", "JSON"]),
        ("a bare string", b'"just text"\n', "jsonl", [], ["line 1", "object"]),
        ("CSV header only", b"id,text\n", "csv", [], ["no rows"]),
        # a file's content that looks like console markup is shown as it is, not interpreted
        ("markup in a value", good + line % b'["[/a]", "[bold]"]', "jsonl", [], ["line 5", "[/a]"]),
        ("emoji code in a value", good + line % b"[\":smile:\"]", "jsonl", [], [":smile:"]),
        ("not Parquet", b"PAR1 this is not parquet", "parquet", [], ["Parquet"]),
        # options (finding 7): empty labels, spaces around labels, a repeated label
        ("empty label", good, "jsonl", ["--labels", "no,,yes"], ["--labels", "empty"]),
        ("trailing comma", good, "jsonl", ["--labels", "no,yes,"], ["--labels", "empty"]),
        ("space after comma", good, "jsonl", ["--labels", "no, yes"], ["--labels", "' yes'", "'no,yes'"]),
        ("label given twice", good, "jsonl", ["--labels", "no,yes,no"], ["--labels", "twice"]),
        ("control character in a label", good, "jsonl", ["--labels", "no,y\tes"], ["--labels", "control"]),
    ]
    out = []
    for k, (case, data, suffix, extra, fragments) in enumerate(cases):
        path = d / f"pool{k:02d}.{suffix}"
        path.write_bytes(data)
        out.append((case, path, extra, fragments))
    # Parquet written by another tool: bytes that are not UTF-8 in a string column, a NUL in a text
    bad_utf8 = pa.array([b"ok", b"\xff\xfe"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"id": ["i00", "i01"], "text": bad_utf8}), d / "bad_utf8.parquet")
    out.append(("Parquet string column not UTF-8", d / "bad_utf8.parquet", [], ["'text'", "UTF-8"]))
    pq.write_table(pa.table({"id": ["i00", "i01"], "text": ["fine", "a\x00b"]}), d / "nul.parquet")
    out.append(("NUL in a Parquet text", d / "nul.parquet", [], ["row 2", "NUL"]))
    return out


def test_hostile_pool_files_and_options_are_one_line_errors_and_write_nothing(tmp_path):
    """Findings 1 and 7 and the fuzz corpus: `curate init` refuses each hostile pool in one line, writes nothing."""
    pools = tmp_path / "pools"
    pools.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    cases = _hostile_pools(pools)
    labels_given = {"--labels"}

    def run(case):
        name, path, extra, fragments = case
        project = work / f"proj-{path.stem}"
        options = list(INIT)
        if labels_given & set(extra):
            options[0:2] = []  # the case's own --labels replace the default ones
        proc = run_cli("init", project, "--pool", path, *options, *extra)
        wrong = _one_line_error(proc)
        err = proc.stderr.strip()
        missing = [f for f in fragments if f not in err]
        if wrong is None and missing:
            wrong = f"message lacks {missing}"
        if wrong is None and "--labels" not in extra and path.name not in err:
            wrong = "message does not name the file"
        if project.exists():
            wrong = (wrong or "") + " project folder written"
        return None if wrong is None else f"{name}: {wrong}: {err[-400:]!r}"

    failures = [f for f in _parallel(run, cases) if f]
    assert not failures, "\n".join(failures)
    assert sorted(p.name for p in work.iterdir()) == []  # no project, no temporary folder


def test_duplicate_label_error_names_the_labels_option(tmp_path):
    """Finding 7: the duplicate-label error said '(fix it in --prompt)'."""
    pool = tmp_path / "pool.jsonl"
    pool.write_bytes(_jsonl(_rows()))
    proc = run_cli("init", tmp_path / "p", "--pool", pool, "--labels", "no,yes,yes", "--positive", "yes",
                   "--prompt", "x")
    assert _one_line_error(proc) is None, proc.stderr
    assert "--labels" in proc.stderr and "twice" in proc.stderr and "--prompt" not in proc.stderr
    assert not (tmp_path / "p").exists()
    proc = run_cli("init", tmp_path / "p", "--pool", pool, "--labels", "no,yes", "--positive", "maybe",
                   "--prompt", "x")
    assert _one_line_error(proc) is None and "--positive 'maybe'" in proc.stderr and "--prompt" not in proc.stderr


def test_labels_are_kept_exactly_as_given(tmp_path):
    """`--labels` is no longer tidied silently: what is accepted is stored as written."""
    import tomllib

    pool = tmp_path / "pool.jsonl"
    pool.write_bytes(_jsonl(_rows()))
    run_cli("init", tmp_path / "p", "--pool", pool, "--labels", "not spam,spam: yes", "--positive", "spam: yes",
            "--prompt", "x", check=True)
    assert tomllib.loads((tmp_path / "p" / "curate.toml").read_text())["task"]["labels"] == ["not spam", "spam: yes"]


# ------------------------------------------------------------------------------------------- import


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One tiny project (20 items), built once: annotators ana, ben, cy, dee registered; round 0 selected i00
    (needs 2 labels) and i01 (needs 1); ana has labelled i01."""
    from curate.oracle.base import Annotation
    from curate.store import Store
    from curate.web.auth import add_annotator

    d = tmp_path_factory.mktemp("template")
    pool = d / "pool.jsonl"
    pool.write_bytes(_jsonl(_rows(N_ITEMS)))
    project = d / "proj"
    run_cli("init", project, "--pool", pool, *INIT, check=True)
    store = Store(project)
    for name in ("ana", "ben", "cy", "dee"):
        add_annotator(store, name)
    with store.transaction() as conn:
        store.add_selection(conn, 0, [
            {"item_id": "i00", "position": 0, "group_id": 0, "strategy": "random", "score": 0.5, "labels_needed": 2},
            {"item_id": "i01", "position": 1, "group_id": 1, "strategy": "random", "score": 0.5, "labels_needed": 1},
        ])
        store.add_annotation(conn, Annotation("i01", "ana", "yes", 0))
    store.close()
    return project


@pytest.fixture
def project(template, tmp_path) -> Path:
    return _copy(template, tmp_path / "proj")


def _state(project: Path) -> tuple[list, list]:
    """Every annotation (item, annotator, label, round, created_at) and every annotator name."""
    db = sqlite3.connect(project / "curate.db")
    try:
        anns = db.execute("select item_id, annotator, label, round, created_at from annotations order by id").fetchall()
        names = db.execute("select name from annotators order by name").fetchall()
    finally:
        db.close()
    return anns, names


def _copy(template: Path, to: Path) -> Path:
    """A copy of the template project (its SQLite shared-memory index is rebuilt on open)."""
    shutil.copytree(template, to, ignore=shutil.ignore_patterns("*-shm"))
    return to


def _ls(item: str, who, label: str = "yes", **extra) -> dict:
    return {"id": 1, "data": {"item_id": item, "text": "t"}, "annotations": [{
        "completed_by": who, "was_cancelled": False, "created_at": "2024-05-01T12:00:00Z",
        "result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}],
        **extra}]}


def _hostile_imports(d: Path) -> list[tuple[str, Path, list[str], list[str]]]:
    """(case, file, extra import options, fragments of the message)."""

    def rec(item="i05", who="ana", label="yes", **extra) -> str:
        return json.dumps({"item_id": item, "annotator": who, "label": label, **extra}, ensure_ascii=False)

    ok = rec("i04") + "\n"
    reg = ["--register-annotators"]
    cases: list[tuple[str, bytes, str, list[str], list[str]]] = [
        # finding 1: a lone surrogate in an annotator name (JSON escape), in JSON Lines and Label Studio
        ("surrogate annotator", (ok + '{"item_id": "i05", "annotator": "x\\ud800", "label": "yes"}\n').encode(),
         "jsonl", reg, ["line 2", "U+D800"]),
        ("surrogate annotator, not registering", (ok + '{"item_id": "i05", "annotator": "\\udc00", "label": "yes"}\n')
         .encode(), "jsonl", [], ["line 2", "U+DC00"]),
        ("surrogate Label Studio email", json.dumps([_ls("i05", {"email": "x\ud800"})]).encode(), "json", reg,
         ["task 1", "U+D800"]),
        ("surrogate label", (ok + '{"item_id": "i05", "annotator": "ana", "label": "\\ud800"}\n').encode(), "jsonl",
         [], ["line 2", "label"]),
        ("surrogate item id", (ok + '{"item_id": "\\ud800", "annotator": "ana", "label": "yes"}\n').encode(), "jsonl",
         [], ["line 2", "unknown item"]),
        # finding 2: names `annotators add` refuses, unregistered annotators, absurd rounds and times, the need
        ("newline in a name", (ok + rec(who="new\nline") + "\n").encode(), "jsonl", reg, ["line 2", "U+000A"]),
        ("NUL in a name", (ok + rec(who="nul\x00name") + "\n").encode(), "jsonl", reg, ["line 2", "U+0000"]),
        ("HTML name", (ok + rec(who="<script>alert(1)</script>") + "\n").encode(), "jsonl", reg, ["line 2", "HTML"]),
        ("HTML name in CSV", b"item_id,annotator,label\ni04,ana,yes\ni05,<b>bo</b>,no\n", "csv", reg,
         ["line 3", "HTML"]),
        ("zero-width name", (ok + rec(who="an\u200ba") + "\n").encode(), "jsonl", reg, ["line 2", "U+200B"]),
        ("unregistered annotator", (ok + rec(who="zed") + "\n").encode(), "jsonl", [],
         ["line 2", "'zed' is not registered", "--register-annotators"]),
        ("round 1000000000000", (ok + rec(round=1_000_000_000_000) + "\n").encode(), "jsonl", [],
         ["line 2", "round 1000000000000", "0 to 6"]),
        ("round in CSV", b"item_id,annotator,label,round\ni04,ana,yes,1\ni05,ana,no,99\n", "csv", [],
         ["line 3", "round 99"]),
        ("Label Studio round", json.dumps([_ls("i05", {"email": "ana"}, curate_round=10**12)]).encode(), "json", [],
         ["task 1", "round"]),
        ("created_at 9999-12-31", (ok + rec(created_at="9999-12-31T23:59:59Z") + "\n").encode(), "jsonl", [],
         ["line 2", "future"]),
        ("created_at year 1 (overflow)", (ok + rec(created_at="0001-01-01T00:00:00+14:00") + "\n").encode(), "jsonl",
         [], ["line 2", "created_at"]),
        ("created_at 1970", (ok + rec(created_at="1970-01-01T00:00:00Z") + "\n").encode(), "jsonl", [],
         ["line 2", "before 2000"]),
        ("created_at year 10000", (ok + rec(created_at="10000-01-01") + "\n").encode(), "jsonl", [],
         ["line 2", "created_at"]),
        ("need exceeded", "".join(rec("i00", who) + "\n" for who in ("ana", "ben", "cy", "dee")).encode(), "jsonl", [],
         ["line 3", "already has the 2 label(s)", "--on-excess keep-first"]),
        ("need exceeded by a stored label", (ok + rec("i01", "ben") + "\n").encode(), "jsonl", [],
         ["line 2", "'i01' already has the 1 label(s)"]),
        # hostile JSON
        ("bare NaN round", (ok + '{"item_id": "i05", "annotator": "ana", "label": "yes", "round": NaN}\n').encode(),
         "jsonl", [], ["line 2", "NaN"]),
        ("Infinity round", (ok + '{"item_id": "i05", "annotator": "ana", "label": "yes", "round": Infinity}\n')
         .encode(), "jsonl", [], ["line 2", "Infinity"]),
        ("1e999 round", (ok + '{"item_id": "i05", "annotator": "ana", "label": "yes", "round": 1e999}\n').encode(),
         "jsonl", [], ["line 2", "too large"]),
        ("5000-digit round", (ok + '{"item_id": "i05", "annotator": "ana", "label": "yes", "round": ' + "9" * 5000
                              + "}\n").encode(), "jsonl", [], ["line 2", "digits"]),
        ("deep nesting", ok.encode() + b'{"item_id": "i05", "x": ' + _deep(100_000) + b"}\n", "jsonl", [],
         ["line 2", "nested"]),
        ("deep Label Studio", b"[" + _deep(100_000) + b"]", "json", [], ["nested"]),
        ("NaN in Label Studio", b'[{"id": NaN, "data": {"item_id": "i05"}}]', "json", [], ["NaN"]),
        # encodings and empty files
        ("UTF-16 with BOM", ok.encode("utf-16"), "jsonl", [], ["UTF-16"]),
        ("UTF-16 CSV", "item_id,annotator,label\ni04,ana,yes\n".encode("utf-16"), "csv", [], ["UTF-16"]),
        ("UTF-32", ok.encode("utf-32"), "jsonl", [], ["UTF-32"]),
        ("Latin-1 name", ok.encode() + rec(who="José").encode("latin-1") + b"\n", "jsonl", [], ["line 2", "UTF-8"]),
        ("raw NUL in CSV", b"item_id,annotator,label\ni04,ana,yes\ni05,a\x00na,yes\n", "csv", [], ["line 3"]),
        ("empty", b"", "jsonl", [], ["empty"]),
        ("blank", b"\n\n \n", "csv", [], ["empty"]),
        ("markup label", (ok + rec(label="[/a]") + "\n").encode(), "jsonl", [], ["line 2", "[/a]"]),
        # options
        ("unknown --on-excess", ok.encode(), "jsonl", ["--on-excess", "keep-all"], ["--on-excess", "keep-first"]),
        ("negative --round", ok.encode(), "jsonl", ["--round", "-1"], ["--round"]),
    ]
    out = []
    for k, (case, data, suffix, extra, fragments) in enumerate(cases):
        path = d / f"labels{k:02d}.{suffix}"
        path.write_bytes(data)
        out.append((case, path, extra, fragments))
    return out


def test_hostile_import_files_are_one_line_errors_and_write_nothing(template, tmp_path):
    """Findings 1 and 2 and the fuzz corpus: `curate import` refuses each file whole, in one line."""
    before = _state(template)
    files = tmp_path / "files"
    files.mkdir()

    def run(case):
        name, path, extra, fragments = case
        project = tmp_path / f"proj-{path.stem}"  # a copy per case, so the cases run side by side
        _copy(template, project)
        round_opt = [] if "--round" in extra else ["--round", "0"]
        proc = run_cli("import", project, path, *round_opt, *extra)
        wrong = _one_line_error(proc)
        err = proc.stderr.strip()
        missing = [f for f in fragments if f not in err]
        if wrong is None and missing:
            wrong = f"message lacks {missing}"
        if _state(project) != before:
            wrong = (wrong or "") + " the database changed"
        return None if wrong is None else f"{name}: {wrong}: {err[-400:]!r}"

    failures = [f for f in _parallel(run, _hostile_imports(files)) if f]
    assert not failures, "\n".join(failures)


def test_import_needs_registered_annotators_or_registers_them_by_the_same_rules(project, tmp_path):
    """Finding 2: an unregistered annotator is refused unless --register-annotators, which applies the rules of
    `curate annotators add` (and `annotators add` refuses HTML too)."""
    path = tmp_path / "labels.csv"
    path.write_text("item_id,annotator,label\ni04,ana,yes\ni05,erin,no\ni06,erin,yes\n", encoding="utf-8")
    before = _state(project)
    refused = run_cli("import", project, path, "--round", "0")
    assert _one_line_error(refused) is None and "line 3" in refused.stderr and "--register-annotators" in refused.stderr
    assert _state(project) == before
    done = run_cli("import", project, path, "--round", "0", "--register-annotators")
    assert done.returncode == 0, done.stderr
    assert "added 3 annotations" in done.stdout and "registered 1 annotators" in done.stdout and "erin" in done.stdout
    anns, names = _state(project)
    assert ("erin",) in names and len(anns) == len(before[0]) + 3
    html = run_cli("annotators", "add", project, "<i>x</i>")
    assert _one_line_error(html) is None and "HTML" in html.stderr


def test_import_respects_each_items_label_need(project, tmp_path):
    """Finding 2: an item that needs 2 labels never ends with 4; --on-excess keep-first keeps the first ones."""
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps({"item_id": i, "annotator": who, "label": "yes"}) + "\n"
                            for i, who in [("i00", "ana"), ("i00", "ben"), ("i03", "cy"), ("i00", "cy"),
                                           ("i00", "dee"), ("i01", "ben")]), encoding="utf-8")
    before = _state(project)
    refused = run_cli("import", project, path, "--round", "0")
    assert _one_line_error(refused) is None and "line 4" in refused.stderr, refused.stderr
    assert _state(project) == before
    kept = run_cli("import", project, path, "--round", "0", "--on-excess", "keep-first")
    assert kept.returncode == 0, kept.stderr
    assert "added 3 annotations" in kept.stdout and "3 dropped" in kept.stdout
    anns, _ = _state(project)
    got = sorted((i, who) for i, who, *_ in anns)
    assert got == [("i00", "ana"), ("i00", "ben"), ("i01", "ana"), ("i03", "cy")]  # i00: 2, i01: 1 (ana's, stored)


def test_import_keeps_sane_rounds_and_times(project, tmp_path):
    """Finding 2: a round within the project's rounds and a past created_at are kept as given."""
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"item_id": "i07", "annotator": "ben", "label": "no", "round": 6,
                                "created_at": "2024-05-01T12:00:00Z"}) + "\n", encoding="utf-8")
    assert run_cli("import", project, path, "--round", "0").returncode == 0
    anns, _ = _state(project)
    assert anns[-1] == ("i07", "ben", "no", 6, pytest.approx(1714564800.0))


# ------------------------------------------------------------------------------------------- init after a kill


def _init_files(folder: Path) -> None:
    folder.mkdir()
    (folder / "pool.parquet").write_bytes(b"PAR1")
    (folder / "curate.toml").write_text("[task]\n", encoding="utf-8")
    (folder / "curate.db").write_bytes(b"")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_init_cleans_the_temporary_folders_a_killed_init_left(tmp_path):
    """Finding 6: stale `.NAME.xxxxxxxx` folders of the project are deleted by the next init; nothing else is."""
    import socket

    pool = tmp_path / "pool.jsonl"
    pool.write_bytes(_jsonl(_rows()))
    stale_old = tmp_path / ".proj.ab12cd34"  # no mark: an older curate, or killed in its first instant
    _init_files(stale_old)
    stale_dead = tmp_path / ".proj.zz99_x00"  # its init's process is gone
    _init_files(stale_dead)
    (stale_dead / ".curate-init").write_text(f"{socket.gethostname()} {_dead_pid()}")
    live = tmp_path / ".proj.live0000"  # an init still running (this test's process)
    _init_files(live)
    (live / ".curate-init").write_text(f"{socket.gethostname()} {os.getpid()}")
    other_host = tmp_path / ".proj.host0000"  # made on another machine: cannot tell, kept
    _init_files(other_host)
    (other_host / ".curate-init").write_text(f"elsewhere.example {_dead_pid()}")
    not_ours = tmp_path / ".proj.notes000"  # the user's own folder with the same shape of name
    not_ours.mkdir()
    (not_ours / "notes.txt").write_text("mine")
    other_project = tmp_path / ".projx.ab12cd34"
    _init_files(other_project)

    run_cli("init", tmp_path / "proj", "--pool", pool, *INIT, check=True)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert left == sorted(p.name for p in (live, other_host, not_ours, other_project))
    assert not (tmp_path / "proj" / ".curate-init").exists()


def test_init_killed_with_sigkill_is_cleaned_by_the_next_init(tmp_path):
    """Finding 6, with a real kill -9: an init stopped while its temporary folder exists (held there by a slow
    database step) leaves the folder; the next init deletes it and creates the project."""
    pool = tmp_path / "pool.jsonl"
    pool.write_bytes(_jsonl(_rows()))
    project = tmp_path / "proj"
    script = (
        "import sys, time\n"
        "import curate.project as p\n"
        "from curate.config import TaskConfig\n"
        "p.Store = lambda *a, **k: time.sleep(600)\n"  # the init stops inside its temporary folder
        "p.init_project(sys.argv[1], sys.argv[2], task=TaskConfig(labels=['no', 'yes'], positive='yes', prompt='x'))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(project), str(pool)], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not any((d / "curate.toml").exists() for d in tmp_path.glob(".proj.*")):
            assert proc.poll() is None and time.monotonic() < deadline, "the init did not reach its temporary folder"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = [p.name for p in tmp_path.glob(".proj.*")]
    assert len(left) == 1 and not project.exists()  # what the issue saw
    run_cli("init", project, "--pool", pool, *INIT, check=True)
    assert list(tmp_path.glob(".proj.*")) == []
    assert (project / "curate.toml").is_file() and (project / "pool.parquet").is_file()
