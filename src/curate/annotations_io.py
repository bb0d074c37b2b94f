"""Annotations in and out of a project: JSON Lines, CSV and Label Studio JSON.

Export writes every annotation and adjudication of the project's database; import reads labels made
elsewhere (a spreadsheet, another curate project, a Label Studio project) into it.

File formats (one record per annotation):

- **JSON Lines** (``.jsonl``/``.ndjson``): one object per line,
  ``{"kind", "item_id", "text", "annotator", "label", "round", "created_at"}``.
- **CSV** (``.csv``): a header row with the same columns, double-quote quoting.

  ``kind`` is ``"annotation"``, or ``"adjudication"`` for an admin's final label of a disputed item (its
  ``annotator`` is the admin, its ``round`` empty). ``created_at`` is an ISO 8601 UTC time. To import,
  only ``item_id``, ``annotator`` and ``label`` are required; ``round``, ``kind`` and ``created_at`` are
  optional and any other column (``text``) is ignored.

- **Label Studio** (``.json``): a JSON list of tasks in Label Studio's task format
  (https://labelstud.io/guide/task_format)::

      {"id": 1, "data": {"text": "...", "item_id": "..."},
       "meta": {"curate_adjudication": {"label", "admin", "created_at"}},       # only when adjudicated
       "annotations": [{"id": 7, "completed_by": {"email": "alice"},
                        "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                    "value": {"choices": ["clickbait"]}}],
                        "was_cancelled": false, "ground_truth": false,
                        "created_at": "2024-05-01T12:00:00.000000Z", "curate_round": 1}]}

  ``from_name``/``to_name`` match :func:`labelstudio_label_config`. ``completed_by`` is written as an
  object with ``email`` (the form Label Studio's import resolves against the organisation's members:
  import into Label Studio works when the curate annotator names are the members' e-mails). On import
  the annotator is the person, named by their Label Studio e-mail: ``completed_by`` may be an object
  with ``email`` (a snapshot export with ``annotations__completed_by`` expanded), or Label Studio's
  numeric user id (what its Export button writes, checked against Label Studio 1.23.2), which is mapped
  to the user's e-mail through ``labelstudio_users`` (:meth:`LabelStudioAPI.user_emails`, ``curate
  import --labelstudio-url``); a user id without that map is refused. The label is the single value of
  the annotation's ``choices`` result, and the item id is ``data.item_id``, else ``data.id``. Cancelled
  (skipped) annotations are ignored.

:class:`LabelStudioAPI` is the little of Label Studio's HTTP API that curate uses (standard library only):
the users' e-mails, and creating a project for a round (its labelling config, ``maximum_annotations`` =
the round's labels per item, its tasks), which Label Studio Community's web interface cannot do (it has
no setting for the number of annotators per task).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
import shlex
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from xml.sax.saxutils import quoteattr

from curate.errors import CurateError
from curate.records import Annotation
from curate.store import Store
from curate.validation import JSONProblem, LabelRules, annotator_name_problem, loads_strict, round_limit

__all__ = [
    "EXPORT_FORMATS",
    "CSV_COLUMNS",
    "LabelStudioAPI",
    "export_annotations",
    "export_tasks_labelstudio",
    "import_annotations",
    "labelstudio_label_config",
    "labelstudio_overlap_note",
    "round_label_needs",
]

EXPORT_FORMATS = ("jsonl", "csv", "labelstudio")
CSV_COLUMNS = ["kind", "item_id", "text", "annotator", "label", "round", "created_at"]
LS_FROM_NAME = "label"  # the <Choices> tag's name in labelstudio_label_config
LS_TO_NAME = "text"  # the <Text> tag's name
_SUFFIX_FORMAT = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".json": "labelstudio"}
_KINDS = ("annotation", "adjudication")
ON_EXCESS = ("refuse", "keep-first")  # what import does with labels beyond an item's label need
_SHOW_MAX = 60


# --------------------------------------------------------------------------- helpers


def _fail(path: Path, where: str | None, problem: str, fix: str) -> CurateError:
    """A CurateError ``FILE: WHERE: PROBLEM; FIX`` on one line."""
    head = f"{path}: {where}: " if where else f"{path}: "
    return CurateError(" ".join(f"{head}{problem}; {fix}".split()))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def _iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with microseconds and a ``Z``, as Label Studio writes times."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: str) -> float:
    """ISO 8601 time to epoch seconds (a time without zone is UTC). Raises ValueError."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, write: Callable[[io.TextIOBase], None]) -> None:
    """Write a text file through a temporary file beside it, then rename it into place, so a reader
    (or a crash) never sees half a file.

    Raises:
        CurateError: ``path`` is a directory or its folder does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise _fail(path, None, "is a directory", "give a file name to write")
    if not path.parent.is_dir():
        raise _fail(path, None, f"the folder {path.parent} does not exist", "create it or choose another path")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _adjudication_rows(store: Store) -> list[dict]:
    """Adjudications as dicts ``{"item_id", "label", "admin", "created_at"}``, by item id."""
    with store.connection() as conn:
        return store.adjudications(conn)


# --------------------------------------------------------------------------- export


def _flat_records(store: Store, texts: dict[str, str]) -> list[dict]:
    """Every annotation (in insertion order), then every adjudication, as flat export records."""
    records = [
        {
            "kind": "annotation",
            "item_id": a["item_id"],
            "text": texts.get(a["item_id"]),
            "annotator": a["annotator"],
            "label": a["label"],
            "round": a["round"],
            "created_at": _iso(a["created_at"]),
        }
        for a in store.annotations()
    ]
    records += [
        {
            "kind": "adjudication",
            "item_id": a["item_id"],
            "text": texts.get(a["item_id"]),
            "annotator": a["admin"],
            "label": a["label"],
            "round": None,
            "created_at": _iso(a["created_at"]),
        }
        for a in _adjudication_rows(store)
    ]
    return records


def _choices_result(label: str) -> list[dict]:
    return [{"from_name": LS_FROM_NAME, "to_name": LS_TO_NAME, "type": "choices", "value": {"choices": [label]}}]


def _labelstudio_tasks(store: Store, project) -> tuple[list[dict], int]:
    """Label Studio tasks (one per annotated or adjudicated item, in pool order) and the record count."""
    anns = store.annotations()
    adjs = {a["item_id"]: a for a in _adjudication_rows(store)}
    by_item: dict[str, list[dict]] = {}
    for a in anns:
        by_item.setdefault(a["item_id"], []).append(a)
    position = project.position
    items = sorted(set(by_item) | set(adjs), key=lambda i: (position.get(i, len(position)), i))
    texts = dict(zip(project.ids, project.texts))
    tasks = []
    for n, item in enumerate(items, start=1):
        task: dict[str, Any] = {"id": n, "data": {"text": texts.get(item), "item_id": item}}
        if item in adjs:
            adj = adjs[item]
            task["meta"] = {
                "curate_adjudication": {
                    "label": adj["label"],
                    "admin": adj["admin"],
                    "created_at": _iso(adj["created_at"]),
                }
            }
        task["annotations"] = [
            {
                "id": a["id"],
                "completed_by": {"email": a["annotator"]},
                "result": _choices_result(a["label"]),
                "was_cancelled": False,
                "ground_truth": False,
                "created_at": _iso(a["created_at"]),
                "updated_at": _iso(a["created_at"]),
                "curate_round": a["round"],
            }
            for a in by_item.get(item, [])
        ]
        tasks.append(task)
    return tasks, len(anns) + len(adjs)


def export_annotations(store: Store, path: Path, fmt: str, *, project) -> int:
    """Write every annotation and adjudication of ``store`` to ``path``.

    Args:
        store: the project's database (``project.store``).
        path: the file to write (replaced atomically: temporary file, then rename).
        fmt: ``"jsonl"``, ``"csv"`` (one record per annotation, then one per adjudication with
            ``kind="adjudication"``) or ``"labelstudio"`` (a JSON list of Label Studio tasks, one per
            labelled item, its annotations inside and its adjudication in ``meta``); see the module doc.
        project: the :class:`curate.project.Project`, for the items' texts.

    Returns:
        The number of records written: annotations plus adjudications.

    Raises:
        CurateError: an unknown ``fmt``; ``path`` is a directory or its folder does not exist.
    """
    path = Path(path)
    if fmt not in EXPORT_FORMATS:
        raise CurateError(f"export format {fmt!r} is not supported; use one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "labelstudio":
        tasks, count = _labelstudio_tasks(store, project)
        _write_atomic(path, lambda fh: (json.dump(tasks, fh, ensure_ascii=False, indent=1), fh.write("\n")))
        return count
    records = _flat_records(store, dict(zip(project.ids, project.texts)))
    if fmt == "jsonl":

        def write(fh) -> None:
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")

    else:

        def write(fh) -> None:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for r in records:
                writer.writerow({k: "" if v is None else v for k, v in r.items()})

    _write_atomic(path, write)
    return len(records)


def labelstudio_label_config(labels: Sequence[str], *, prompt: str | None = None) -> str:
    """A Label Studio labelling config (XML) for single-choice text classification with ``labels``.

    The ``<Text name="text" value="$text"/>`` and ``<Choices name="label" toName="text">`` names match
    the tasks and results this module writes and reads. ``prompt``, when given, is shown above the text
    as a ``<Header>`` (the labelling policy). Values are XML-escaped.
    """
    lines = ["<View>"]
    if prompt:
        lines.append(f"  <Header value={quoteattr(' '.join(prompt.split()))}/>")
    lines.append(f'  <Text name="{LS_TO_NAME}" value="$text"/>')
    lines.append(f'  <Choices name="{LS_FROM_NAME}" toName="{LS_TO_NAME}" choice="single" showInline="true">')
    lines += [f"    <Choice value={quoteattr(label)}/>" for label in labels]
    lines += ["  </Choices>", "</View>"]
    return "\n".join(lines) + "\n"


def export_tasks_labelstudio(project, round_index: int, path: Path) -> int:
    """Write a round's selected items as Label Studio tasks without annotations, for a team to label in
    Label Studio (set its labelling config to :func:`labelstudio_label_config`), then bring the labels
    back with :func:`import_annotations`.

    Each task is ``{"id": n, "data": {"text", "item_id"}, "meta": {"curate_round": round_index}}``, in
    the round's selection order. Nothing about the model (scores, strategy) is included: labelling
    stays blind.

    Returns:
        The number of tasks written.

    Raises:
        CurateError: the round has no selected items; ``path`` is a directory or its folder does not exist.
    """
    tasks = _round_tasks(project, round_index)
    _write_atomic(Path(path), lambda fh: (json.dump(tasks, fh, ensure_ascii=False, indent=1), fh.write("\n")))
    return len(tasks)


def _round_selection(project, round_index: int) -> list[dict]:
    selection = project.store.selection(round_index)
    if not selection:
        raise CurateError(
            f"{project.path}: round {round_index} has no selected items; give a round that has been selected "
            f"(run `curate run {project.path}` to select one)"
        )
    return selection


def _round_tasks(project, round_index: int) -> list[dict]:
    """The tasks :func:`export_tasks_labelstudio` writes."""
    texts = dict(zip(project.ids, project.texts))
    return [
        {
            "id": n,
            "data": {"text": texts.get(s["item_id"]), "item_id": s["item_id"]},
            "meta": {"curate_round": round_index},
        }
        for n, s in enumerate(_round_selection(project, round_index), start=1)
    ]


def round_label_needs(project, round_index: int) -> dict[int, int]:
    """``{labels needed: number of items}`` of a round's selection: how many different people must label
    each item (``oracle.experts_per_item`` on the ``oracle.ceiling_share`` sample, one elsewhere).

    Raises:
        CurateError: the round has no selected items.
    """
    needs: dict[int, int] = {}
    for s in _round_selection(project, round_index):
        needs[int(s["labels_needed"])] = needs.get(int(s["labels_needed"]), 0) + 1
    return dict(sorted(needs.items()))


def labelstudio_overlap_note(needs: Mapping[int, int]) -> str:
    """One line on the annotators per task that a Label Studio project needs for a round whose items need
    ``needs`` labels (:func:`round_label_needs`)."""
    most = max(needs)
    if most == 1:
        return "each task needs 1 label: a Label Studio project's default (1 annotator per task) matches"
    line = f"each task needs {most} labels from different people (oracle.experts_per_item = {most})"
    if len(needs) > 1:
        line += (f" on {needs[most]} of {sum(needs.values())} tasks, 1 on the others (every task will get {most}: "
                 "import with --on-excess keep-first)")
    return line + (f": the Label Studio project must take {most} annotations per task (its maximum_annotations; "
                   "Label Studio Community's web interface has no such setting, so give --labelstudio-url to "
                   "create the project with it), or set oracle.experts_per_item = 1 before the round is selected "
                   "(`--experts 1` on a project's first `curate run`)")


# --------------------------------------------------------------------------- import


class _Record:
    """One validated annotation to import (or an ignored record, ``kind != "annotation"``)."""

    __slots__ = ("where", "kind", "item_id", "annotator", "label", "round", "created_at")

    def __init__(self, where: str, kind: str, item_id: str, annotator: str, label: str, round_: int, created_at):
        self.where, self.kind, self.item_id, self.annotator = where, kind, item_id, annotator
        self.label, self.round, self.created_at = label, round_, created_at


class _Checker:
    """Validates field values against the project, raising CurateErrors that name the file and place."""

    def __init__(self, project, path: Path, round_index: int,
                 ls_users: Mapping[int, str] | None = None) -> None:
        self.path = path
        self.labels = list(project.config.task.labels)
        self.position = project.position
        self.round_index = round_index
        self.ls_users = ls_users

    def fail(self, where: str | None, problem: str, fix: str) -> CurateError:
        return _fail(self.path, where, problem, fix)

    def item_id(self, where: str, value: Any, field: str = "item_id") -> str:
        if (
            isinstance(value, bool)
            or not isinstance(value, (str, int))
            or (isinstance(value, str) and not value.strip())
        ):
            raise self.fail(
                where, f"{field} is {_show(value)}, not an item id", "give the id of an item in the project's pool"
            )
        item = str(value)
        if item not in self.position:
            raise self.fail(
                where,
                f"unknown item id {_show(item)} (not in the project's pool)",
                "give the id of an item in the pool, as in the pool file",
            )
        return item

    def annotator(self, where: str, value: Any, field: str = "annotator") -> str:
        if (
            isinstance(value, bool)
            or not isinstance(value, (str, int))
            or (isinstance(value, str) and not value.strip())
        ):
            raise self.fail(where, f"{field} is {_show(value)}, not an annotator name", "give the annotator's name")
        name = str(value)
        problem = annotator_name_problem(name)
        if problem is not None:
            raise self.fail(
                where,
                f"{field} {_show(name)} {problem}",
                "give the annotator's name as registered (`curate annotators add` applies the same rules)",
            )
        return name

    def label(self, where: str, value: Any) -> str:
        if value not in self.labels or not isinstance(value, str):
            raise self.fail(
                where,
                f"label {_show(value)} is not one of the task's labels {self.labels}",
                "use one of the task's labels (they are case-sensitive)",
            )
        return value

    def round(self, where: str, value: Any) -> int:
        if value is None or value == "":
            return self.round_index
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(
                where, f"round {_show(value)} is not a round number", "give a whole number >= 0, or leave it empty"
            )
        return value

    def kind(self, where: str, value: Any) -> str:
        if value is None or value == "":
            return "annotation"
        if value not in _KINDS:
            raise self.fail(
                where,
                f"kind {_show(value)} is not one of {list(_KINDS)}",
                "give annotation or adjudication, or leave it empty",
            )
        return value

    def created_at(self, where: str, value: Any) -> float | None:
        if value is None or value == "":
            return None
        try:
            if not isinstance(value, str):
                raise ValueError
            return _parse_time(value)
        except (ValueError, OverflowError, OSError):
            raise self.fail(
                where,
                f"created_at {_show(value)} is not an ISO 8601 time",
                "write it like 2024-05-01T12:00:00Z, or leave it empty",
            ) from None


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise _fail(path, None, "is a directory, not a file", "give the annotations file itself")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _fail(path, None, "not found", "check the path to the annotations file") from None
    except OSError as exc:
        raise _fail(
            path, None, f"cannot be read ({exc.strerror or exc})", "check the path and its permissions"
        ) from None
    for bom, encoding in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                          (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise _fail(path, "line 1", f"is {encoding} text (it starts with a {encoding} byte-order mark)",
                        "save the file as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _fail(path, f"line {line}", "is not UTF-8 text", "save the file as UTF-8") from None


def _flat_record(check: _Checker, where: str, get: Callable[[str], Any]) -> _Record:
    """Validate one JSON Lines / CSV record; ``get(field)`` returns None for a missing field."""
    for field in ("item_id", "annotator", "label"):
        if get(field) is None:
            raise check.fail(where, f"no {field}", "give item_id, annotator and label on every line")
    kind = check.kind(where, get("kind"))
    item = check.item_id(where, get("item_id"))
    annotator = check.annotator(where, get("annotator"))
    label = check.label(where, get("label"))
    round_ = check.round(where, get("round")) if kind == "annotation" else -1
    return _Record(where, kind, item, annotator, label, round_, check.created_at(where, get("created_at")))


def _read_jsonl(check: _Checker, text: str) -> list[_Record]:
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            obj = loads_strict(line, strings=False)
        except JSONProblem as exc:
            raise check.fail(where, exc.msg, exc.fix) from None
        except json.JSONDecodeError as exc:
            raise check.fail(where, f"not valid JSON ({exc.msg})", "write one JSON object per line") from None
        if not isinstance(obj, dict):
            raise check.fail(where, f"is a JSON {type(obj).__name__}, not an object", "write one JSON object per line")
        records.append(_flat_record(check, where, obj.get))
    return records


def _read_csv(check: _Checker, text: str) -> list[_Record]:
    old_limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)
    quoting = "enclose a field holding a comma, a double quote or a line break in double quotes, doubling inner quotes"
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header: list[str] | None = None
        records = []
        while True:
            start = reader.line_num + 1
            where = f"line {start}"
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                problem = (
                    "a quoted field starting here is never closed (malformed CSV)"
                    if "unexpected end of data" in str(exc)
                    else f"malformed CSV ({exc})"
                )
                raise check.fail(where, problem, f"fix the quoting: {quoting}") from None
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = [h.strip() for h in row]
                missing = [c for c in ("item_id", "annotator", "label") if c not in header]
                if missing:
                    raise check.fail(
                        where,
                        f"the header has no column {', '.join(missing)}",
                        "give a header row with item_id, annotator, label (and optionally round)",
                    )
                dup = sorted({h for h in header if header.count(h) > 1})
                if dup:
                    raise check.fail(
                        where, f"column {dup[0]!r} appears twice in the header", "rename or remove one of them"
                    )
                continue
            if len(row) != len(header):
                raise check.fail(
                    where,
                    f"has {len(row)} fields but the header has {len(header)} (malformed CSV)",
                    f"give one field per column; {quoting}",
                )
            values = dict(zip(header, row))
            for field in ("item_id", "annotator", "label"):
                if not values[field].strip():
                    raise check.fail(where, f"{field} is empty", "give item_id, annotator and label on every row")
            records.append(_flat_record(check, where, values.get))
    finally:
        csv.field_size_limit(old_limit)
    if header is None:
        raise check.fail(
            None, "is empty (no header, no rows)", "give a header row item_id,annotator,label and one row per label"
        )
    return records


def _ls_annotator(check: _Checker, where: str, value: Any) -> str:
    """The annotator of a Label Studio annotation: the e-mail of its ``completed_by`` user."""
    if isinstance(value, dict):
        email = value.get("email")
        if isinstance(email, str) and email.strip():
            return check.annotator(where, email, "completed_by.email")
        if value.get("id") is None:
            raise check.fail(
                where, "completed_by has neither email nor id", "export the tasks from Label Studio again (JSON format)"
            )
        value = value["id"]
    if value is None:
        raise check.fail(
            where,
            "no completed_by (who labelled it)",
            "export from Label Studio in its JSON format, which names the annotator",
        )
    user_id = value
    if isinstance(user_id, str):
        if not user_id.strip().isdecimal():
            return check.annotator(where, user_id, "completed_by")  # a name written by hand
        user_id = int(user_id)
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise check.fail(
            where, f"completed_by is {_show(value)}, not a Label Studio user", "give Label Studio's JSON export unchanged"
        )
    if check.ls_users is None:
        raise check.fail(
            where,
            f"completed_by is Label Studio's user id {user_id}, not a person",
            "import with --labelstudio-url URL (the API token in LABEL_STUDIO_API_KEY) to name each annotator by "
            "their Label Studio e-mail",
        )
    if user_id not in check.ls_users:
        raise check.fail(
            where,
            f"completed_by is Label Studio user id {user_id}, who is not a user of the Label Studio at "
            "--labelstudio-url",
            "give the address of the Label Studio this file was exported from",
        )
    return check.annotator(where, check.ls_users[user_id], f"the e-mail of Label Studio user {user_id}")


def _ls_label(check: _Checker, where: str, result: Any) -> str:
    if not isinstance(result, list):
        raise check.fail(where, f"result is {_show(result)}, not a list", "export from Label Studio in its JSON format")
    choices = [
        r["value"]["choices"]
        for r in result
        if isinstance(r, dict) and isinstance(r.get("value"), dict) and "choices" in r["value"]
    ]
    if not choices:
        raise check.fail(
            where,
            "has no choices result (no label chosen)",
            "label with a <Choices> config (see labelstudio_label_config) and submit one choice per task",
        )
    picked = []
    for c in choices:
        if not isinstance(c, list) or len(c) != 1:
            raise check.fail(
                where,
                f"choices is {_show(c)}, not exactly one label",
                'use choice="single" in the <Choices> tag: one label per item',
            )
        picked.append(c[0])
    if len(set(map(str, picked))) > 1:
        raise check.fail(
            where,
            f"has several choices results with different labels {picked}",
            "keep one <Choices> tag: one label per item",
        )
    return check.label(where, picked[0])


def _read_labelstudio(check: _Checker, text: str) -> tuple[list[_Record], int]:
    """Records, and the number of records ignored: cancelled annotations and curate adjudications (``meta``)."""
    try:
        tasks = loads_strict(text, strings=False)
    except JSONProblem as exc:
        raise check.fail(None, exc.msg, exc.fix) from None
    except json.JSONDecodeError as exc:
        raise check.fail(
            f"line {exc.lineno}", f"not valid JSON ({exc.msg})", "give Label Studio's JSON export unchanged"
        ) from None
    if not isinstance(tasks, list):
        raise check.fail(
            None,
            f"is a JSON {type(tasks).__name__}, not a list of tasks",
            "give Label Studio's JSON export (Export > JSON), a list of tasks",
        )
    records, ignored = [], 0
    for t, task in enumerate(tasks, start=1):
        where = f"task {t}"
        if not isinstance(task, dict):
            raise check.fail(where, f"is {_show(task)}, not a task object", "give Label Studio's JSON export unchanged")
        if task.get("id") is not None:
            where = f"task {t} (id {task['id']})"
        data = task.get("data")
        if not isinstance(data, dict):
            raise check.fail(where, "has no data object", "give Label Studio's JSON export unchanged")
        field = "item_id" if data.get("item_id") is not None else "id"
        if data.get(field) is None:
            raise check.fail(
                where,
                "has no data.item_id or data.id naming the curate item",
                "label tasks made by `curate export --format labelstudio-tasks`, which carry each item's id",
            )
        item = check.item_id(where, data[field], f"data.{field}")
        meta = task.get("meta") if isinstance(task.get("meta"), dict) else {}
        task_round = check.round(where, meta.get("curate_round"))
        if meta.get("curate_adjudication") is not None:
            ignored += 1  # an adjudication written by export_annotations: not an annotation
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            raise check.fail(where, "annotations is not a list", "give Label Studio's JSON export unchanged")
        for a, ann in enumerate(annotations, start=1):
            at = f"{where} annotation {a}"
            if not isinstance(ann, dict):
                raise check.fail(
                    at, f"is {_show(ann)}, not an annotation object", "give Label Studio's JSON export unchanged"
                )
            if ann.get("was_cancelled"):
                ignored += 1
                continue
            annotator = _ls_annotator(check, at, ann.get("completed_by"))
            label = _ls_label(check, at, ann.get("result"))
            round_ = task_round if ann.get("curate_round") is None else check.round(at, ann["curate_round"])
            records.append(
                _Record(at, "annotation", item, annotator, label, round_, check.created_at(at, ann.get("created_at")))
            )
    return records, ignored


def import_annotations(
    project,
    path: Path,
    *,
    round_index: int,
    fmt: str | None = None,
    register_annotators: bool = False,
    on_excess: str = "refuse",
    labelstudio_users: Mapping[int, str] | None = None,
) -> dict:
    """Import labels from a file into the project's database, under the rules the labelling app obeys.

    The file is read and every record checked (format, fields, item, annotator name, label, round);
    then, in one exclusive transaction, each record passes :meth:`curate.validation.LabelRules.check`
    (the labelling app's and the loop's rules: the annotator is registered, the round is at most the
    project's last one, ``created_at`` lies between 2000-01-01 and now, and an item never gets more
    labels than its selection's ``labels_needed``) and is inserted. If any record breaks a rule, nothing
    is written. (item, annotator) pairs the database already holds are skipped (whatever their label), so
    importing the same file twice adds nothing.

    Args:
        project: the :class:`curate.project.Project`.
        path: a JSON Lines, CSV or Label Studio JSON file (see the module doc).
        round_index: the round of the records that do not give their own: a ``round`` field (JSON Lines,
            CSV); in Label Studio, the annotation's ``curate_round``, else the task's ``meta.curate_round``
            (as :func:`export_annotations` and :func:`export_tasks_labelstudio` write them).
        fmt: ``"jsonl"``, ``"csv"`` or ``"labelstudio"``; None: from the suffix (``.jsonl``/``.ndjson``,
            ``.csv``, ``.json``).
        register_annotators: register the file's annotators that are not registered yet (same name rules
            as ``curate annotators add``; they get no working sign-in token: ``curate annotators rotate``
            gives one). False: an unregistered annotator is refused.
        on_excess: what to do with a label that would give an item more labels than it needs:
            ``"refuse"`` the whole import, or ``"keep-first"``: keep the labels already stored and the
            file's first ones (in file order) up to the need, and drop the rest.
        labelstudio_users: Label Studio's ``{user id: e-mail}`` (:meth:`LabelStudioAPI.user_emails`), to
            name the annotator of a Label Studio annotation whose ``completed_by`` is a user id (Label
            Studio's Export button writes ids); without it such an annotation is refused.

    Returns:
        ``{"added": int, "skipped_existing": int, "ignored": int, "over_need": int, "registered": [str]}``:
        annotations inserted; annotations whose (item, annotator) was already in the database; records
        not imported by design (``kind="adjudication"`` rows, a Label Studio task's
        ``meta.curate_adjudication``, cancelled Label Studio annotations); labels dropped by
        ``on_excess="keep-first"``; annotators registered. ``created_at`` is kept when the file gives it,
        else the import time.

    Raises:
        CurateError: one line naming the file, the line (``task N annotation M`` for Label Studio) and the
            fix, when: the format is unknown; the file is missing, not UTF-8 or empty; a JSON line or the
            JSON document is malformed; a CSV row is ragged or a quote never closed; a required field
            (item_id, annotator, label; Label Studio: data.item_id/data.id, completed_by, a choices
            result) is missing; an item id is not in the pool; a label is not one of the task's labels;
            a round or time is malformed; an annotator labels the same item twice in the file; the file
            holds no annotation at all; an annotator name breaks the name rules, or is not registered
            (without ``register_annotators``); a round is beyond the project's last round; a time is
            before 2000 or in the future; a label exceeds its item's need (with ``on_excess="refuse"``);
            ``on_excess`` is unknown; a Label Studio ``completed_by`` is a user id that
            ``labelstudio_users`` does not give (or is not given).
    """
    path = Path(path)
    if isinstance(round_index, bool) or not isinstance(round_index, int) or round_index < 0:
        raise CurateError(f"--round {round_index!r}: not a round number; give a whole number >= 0")
    if on_excess not in ON_EXCESS:
        raise CurateError(f"--on-excess {on_excess!r} is not supported; use one of {', '.join(ON_EXCESS)}")
    if fmt is None:
        fmt = _SUFFIX_FORMAT.get(path.suffix.lower())
        if fmt is None:
            raise _fail(
                path,
                None,
                f"cannot tell the format from the suffix {path.suffix or '(none)'!r}",
                "name the file .jsonl, .csv or .json, or give the format",
            )
    elif fmt not in EXPORT_FORMATS:
        raise _fail(path, None, f"import format {fmt!r} is not supported", f"use one of {', '.join(EXPORT_FORMATS)}")
    if labelstudio_users is not None and fmt != "labelstudio":
        raise _fail(path, None, f"is {fmt}, not a Label Studio JSON export",
                    "give --labelstudio-url only with a Label Studio export (.json)")
    text = _read_text(path)
    check = _Checker(project, path, round_index, labelstudio_users)
    if not text.strip():
        raise check.fail(None, "is empty (no annotations)", "give a file with at least one annotation")
    ignored = 0
    if fmt == "jsonl":
        records = _read_jsonl(check, text)
    elif fmt == "csv":
        records = _read_csv(check, text)
    else:
        records, ignored = _read_labelstudio(check, text)
    ignored += sum(1 for r in records if r.kind != "annotation")
    records = [r for r in records if r.kind == "annotation"]
    first: dict[tuple[str, str], str] = {}
    for r in records:
        key = (r.item_id, r.annotator)
        if key in first:
            raise check.fail(
                r.where,
                f"annotator {_show(r.annotator)} labels item {_show(r.item_id)} a second time (first at {first[key]})",
                "keep one label per item and annotator in the file",
            )
        first[key] = r.where
    if not records and not ignored:
        raise check.fail(None, "holds no annotations", "label the items first, then export and import them")

    added = skipped = over = 0
    registered: list[str] = []
    store = project.store
    now = time.time()
    with store.exclusive_transaction() as conn:
        rules = LabelRules(
            project.config.task.labels,
            project.position,
            max_round=round_limit(conn, project.config.loop.rounds),
            registered=True,
        )
        known_names = store.annotator_names(conn)
        for r in records:
            if r.annotator not in known_names:
                if not register_annotators:
                    raise check.fail(
                        r.where,
                        f"annotator {r.annotator!r} is not registered in this project",
                        f"register them first (`curate annotators add {shlex.quote(str(project.path))} "
                        f"{shlex.quote(r.annotator)}`), or import with --register-annotators",
                    )
                store.insert_annotator(
                    conn,
                    r.annotator,
                    hashlib.sha256(secrets.token_bytes(32)).hexdigest(),  # no one holds this token
                    is_admin=False,
                    created_at=now,
                )
                known_names.add(r.annotator)
                registered.append(r.annotator)
            ann = Annotation(r.item_id, r.annotator, r.label, r.round)
            rejection = rules.check(conn, ann, created_at=r.created_at, now=now)
            if rejection is not None and rejection.rule == "need" and on_excess == "keep-first":
                over += 1
                continue
            if rejection is not None:
                fix = rejection.fix
                if rejection.rule == "need":
                    fix = ("drop the extra labels from the file, or import with --on-excess keep-first to keep the "
                           "first ones up to the need")
                raise check.fail(r.where, rejection.problem, fix)
            if not store.add_annotation(conn, ann):
                skipped += 1
                continue
            added += 1
            if r.created_at is not None:
                store.set_annotation_time(conn, r.item_id, r.annotator, r.created_at)
    return {"added": added, "skipped_existing": skipped, "ignored": ignored, "over_need": over,
            "registered": registered}


# --------------------------------------------------------------------------- Label Studio's HTTP API

LABEL_STUDIO_TOKEN_ENV = "LABEL_STUDIO_API_KEY"  # the variable Label Studio's own SDK reads the token from


class LabelStudioAPI:
    """The few calls of Label Studio's HTTP API that curate makes (tested against Label Studio 1.23.2).

    ``token`` is the API token of a member of the organisation, from Label Studio's Account & Settings:
    a personal access token (a JWT, exchanged at ``/api/token/refresh/`` for a short-lived access token
    sent as ``Bearer``) or a legacy token (sent as ``Token``). Every failure is a one-line
    :class:`~curate.errors.CurateError` naming the address and the fix.
    """

    def __init__(self, url: str, token: str | None, *, timeout: float = 60.0) -> None:
        """Check the address and the token's presence; nothing is sent yet.

        Raises:
            CurateError: ``url`` is not an http(s) address; ``token`` is empty.
        """
        parsed = urllib.parse.urlsplit(url or "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CurateError(
                f"--labelstudio-url {url!r} is not an http(s) address; give Label Studio's address, like "
                "http://localhost:8080"
            )
        if not token or not token.strip():
            raise CurateError(
                f"--labelstudio-url {url} needs Label Studio's API token; set {LABEL_STUDIO_TOKEN_ENV} to the access "
                "token from Label Studio's Account & Settings"
            )
        self.url = url.rstrip("/")
        self.token = token.strip()
        self.timeout = timeout
        self._auth: str | None = None

    def _send(self, method: str, path: str, body: Any = None, *, auth: str | None = None) -> Any:
        """One request; the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth is not None:
            request.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _ls_detail(exc)
            if exc.code in (401, 403):
                raise CurateError(
                    f"Label Studio at {self.url} refused the API token ({method} {path}: HTTP {exc.code}{detail}); "
                    f"set {LABEL_STUDIO_TOKEN_ENV} to a current access token from its Account & Settings (a member "
                    "of the organisation)"
                ) from None
            raise CurateError(
                f"Label Studio at {self.url} answered HTTP {exc.code} to {method} {path}{detail}; check the address "
                "(Label Studio's own, like http://localhost:8080) and its log"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CurateError(
                f"cannot reach Label Studio at {self.url} ({reason}); check the address and that Label Studio runs"
            ) from None
        try:
            return json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CurateError(
                f"{self.url} answered {method} {path} with something other than JSON; is it Label Studio's address "
                "(like http://localhost:8080)?"
            ) from None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """``method`` ``path`` (``/api/...``) with ``body`` as JSON, authenticated; the decoded JSON answer.

        Raises:
            CurateError: Label Studio cannot be reached, refuses the token or the request, or answers
                something other than JSON.
        """
        if self._auth is None:
            if self.token.count(".") == 2:  # a personal access token (JWT refresh token)
                answer = self._send("POST", "/api/token/refresh/", {"refresh": self.token})
                if not isinstance(answer, dict) or not isinstance(answer.get("access"), str):
                    raise CurateError(
                        f"Label Studio at {self.url} gave no access token for the personal access token; set "
                        f"{LABEL_STUDIO_TOKEN_ENV} to a current token from its Account & Settings"
                    )
                self._auth = f"Bearer {answer['access']}"
            else:
                self._auth = f"Token {self.token}"
        return self._send(method, path, body, auth=self._auth)

    def user_emails(self) -> dict[int, str]:
        """``{user id: e-mail}`` of the organisation's users (``GET /api/users/``).

        Raises:
            CurateError: as :meth:`request`, or the answer is not a list of users.
        """
        answer = self.request("GET", "/api/users/")
        users = answer.get("results") if isinstance(answer, dict) else answer  # a list; paginated in some versions
        if not isinstance(users, list):
            raise CurateError(f"Label Studio at {self.url} answered GET /api/users/ without a list of users")
        return {
            u["id"]: u["email"]
            for u in users
            if isinstance(u, dict) and isinstance(u.get("id"), int) and isinstance(u.get("email"), str) and u["email"]
        }

    def create_round_project(self, project, round_index: int, *, title: str | None = None) -> dict:
        """Create a Label Studio project for a round and import its tasks.

        The project gets :func:`labelstudio_label_config`, ``maximum_annotations`` = the most labels an
        item of the round needs (each task is then offered to that many different annotators), and the
        tasks :func:`export_tasks_labelstudio` writes.

        Returns:
            ``{"id", "url", "tasks", "maximum_annotations"}``: the Label Studio project's id, its
            address, the number of tasks imported and the annotators per task.

        Raises:
            CurateError: the round has no selected items; as :meth:`request`; Label Studio did not keep the
                settings or import every task.
        """
        tasks = _round_tasks(project, round_index)
        overlap = max(round_label_needs(project, round_index))
        title = title or f"curate {Path(project.path).name} round {round_index}"
        created = self.request("POST", "/api/projects/", {
            "title": title[:50],  # Label Studio's limit
            "description": f"curate round {round_index} of {Path(project.path).resolve()}",
            "label_config": labelstudio_label_config(project.config.task.labels, prompt=project.config.task.prompt),
            "maximum_annotations": overlap,
        })
        if not isinstance(created, dict) or not isinstance(created.get("id"), int):
            raise CurateError(f"Label Studio at {self.url} answered POST /api/projects/ without a project id")
        pid = created["id"]
        if created.get("maximum_annotations") != overlap:
            raise CurateError(
                f"Label Studio at {self.url} created project {pid} with maximum_annotations "
                f"{created.get('maximum_annotations')!r}, not {overlap}; set it in the project's settings or its API"
            )
        imported = self.request("POST", f"/api/projects/{pid}/import", tasks)
        count = imported.get("task_count") if isinstance(imported, dict) else None
        if count != len(tasks):
            raise CurateError(
                f"Label Studio at {self.url} imported {count!r} of the round's {len(tasks)} tasks into project {pid}; "
                "see its log"
            )
        return {"id": pid, "url": f"{self.url}/projects/{pid}/data", "tasks": count, "maximum_annotations": overlap}


def _ls_detail(exc: urllib.error.HTTPError) -> str:
    """``": DETAIL"`` from Label Studio's JSON error body, cut short; empty when there is none."""
    try:
        body = json.loads(exc.read().decode("utf-8", "replace") or "null")
    except (json.JSONDecodeError, OSError, ValueError):
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(body, dict) and body.get("validation_errors"):
        detail = f"{detail or ''} {json.dumps(body['validation_errors'], ensure_ascii=False)}".strip()
    return f": {' '.join(str(detail).split())[:200]}" if detail else ""
