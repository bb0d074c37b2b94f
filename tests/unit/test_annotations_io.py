"""Annotation export and import: JSON Lines, CSV, Label Studio JSON."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import insert

from curate.annotations_io import (
    CSV_COLUMNS,
    LabelStudioAPI,
    export_annotations,
    export_tasks_labelstudio,
    import_annotations,
    labelstudio_label_config,
    labelstudio_overlap_note,
    round_label_needs,
)
from curate.config import TaskConfig
from curate.errors import CurateError
from curate.oracle.base import Annotation
from curate.project import Project, init_project
from curate.store import adjudications
from tests.unit.synthetic import LABELS, webis_like_rows

NEG, POS = LABELS  # "no-clickbait", "clickbait"
SUFFIX = {"jsonl": ".jsonl", "csv": ".csv", "labelstudio": ".json"}


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in webis_like_rows(20)), encoding="utf-8")
    return path


@pytest.fixture
def make_project(tmp_path: Path, pool: Path):
    def make(name: str) -> Project:
        task = TaskConfig(labels=LABELS, positive=POS, prompt="Is the headline clickbait?")
        init_project(tmp_path / name, pool, task=task)
        return Project.open(tmp_path / name)

    return make


def _annotate(project: Project, rows: list[tuple[int, str, str, int]]) -> None:
    """rows of (item position, annotator, label, round)."""
    with project.store.transaction() as conn:
        for pos, annotator, label, round_ in rows:
            assert project.store.add_annotation(conn, Annotation(project.ids[pos], annotator, label, round_))


def _snapshot(project: Project) -> list[tuple]:
    """Sorted (item_id, annotator, label, round, created_at) of every annotation."""
    return sorted(
        (a["item_id"], a["annotator"], a["label"], a["round"], a["created_at"]) for a in project.store.annotations()
    )


def _same(got: list[tuple], want: list[tuple]) -> None:
    """Equal, the times to the microsecond (the files hold ISO times with microseconds)."""
    assert [g[:4] for g in got] == [w[:4] for w in want]
    assert [g[4] for g in got] == pytest.approx([w[4] for w in want], abs=2e-6)


SAMPLE = [
    (0, "alice", POS, 1),
    (0, "bob", NEG, 1),
    (1, "alice", NEG, 1),
    (1, "bob", NEG, 1),
    (1, "carol@example.org", POS, 2),
    (5, "carol@example.org", NEG, 2),
    (7, "alice", POS, 3),
]


@pytest.fixture
def source(make_project) -> Project:
    project = make_project("a")
    _annotate(project, SAMPLE)
    with project.store.transaction() as conn:
        conn.execute(insert(adjudications).values(item_id=project.ids[0], label=POS, admin="root", created_at=1.7e9))
    return project


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "labelstudio"])
def test_round_trip_and_idempotent_reimport(fmt, source, make_project, tmp_path):
    path = tmp_path / f"out{SUFFIX[fmt]}"
    assert export_annotations(source.store, path, fmt, project=source) == len(SAMPLE) + 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no temporary file left
    target = make_project("b")
    result = import_annotations(target, path, round_index=6, register_annotators=True)
    assert result == {
        "added": len(SAMPLE),
        "skipped_existing": 0,
        "ignored": 1,
        "over_need": 0,
        "registered": ["alice", "bob", "carol@example.org"],
    }  # the adjudication is not an annotation
    _same(_snapshot(target), _snapshot(source))
    again = import_annotations(target, path, round_index=6, fmt=fmt)
    assert again == {"added": 0, "skipped_existing": len(SAMPLE), "ignored": 1, "over_need": 0, "registered": []}
    _same(_snapshot(target), _snapshot(source))


def test_export_file_contents(source, tmp_path):
    texts = dict(zip(source.ids, source.texts))
    export_annotations(source.store, tmp_path / "a.jsonl", "jsonl", project=source)
    records = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["kind"] for r in records] == ["annotation"] * len(SAMPLE) + ["adjudication"]
    assert set(records[0]) == set(CSV_COLUMNS)
    assert records[0]["text"] == texts[source.ids[0]]
    assert records[-1] == {
        "kind": "adjudication",
        "item_id": source.ids[0],
        "text": texts[source.ids[0]],
        "annotator": "root",
        "label": POS,
        "round": None,
        "created_at": "2023-11-14T22:13:20.000000Z",
    }

    export_annotations(source.store, tmp_path / "a.csv", "csv", project=source)
    with (tmp_path / "a.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == CSV_COLUMNS
    assert [(r["annotator"], r["label"], r["round"]) for r in rows[:2]] == [("alice", POS, "1"), ("bob", NEG, "1")]
    assert rows[-1]["kind"] == "adjudication" and rows[-1]["round"] == ""

    export_annotations(source.store, tmp_path / "a.json", "labelstudio", project=source)
    tasks = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert [t["id"] for t in tasks] == [1, 2, 3, 4]
    assert [t["data"]["item_id"] for t in tasks] == [source.ids[i] for i in (0, 1, 5, 7)]  # pool order
    first = tasks[0]
    assert first["data"]["text"] == texts[source.ids[0]]
    assert first["meta"]["curate_adjudication"] == {
        "label": POS,
        "admin": "root",
        "created_at": "2023-11-14T22:13:20.000000Z",
    }
    ann = first["annotations"][0]
    assert ann["completed_by"] == {"email": "alice"}
    assert ann["result"] == [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [POS]}}]
    assert ann["was_cancelled"] is False and ann["ground_truth"] is False
    assert ann["created_at"].endswith("Z") and ann["curate_round"] == 1
    assert "meta" not in tasks[1]


def test_import_keeps_existing_labels_and_adds_the_rest(source, make_project, tmp_path):
    path = tmp_path / "a.csv"
    export_annotations(source.store, path, "csv", project=source)
    target = make_project("b")
    _annotate(target, [(0, "alice", NEG, 0)])  # a different label already there: kept, not overwritten
    assert import_annotations(target, path, round_index=0, register_annotators=True) == {
        "added": len(SAMPLE) - 1,
        "skipped_existing": 1,
        "ignored": 1,
        "over_need": 0,
        "registered": ["alice", "bob", "carol@example.org"],
    }
    labels = {(a["item_id"], a["annotator"]): a["label"] for a in target.store.annotations()}
    assert labels[(source.ids[0], "alice")] == NEG


def test_minimal_csv_and_jsonl_use_the_given_round(make_project, tmp_path):
    project = make_project("p")
    ids = project.ids
    (tmp_path / "m.csv").write_text(
        f"item_id,annotator,label\n{ids[2]},dan,{POS}\n{ids[3]},dan,{NEG}\n", encoding="utf-8"
    )
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"item_id": ids[4], "annotator": "eve", "label": NEG, "round": 4})
        + "\n\n"
        + json.dumps({"item_id": int(ids[5]), "annotator": "eve", "label": POS})
        + "\n",
        encoding="utf-8",
    )
    assert import_annotations(project, tmp_path / "m.csv", round_index=2, register_annotators=True)["added"] == 2
    assert import_annotations(project, tmp_path / "m.jsonl", round_index=3, register_annotators=True)["added"] == 2
    got = {(a["item_id"], a["annotator"]): (a["label"], a["round"]) for a in project.store.annotations()}
    assert got == {
        (ids[2], "dan"): (POS, 2),
        (ids[3], "dan"): (NEG, 2),
        (ids[4], "eve"): (NEG, 4),
        (ids[5], "eve"): (POS, 3),  # an integer item id is its decimal string
    }


# -- Label Studio ---------------------------------------------------------------------------------


def _ls_annotation(completed_by, label, **extra) -> dict:
    return {
        "id": 1,
        "completed_by": completed_by,
        "result": [
            {"id": "r1", "from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}
        ],
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": "2024-05-01T12:00:00.123456Z",
        "lead_time": 3.2,
        **extra,
    }


def test_labelstudio_tasks_export_then_import_of_labelstudio_export(make_project, tmp_path):
    project = make_project("p")
    picked = [3, 9, 12]
    with project.store.transaction() as conn:
        project.store.add_selection(
            conn,
            2,
            [
                {"item_id": project.ids[i], "position": k, "group_id": k, "strategy": "random", "score": 0.5,
                 "labels_needed": 2}  # two experts per item: the import below brings two labels of one item
                for k, i in enumerate(picked)
            ],
        )
    path = tmp_path / "tasks.json"
    assert export_tasks_labelstudio(project, 2, path) == 3
    tasks = json.loads(path.read_text(encoding="utf-8"))
    assert tasks == [
        {"id": k + 1, "data": {"text": project.texts[i], "item_id": project.ids[i]}, "meta": {"curate_round": 2}}
        for k, i in enumerate(picked)
    ]
    with pytest.raises(CurateError, match="round 5 has no selected items"):
        export_tasks_labelstudio(project, 5, tmp_path / "none.json")
    assert round_label_needs(project, 2) == {2: 3}

    # What Label Studio's JSON export of those tasks looks like once labelled: task ids of its own,
    # completed_by a user id (its Export button) or a user object (a snapshot export with the users
    # expanded), a cancelled (skipped) annotation. The ids are named by their users' e-mails.
    exported = [
        {
            "id": 101,
            "data": tasks[0]["data"],
            "meta": tasks[0]["meta"],
            "annotations": [
                _ls_annotation(10, POS),
                _ls_annotation({"id": 11, "email": "ann@example.org", "first_name": "A", "last_name": "N"}, NEG),
                {**_ls_annotation(12, POS), "was_cancelled": True, "result": []},
            ],
            "predictions": [],
            "project": 7,
        },
        {
            "id": 102,
            "data": tasks[1]["data"],
            "meta": tasks[1]["meta"],
            "annotations": [_ls_annotation({"id": 12}, NEG)],
        },
        # a task made outside curate: the item in data.id, no round anywhere -> round_index
        {"id": 103, "data": {"text": "x", "id": project.ids[12]}, "annotations": [_ls_annotation(10, NEG)]},
    ]
    ls_path = tmp_path / "project-7-at-2024.json"
    ls_path.write_text(json.dumps(exported), encoding="utf-8")
    with pytest.raises(CurateError, match=r"task 1 \(id 101\) annotation 1: completed_by is Label Studio's user id 10"):
        import_annotations(project, ls_path, round_index=5, register_annotators=True)  # an id is not a person
    with pytest.raises(CurateError, match="user id 12, who is not a user of the Label Studio"):
        import_annotations(project, ls_path, round_index=5, register_annotators=True,
                           labelstudio_users={10: "ten@example.org"})
    with pytest.raises(CurateError, match="not a Label Studio JSON export"):
        import_annotations(project, tmp_path / "x.jsonl", round_index=5, labelstudio_users={})
    assert project.store.count_annotations() == 0
    users = {10: "ten@example.org", 11: "ann@example.org", 12: "twelve@example.org"}
    with pytest.raises(CurateError) as err:  # unregistered: named by e-mail, with both fixes
        import_annotations(project, ls_path, round_index=5, labelstudio_users=users)
    assert "annotator 'ten@example.org' is not registered" in str(err.value)
    assert "curate annotators add" in str(err.value) and " ten@example.org`" in str(err.value)
    assert "--register-annotators" in str(err.value) and "\n" not in str(err.value)
    assert import_annotations(project, ls_path, round_index=5, register_annotators=True, labelstudio_users=users) == {
        "added": 4, "skipped_existing": 0, "ignored": 1, "over_need": 0,
        "registered": ["ten@example.org", "ann@example.org", "twelve@example.org"],
    }
    got = sorted((a["item_id"], a["annotator"], a["label"], a["round"]) for a in project.store.annotations())
    assert got == sorted(
        [
            (project.ids[3], "ten@example.org", POS, 2),
            (project.ids[3], "ann@example.org", NEG, 2),
            (project.ids[9], "twelve@example.org", NEG, 2),
            (project.ids[12], "ten@example.org", NEG, 5),
        ]
    )
    assert [a["created_at"] for a in project.store.annotations()] == [pytest.approx(1714564800.123456)] * 4
    assert import_annotations(project, ls_path, round_index=5, labelstudio_users=users)["added"] == 0


def test_overlap_note_says_how_many_annotators_per_task():
    two = labelstudio_overlap_note({2: 3})
    assert two.startswith("each task needs 2 labels from different people (oracle.experts_per_item = 2)")
    assert "maximum_annotations" in two and "--labelstudio-url" in two and "oracle.experts_per_item = 1" in two
    assert "keep-first" not in two and "\n" not in two
    mixed = labelstudio_overlap_note({1: 4, 2: 3})
    assert "on 3 of 7 tasks, 1 on the others" in mixed and "--on-excess keep-first" in mixed
    assert labelstudio_overlap_note({1: 5}).startswith("each task needs 1 label:")


def test_label_studio_address_and_token_are_checked_before_any_request():
    for url in ("localhost:8080", "ftp://example.org", "", "http://"):
        with pytest.raises(CurateError, match="is not an http\\(s\\) address; give Label Studio's address"):
            LabelStudioAPI(url, "token")
    with pytest.raises(CurateError, match="needs Label Studio's API token; set LABEL_STUDIO_API_KEY"):
        LabelStudioAPI("http://127.0.0.1:8080", " ")
    # nothing listens on port 9 of 127.0.0.1 (discard): a one-line error naming the address
    with pytest.raises(CurateError, match="cannot reach Label Studio at http://127.0.0.1:9 .*that Label Studio runs"):
        LabelStudioAPI("http://127.0.0.1:9/", "token", timeout=5).user_emails()


def test_label_config_is_valid_xml_with_the_labels():
    labels = ['say "no"', "a & b", "<c>"]
    xml = labelstudio_label_config(labels, prompt="Is it <clickbait>?")
    root = ET.fromstring(xml)
    assert root.tag == "View"
    assert root.find("Header").get("value") == "Is it <clickbait>?"
    text = root.find("Text")
    assert (text.get("name"), text.get("value")) == ("text", "$text")
    choices = root.find("Choices")
    assert (choices.get("name"), choices.get("toName"), choices.get("choice")) == ("label", "text", "single")
    assert [c.get("value") for c in choices.findall("Choice")] == labels
    assert ET.fromstring(labelstudio_label_config(LABELS)).find("Header") is None


# -- errors ---------------------------------------------------------------------------------------


def _jsonl(*objs) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)


def _bad_cases(ids: list[str]) -> list[tuple[str, str, str, list[str]]]:
    """(file name, content, where, fragments of the message)."""
    ok = {"item_id": ids[0], "annotator": "a", "label": POS}
    ok2 = {"item_id": ids[1], "annotator": "a", "label": NEG}
    good_task = {"id": 1, "data": {"item_id": ids[0]}, "annotations": [_ls_annotation({"email": "u3"}, POS)]}

    def task(**kw):
        return json.dumps([good_task, {"id": 2, "data": {"item_id": ids[1]}, **kw}])

    return [
        ("u.jsonl", _jsonl(ok, {**ok2, "item_id": "nope"}), "line 2", ["unknown item id 'nope'", "pool"]),
        (
            "l.jsonl",
            _jsonl(ok, {**ok2, "label": "Clickbait"}),
            "line 2",
            ["label 'Clickbait' is not one of", "case-sensitive"],
        ),
        ("m.jsonl", _jsonl(ok, {"item_id": ids[1], "label": NEG}), "line 2", ["no annotator"]),
        ("j.jsonl", _jsonl(ok, '{"item_id": "x", '), "line 2", ["not valid JSON"]),
        ("o.jsonl", _jsonl(ok, "\n[1, 2]"), "line 3", ["not an object"]),
        (
            "d.jsonl",
            _jsonl(ok, ok2, {**ok, "label": NEG}),
            "line 3",
            ["a second time (first at line 1)", "one label per item"],
        ),
        ("r.jsonl", _jsonl(ok, {**ok2, "round": "two"}), "line 2", ["round 'two'"]),
        ("k.jsonl", _jsonl(ok, {**ok2, "kind": "vote"}), "line 2", ["kind 'vote'"]),
        ("t.jsonl", _jsonl(ok, {**ok2, "created_at": "yesterday"}), "line 2", ["created_at 'yesterday'", "ISO 8601"]),
        ("h.csv", f"item_id,who,label\n{ids[0]},a,{POS}\n", "line 1", ["no column annotator"]),
        (
            "g.csv",
            f"item_id,annotator,label\n{ids[0]},a,{POS}\n{ids[1]},a,{NEG},extra\n",
            "line 3",
            ["has 4 fields", "header has 3"],
        ),
        ("q.csv", f'item_id,annotator,label\n{ids[0]},a,{POS}\n{ids[1]},"a,{NEG}\n', "line 3", ["never closed"]),
        ("e.csv", f"item_id,annotator,label\n{ids[0]},a,{POS}\n{ids[1]},,{NEG}\n", "line 3", ["annotator is empty"]),
        ("n.csv", f"item_id,annotator,label\n{ids[0]},a,{POS}\n\n{ids[1]},a,maybe\n", "line 4", ["label 'maybe'"]),
        (
            "c.csv",
            f"item_id,annotator,label\n{ids[0]},a,{POS}\n{ids[0]},a,{POS}\n",
            "line 3",
            ["a second time (first at line 2)"],
        ),
        ("ls1.json", json.dumps({"tasks": []}), "", ["not a list of tasks"]),
        ("ls2.json", '[{"id": 1,\n "data": {]', "line 2", ["not valid JSON"]),
        (
            "ls3.json",
            task(annotations=[]).replace(f'"item_id": "{ids[1]}"', '"text": "x"'),
            "task 2 (id 2)",
            ["no data.item_id or data.id"],
        ),
        (
            "ls4.json",
            task(annotations=[{**_ls_annotation({"email": "u3"}, NEG), "completed_by": None}]),
            "task 2 (id 2) annotation 1",
            ["no completed_by"],
        ),
        (
            "ls5.json",
            task(
                annotations=[
                    {**_ls_annotation({"email": "u3"}, NEG), "result": [{"type": "choices", "value": {"choices": [POS, NEG]}}]}
                ]
            ),
            "task 2 (id 2) annotation 1",
            ["not exactly one label", 'choice="single"'],
        ),
        (
            "ls6.json",
            task(annotations=[_ls_annotation({"email": "u3"}, NEG), {**_ls_annotation({"email": "u4"}, NEG), "result": []}]),
            "task 2 (id 2) annotation 2",
            ["no choices result"],
        ),
        ("ls7.json", task(annotations=[_ls_annotation({"email": "u3"}, "spam")]), "task 2 (id 2) annotation 1", ["label 'spam'"]),
        (
            "ls8.json",
            task(annotations=[_ls_annotation({"email": "u3"}, NEG), _ls_annotation({"email": "u3"}, POS)]),
            "task 2 (id 2) annotation 2",
            ["a second time (first at task 2 (id 2) annotation 1)"],
        ),
        ("ls9.json", json.dumps([good_task, {"id": 2, "annotations": []}]), "task 2 (id 2)", ["no data object"]),
        (
            "ls10.json",
            task(annotations=[_ls_annotation(7, NEG)]),
            "task 2 (id 2) annotation 1",
            ["completed_by is Label Studio's user id 7, not a person", "--labelstudio-url", "LABEL_STUDIO_API_KEY"],
        ),
    ]


def test_every_bad_input_names_file_and_place_and_writes_nothing(make_project, tmp_path):
    project = make_project("p")
    _annotate(project, [(19, "z", NEG, 0)])
    before = _snapshot(project)
    cases = _bad_cases(project.ids)
    for name, content, where, fragments in cases:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        with pytest.raises(CurateError) as err:
            import_annotations(project, path, round_index=1)
        message = str(err.value)
        assert "\n" not in message, name
        assert message.startswith(f"{path}: {where}" if where else f"{path}: "), (name, message)
        for fragment in fragments:
            assert fragment in message, (name, message)
        assert ";" in message, (name, message)  # problem; fix
        assert _snapshot(project) == before, name


def test_file_level_errors(make_project, tmp_path):
    project = make_project("p")
    cases = {
        "missing.jsonl": (None, "not found"),
        "empty.csv": (b"", "is empty"),
        "blank.jsonl": (b"\n\n", "is empty"),
        "latin1.csv": ("item_id,annotator,label\nx,Jos\xe9,a\n".encode("latin-1"), "line 2: is not UTF-8"),
        "labels.txt": (b"x", "cannot tell the format"),
        "tasks.json": (json.dumps([{"id": 1, "data": {"item_id": project.ids[0]}}]).encode(), "holds no annotations"),
    }
    for name, (content, fragment) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(CurateError, match=None) as err:
            import_annotations(project, path, round_index=0)
        assert str(err.value).startswith(str(path)) and fragment in str(err.value), (name, str(err.value))
    with pytest.raises(CurateError, match="import format 'xml'"):
        import_annotations(project, tmp_path / "x.csv", round_index=0, fmt="xml")
    assert project.store.count_annotations() == 0


def test_export_errors_and_atomic_replace(source, tmp_path):
    with pytest.raises(CurateError, match="export format 'xlsx'"):
        export_annotations(source.store, tmp_path / "a.xlsx", "xlsx", project=source)
    with pytest.raises(CurateError, match="does not exist"):
        export_annotations(source.store, tmp_path / "no" / "a.jsonl", "jsonl", project=source)
    with pytest.raises(CurateError, match="is a directory"):
        export_annotations(source.store, tmp_path, "jsonl", project=source)
    path = tmp_path / "a.jsonl"
    path.write_text("old\n", encoding="utf-8")
    assert export_annotations(source.store, path, "jsonl", project=source) == len(SAMPLE) + 1
    assert "old" not in path.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
