"""Reading the pool of unlabelled items (JSON Lines, CSV/TSV or Parquet) into one Arrow table.

A pool table always starts with two string columns, ``id`` and ``text``, followed by every
other column of the input file, kept as it was (for example the Webis crowd ``judgments`` as
``list<double>``, ``truth_mean`` and the gold ``label``).

Every problem with the input file raises :class:`curate.errors.CurateError` with a one-line
message that names the file, where in it the problem is (``line N`` for JSON Lines and CSV,
counting the CSV header as line 1; ``row N``, 1-based, for Parquet), what is wrong and how to
fix it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.validation import JSONProblem, loads_strict, text_problem

__all__ = ["SUPPORTED_SUFFIXES", "load_pool", "read_pool", "write_pool"]

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_CSV_SUFFIXES = (".csv", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")
SUPPORTED_SUFFIXES: tuple[str, ...] = _JSONL_SUFFIXES + _CSV_SUFFIXES + _PARQUET_SUFFIXES

_MISSING: Any = object()  # a JSON Lines row without the key (as opposed to an explicit null)
_UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_SHOW_MAX = 60  # longest value shown in a message


# --------------------------------------------------------------------------- messages


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(path: Path, where: str | None, problem: str, fix: str) -> CurateError:
    """A CurateError ``FILE: WHERE: PROBLEM; FIX`` on a single line."""
    head = f"{path}: {where}: " if where else f"{path}: "
    return CurateError(_one_line(f"{head}{problem}; {fix}"))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def _kind(value: Any) -> str:
    if value is None or value is _MISSING:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _names(columns: Sequence[str], limit: int = 30) -> str:
    shown = ", ".join(repr(c) for c in columns[:limit])
    if len(columns) > limit:
        shown += f", ... ({len(columns) - limit} more)"
    return shown or "(none)"


# --------------------------------------------------------------------------- sources


@dataclass
class _Source:
    """One input file, parsed: its columns in input order and access to their values."""

    path: Path
    columns: list[str]
    n_rows: int
    values: Callable[[str], list[Any]]  # Python values of a column; may contain _MISSING
    array: Callable[[str], pa.Array | pa.ChunkedArray]  # Arrow values of a kept column
    where: Callable[[int], str]  # "line 12" / "row 3" for the 0-based item index


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _fail(path, None, f"cannot be read ({exc.strerror or exc})", "check the path and its permissions") from None


def _decode(path: Path, data: bytes) -> str:
    """The file's text; a UTF-8 byte-order mark is dropped. A UTF-16/32 byte-order mark, invalid UTF-8 and
    a NUL character (a binary file, or UTF-16 without its mark) are refused, naming the line."""
    for bom, encoding in _OTHER_BOMS:
        if data.startswith(bom):
            raise _fail(path, "line 1", f"the file is {encoding} (it starts with a {encoding} byte-order mark)",
                        "save the file as UTF-8")
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        column = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        raise _fail(
            path,
            f"line {line}",
            f"holds a NUL byte (0x00 at column {column}); a pool is UTF-8 text (is this a binary or UTF-16 file?)",
            "remove the NUL bytes, or save the file as UTF-8 text",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(
            path,
            f"line {line}",
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column})",
            "save the file as UTF-8",
        ) from None


def _jsonl_source(path: Path) -> _Source:
    text = _decode(path, _read_bytes(path))
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    columns: dict[str, None] = {}  # ordered set: keys in order of first appearance
    last_keys: tuple[str, ...] | None = None
    loads = loads_strict
    for number, line in enumerate(text.split("\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            obj = loads(line)
        except JSONProblem as exc:
            raise _fail(path, f"line {number}", exc.msg, exc.fix) from None
        except json.JSONDecodeError as exc:
            hint = "each line must hold one JSON object (JSON Lines)"
            if line.lstrip().startswith("[") and not rows:
                hint += "; the file looks like one JSON array: write one object per line instead"
            raise _fail(
                path, f"line {number}", f"not valid JSON ({exc.msg} at column {exc.colno})", f"fix the line; {hint}"
            ) from None
        if not isinstance(obj, dict):
            raise _fail(
                path,
                f"line {number}",
                f"expected a JSON object, got {_kind(obj)} {_show(obj)}",
                'write one object per line, e.g. {"id": "1", "text": "..."}',
            )
        keys = tuple(obj)
        if keys != last_keys:
            for key in keys:
                columns.setdefault(key, None)
            last_keys = keys
        rows.append(obj)
        lines.append(number)

    def values(column: str) -> list[Any]:
        return [row.get(column, _MISSING) for row in rows]

    def array(column: str) -> pa.Array:
        data = [row.get(column) for row in rows]
        try:
            return pa.array(data)
        except OverflowError:
            raise _too_large(path, column, data, lambda i: f"line {lines[i]}") from None
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise _mixed_types(path, column, data, lambda i: f"line {lines[i]}", exc) from None

    return _Source(path, list(columns), len(rows), values, array, lambda i: f"line {lines[i]}")


def _too_large(path: Path, column: str, data: list[Any], where: Callable[[int], str]) -> CurateError:
    """An integer of column ``column`` does not fit in 64 bits: name the first line that holds one."""

    def big(value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return not -(2**63) <= value < 2**64
        if isinstance(value, list):
            return any(big(v) for v in value)
        if isinstance(value, dict):
            return any(big(v) for v in value.values())
        return False

    at = next((i for i, v in enumerate(data) if big(v)), None)
    return _fail(
        path,
        where(at) if at is not None else None,
        f"a number in column {column!r} is too large for a 64-bit integer",
        f"write it as a string, or remove column {column!r}",
    )


def _mixed_types(path: Path, column: str, data: list[Any], where: Callable[[int], str], exc: Exception) -> CurateError:
    """Column ``column`` could not become one Arrow column: name the first line that differs."""
    first = next((i for i, v in enumerate(data) if v is not None), None)
    if first is not None:
        kind = _kind(data[first])
        other = next((i for i in range(first + 1, len(data)) if data[i] is not None and _kind(data[i]) != kind), None)
        if other is not None:
            return _fail(
                path,
                where(other),
                f"column {column!r} holds {_kind(data[other])} {_show(data[other])} here but "
                f"{kind} on {where(first)}",
                f"give every value of {column!r} the same type, or remove the column",
            )
    return _fail(
        path,
        None,
        f"the values of column {column!r} cannot be stored as one column ({exc})",
        f"give every value of {column!r} the same type, or remove the column",
    )


def _csv_source(path: Path, delimiter: str) -> _Source:
    text = _decode(path, _read_bytes(path))
    kind = "TSV" if delimiter == "\t" else "CSV"
    quoting_fix = (
        "a field that holds the delimiter, a double quote or a line break must be enclosed in double quotes, "
        "with inner double quotes doubled"
    )
    old_limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # long documents are fine; restored below
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        header: list[str] | None = None
        records: list[list[str]] = []
        lines: list[int] = []
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if "unexpected end of data" in str(exc):
                    problem = f"a quoted field in the record starting here is never closed (malformed {kind})"
                else:
                    problem = f"malformed {kind} ({exc})"
                raise _fail(path, f"line {start}", problem, f"fix the quoting: {quoting_fix}") from None
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if header is None:
                header = record
                seen: dict[str, int] = {}
                for position, name in enumerate(header, start=1):
                    if name in seen:
                        raise _fail(
                            path,
                            f"line {start}",
                            f"column {name!r} appears twice in the header (columns {seen[name]} and {position})",
                            "rename one of them",
                        )
                    seen[name] = position
                continue
            if len(record) != len(header):
                raise _fail(
                    path,
                    f"line {start}",
                    f"has {len(record)} fields but the header has {len(header)} (malformed {kind})",
                    f"give every row one field per header column; {quoting_fix}",
                )
            records.append(record)
            lines.append(start)
    finally:
        csv.field_size_limit(old_limit)
    if header is None:
        header = []
    if header and not records:
        raise _fail(path, None, "has a header but no rows (no items)", "add at least one item below the header")
    columns_data = {name: [r[j] for r in records] for j, name in enumerate(header)}
    where = lambda i: f"line {lines[i]}"  # noqa: E731

    def values(column: str) -> list[Any]:
        return columns_data[column]

    def array(column: str) -> pa.Array:
        return _infer_csv_column(columns_data[column])

    return _Source(path, list(header), len(records), values, array, where)


def _infer_csv_column(values: list[str]) -> pa.Array:
    """A kept CSV column: int64 or float64 when every non-empty value is a finite number written
    without leading zeros (empty fields become null), else the strings as they are (so ``nan``,
    ``inf`` and numbers too large for a float stay text)."""
    strings = pa.array(values, pa.string())
    present = [v for v in values if v != ""]
    if not present or any(_leading_zero(v) for v in present):
        return strings
    nullable = pc.if_else(pc.equal(strings, ""), pa.scalar(None, pa.string()), strings)
    for target in (pa.int64(), pa.float64()):
        try:
            cast = pc.cast(nullable, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if target == pa.float64() and pc.all(pc.is_finite(cast)).as_py() is False:
            return strings
        return cast
    return strings


def _leading_zero(value: str) -> bool:
    digits = value.lstrip("+-")
    return len(digits) > 1 and digits[0] == "0" and digits[1].isdigit()


def _parquet_source(path: Path) -> _Source:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise _fail(
            path, None, f"not a readable Parquet file ({exc})", "check the file, or give a .jsonl or .csv file instead"
        ) from None
    names = table.column_names
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _fail(path, None, f"column {name!r} appears twice", "rename one of them")
        seen.add(name)
    for name, column in zip(names, table.columns):
        try:
            column.validate(full=True)  # e.g. a string column holding bytes that are not UTF-8
        except pa.ArrowException as exc:
            raise _fail(
                path, None, f"column {name!r} holds invalid data ({exc})", "write the file again with valid UTF-8 text"
            ) from None
    return _Source(
        path,
        list(names),
        table.num_rows,
        lambda column: table.column(column).to_pylist(),
        lambda column: table.column(column),
        lambda i: f"row {i + 1}",
    )


# --------------------------------------------------------------------------- assembly


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _assemble(
    src: _Source,
    *,
    text_field: str,
    id_field: str | None,
    labels: list[str] | None,
    gold_field: str | None,
    crowd_field: str | None,
) -> pa.Table:
    path, where = src.path, src.where
    if src.n_rows == 0:
        raise _fail(path, None, "contains no items", "add at least one item")

    # The named columns exist.
    for field, column in (
        ("text_field", text_field),
        ("id_field", id_field),
        ("gold_field", gold_field),
        ("crowd_field", crowd_field),
    ):
        if column is not None and column not in src.columns:
            raise _fail(
                path,
                None,
                f"column {column!r} ({field}) not found; the columns are {_names(src.columns)}",
                f"pass the right {_flag(field)}",
            )

    id_source = id_field if id_field is not None else ("id" if "id" in src.columns else None)
    if id_source == text_field:
        raise _fail(
            path, None, f"column {text_field!r} is both the id and the text column", "pass a different --id-field or --text-field"
        )
    for field, column in (("gold_field", gold_field), ("crowd_field", crowd_field)):
        if column is not None and column in (id_source, text_field):
            role = "text" if column == text_field else "id"
            raise _fail(path, None, f"{field} {column!r} is also the {role} column", f"pass the right {_flag(field)}")
    kept = [c for c in src.columns if c not in (id_source, text_field)]
    for canonical, source_field, source in (("text", "text_field", text_field), ("id", "id_field", id_source)):
        if canonical in kept:
            built = f"from column {source!r}" if source is not None else "from the row numbers"
            raise _fail(
                path,
                None,
                f"column {canonical!r} clashes with the pool's {canonical} column, which is built {built}",
                f"rename or remove column {canonical!r} in the file, or pass {_flag(source_field)} {canonical}",
            )

    # Row checks; the first problem in file order is reported.
    problems: list[tuple[int, CurateError]] = []

    texts = src.values(text_field)
    for i, value in enumerate(texts):
        fix = "give every item a non-empty text, or remove the item"
        if value.__class__ is str and value and not value.isspace():
            bad = text_problem(value)
            if bad is None:
                continue
            problem = f"the text ({text_field!r}) {bad}"
            fix = "remove that character from the text"
        elif value is _MISSING:
            problem = f"the item has no {text_field!r} field"
        elif value is None:
            problem = f"the text ({text_field!r}) is null"
        elif not isinstance(value, str):
            problem = f"the text ({text_field!r}) is {_kind(value)} {_show(value)}, not a string"
        else:
            problem = f"the text ({text_field!r}) is empty"
        problems.append((i, _fail(path, where(i), problem, fix)))
        break

    if id_source is None:
        ids = [str(i) for i in range(src.n_rows)]
    else:
        ids = []
        first_at: dict[str, int] = {}
        fix = "give every item a unique, non-empty id"
        if id_field is None:
            fix += " (or pass --id-field to take the ids from another column)"
        for i, value in enumerate(src.values(id_source)):
            if value.__class__ is str:
                key = value
            elif isinstance(value, int) and not isinstance(value, bool):
                key = str(value)
            else:
                if value is _MISSING:
                    problem = f"the item has no {id_source!r} field"
                elif value is None:
                    problem = f"the id ({id_source!r}) is null"
                else:
                    problem = f"the id ({id_source!r}) is {_kind(value)} {_show(value)}, not a string or an integer"
                problems.append((i, _fail(path, where(i), problem, fix)))
                break
            if not key or key.isspace():
                problems.append((i, _fail(path, where(i), f"the id ({id_source!r}) is empty", fix)))
                break
            bad = text_problem(key)
            if bad is not None:
                problems.append((i, _fail(path, where(i), f"the id ({id_source!r}) {bad}", "remove that character")))
                break
            first = first_at.setdefault(key, i)
            if first != i:
                problems.append(
                    (i, _fail(path, where(i), f"id {_show(key)} is also the id on {where(first)} (duplicate id)", fix))
                )
                break
            ids.append(key)

    if labels is not None and gold_field is not None:
        allowed = set(labels)
        fix = "fix the file or pass the right --labels"
        for i, value in enumerate(src.values(gold_field)):
            if value.__class__ is str and value in allowed:
                continue
            if value is _MISSING or value is None or value == "":
                problem = f"the gold label ({gold_field!r}) is missing; every item needs one of the labels {labels}"
                fix_here = "fill in the gold label or remove the item, or pass the right --gold-field"
            else:
                problem = f"gold label {_show(value)} in column {gold_field!r} is not one of the labels {labels}"
                fix_here = fix
            problems.append((i, _fail(path, where(i), problem, fix_here)))
            break

    if problems:
        raise min(problems, key=lambda p: p[0])[1]

    arrays: list[pa.Array | pa.ChunkedArray] = [pa.array(ids, pa.string()), pa.array(texts, pa.string())]
    arrays += [src.array(c) for c in kept]
    chunked = [a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a], a.type) for a in arrays]
    return pa.Table.from_arrays(chunked, names=["id", "text", *kept])


# --------------------------------------------------------------------------- public API


def read_pool(
    path: Path,
    *,
    text_field: str = "text",
    id_field: str | None = None,
    labels: list[str] | None = None,
    gold_field: str | None = None,
    crowd_field: str | None = None,
) -> pa.Table:
    """Read and validate a pool file.

    The format follows the suffix (case-insensitive): ``.jsonl``/``.ndjson``/``.json`` (JSON
    Lines: one object per line, blank lines skipped, rows may have different keys, a missing
    key is null), ``.csv`` (comma) and ``.tsv`` (tab; both with header row and double-quote
    quoting), ``.parquet``/``.pq``.

    Args:
        path: the pool file.
        text_field: the column holding each item's text.
        id_field: the column holding each item's id; ``None`` takes the ``id`` column when
            there is one, else numbers the items ``"0"``, ``"1"``, ... in file order.
        labels: the task's labels; with ``gold_field``, every gold value must be one of them.
        gold_field: the column holding the gold (expert) label, checked to exist (and against
            ``labels`` when given).
        crowd_field: the column holding crowd judgments, checked to exist.

    Returns:
        A ``pyarrow.Table`` whose first two columns are ``id`` (string; integer ids become their
        decimal string) and ``text`` (string), followed by every other input column unchanged
        (JSON values as Arrow infers them, e.g. ``list<double>``; Parquet columns as stored;
        CSV columns as strings, or int64/float64 when every non-empty value is a number).

    Raises:
        CurateError: with a one-line message naming the file, the line (``row N`` for Parquet)
            or column, and the fix, when: the suffix is not supported; the file is missing, a
            directory, empty or has no items; it is not UTF-8; a JSON line is not a JSON
            object; a CSV row is ragged or a quote is never closed; a named column is missing;
            the id or text source column clashes with another column named ``id``/``text``;
            a text is missing, null, not a string or blank; an id is missing, null, blank, of
            another type than string/integer, or duplicated; a gold value is null or not in
            ``labels``; a kept JSON column mixes value types. Hostile bytes too: a UTF-16/32
            byte-order mark; a NUL byte, or a NUL character or lone surrogate escape
            (``\\ud800``) in any JSON string or key or in a text or id; the JSON literals
            ``NaN``/``Infinity``; a number that overflows a float or a 64-bit integer column, or
            has more than 4300 digits; a JSON value nested more than 32 levels deep (see
            :func:`curate.validation.loads_strict`); a Parquet column holding invalid UTF-8.
            A CSV column with ``nan``, ``inf`` or numbers too large for a float stays text.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        raise _fail(path, None, "is a directory, not a file", "give the pool file itself")
    if not path.exists():
        raise _fail(path, None, "not found", "check the path to the pool file")
    if suffix not in SUPPORTED_SUFFIXES:
        raise _fail(
            path,
            None,
            f"unsupported file type {suffix or '(no suffix)'!r}",
            f"give a pool file ending in one of {', '.join(SUPPORTED_SUFFIXES)}",
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _fail(path, None, f"cannot be read ({exc.strerror or exc})", "check the path and its permissions") from None
    if size == 0:
        raise _fail(path, None, "is empty (no items)", "give a file with at least one item")

    if suffix in _JSONL_SUFFIXES:
        src = _jsonl_source(path)
    elif suffix in _CSV_SUFFIXES:
        src = _csv_source(path, "\t" if suffix == ".tsv" else ",")
    else:
        src = _parquet_source(path)
    return _assemble(
        src, text_field=text_field, id_field=id_field, labels=labels, gold_field=gold_field, crowd_field=crowd_field
    )


def write_pool(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` as Parquet, atomically.

    The table is written to a temporary file in the same folder, flushed to disk and renamed
    over ``path`` (``os.replace``), so a reader sees the old file or the new one, never a part.

    Raises:
        OSError: the folder does not exist or cannot be written (the temporary file is removed).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_pool(path: Path) -> pa.Table:
    """Read a pool written by :func:`write_pool` (a project's ``pool.parquet``).

    Returns:
        The ``pyarrow.Table`` as written: ``id`` and ``text`` first, then the kept columns.

    Raises:
        CurateError: the file is missing, is not readable Parquet, or does not start with the
            ``id`` and ``text`` string columns.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, None, "pool not found", "create the project first with `curate init PROJECT --pool FILE ...`")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise _fail(path, None, f"not a readable Parquet file ({exc})", "recreate the project with `curate init`") from None
    names = table.column_names
    if names[:2] != ["id", "text"] or not all(
        pa.types.is_string(table.schema.field(i).type) or pa.types.is_large_string(table.schema.field(i).type)
        for i in range(2)
    ):
        raise _fail(
            path,
            None,
            f"not a pool file: it must start with string columns 'id' and 'text', found {_names(names, 5)}",
            "recreate the project with `curate init`",
        )
    return table
