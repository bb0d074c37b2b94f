"""Reading the pool of unlabelled items (JSON Lines, CSV/TSV or Parquet) into one Arrow table.

A pool table always starts with two string columns, ``id`` and ``text``, followed by every
other column of the input file, kept as it was (for example the Webis crowd ``judgments`` as
``list<double>``, ``truth_mean`` and the gold ``label``).

Every problem with the input file raises :class:`curate.errors.CurateError` with a one-line
message that names the file, where in it the problem is (``line N`` for JSON Lines and CSV,
counting the CSV header as line 1; ``row N``, 1-based, for Parquet), what is wrong and how to
fix it.

The file is streamed, never loaded whole: a check pass over its bytes and structure, then record
batches of :data:`BATCH_ROWS` rows whose Python values are checked and turned into Arrow one batch
at a time (ids are kept as 64-bit hashes for the duplicate check). Memory is the Arrow table plus one
batch: 10,000,000 short texts from Parquet peak at about 1.7 GiB (``benchmarks/scale.py``). The table
and the errors are those of reading the whole file at once, for any batch size.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import uuid
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.validation import JSONProblem, loads_strict, text_problem

__all__ = ["BATCH_ROWS", "SUPPORTED_SUFFIXES", "load_pool", "read_pool", "write_pool"]

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
#
# A source is read in passes, never whole: a check pass (the file's bytes, its structure and its columns, raising
# the file-level problems in the order the whole-file reader met them) and then record batches of BATCH_ROWS rows,
# whose Python values live one batch at a time. What the assembled table holds is Arrow (compact); the peak memory
# of reading is the table plus one batch, whatever the file's size.

BATCH_ROWS = 65_536  # rows per record batch while reading a pool
_BLOCK_BYTES = 16 * 2**20  # bytes read at a time by the byte-level checks


@dataclass
class _Batch:
    """Rows ``start .. start + n - 1`` of a source."""

    start: int
    n: int
    values: Callable[[str], list[Any]]  # Python values of a column; may contain _MISSING
    kept: Callable[[str], "pa.Array | None"]  # Arrow values of a kept column, None when only the whole file can say


@dataclass
class _Source:
    """One input file: its columns in input order, its row count, and its rows in batches."""

    path: Path
    columns: list[str]
    n_rows: int
    batches: Callable[[], Iterator[_Batch]]
    finish: Callable[[str, list["pa.Array | None"]], "pa.Array | pa.ChunkedArray"]  # a kept column from its batches
    where: Callable[[int], str]  # "line 12" / "row 3" for the 0-based item index


def _open(path: Path):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise _fail(path, None, f"cannot be read ({exc.strerror or exc})", "check the path and its permissions") from None


def _check_bytes(path: Path) -> None:
    """The byte-level checks of the whole file, streamed: a UTF-16/32 byte-order mark, a NUL byte (naming its line
    and column), invalid UTF-8 (its line, column and byte), in that order of precedence; a leading UTF-8 byte-order
    mark is allowed (and skipped by the readers). Columns count bytes after that mark."""
    with _open(path) as fh:
        head = fh.read(4)
        for bom, encoding in _OTHER_BOMS:
            if head.startswith(bom):
                raise _fail(path, "line 1", f"the file is {encoding} (it starts with a {encoding} byte-order mark)",
                            "save the file as UTF-8")
        fh.seek(len(_UTF8_BOM) if head.startswith(_UTF8_BOM) else 0)
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        offset = 0  # bytes before this block
        line_start, lines_before = 0, 0  # offset after the last newline seen, and newlines seen (before the block)
        bad_utf8: tuple[int, int, int, int] | None = None  # line, column, byte, offset of the first invalid byte
        while True:
            block = fh.read(_BLOCK_BYTES)
            final = not block
            nul = block.find(b"\x00")
            if nul >= 0:
                line = lines_before + block.count(b"\n", 0, nul) + 1
                last = block.rfind(b"\n", 0, nul)
                column = nul - (last + 1) + 1 if last >= 0 else offset + nul - line_start + 1
                raise _fail(
                    path,
                    f"line {line}",
                    f"holds a NUL byte (0x00 at column {column}); a pool is UTF-8 text (is this a binary or UTF-16 "
                    "file?)",
                    "remove the NUL bytes, or save the file as UTF-8 text",
                )
            if bad_utf8 is None:
                pending = len(decoder.getstate()[0])
                try:
                    decoder.decode(block, final=final)
                except UnicodeDecodeError as exc:
                    at = offset - pending + exc.start  # the absolute offset of the bad byte
                    joined = exc.object
                    byte = joined[exc.start]
                    local = at - offset  # may be negative: the bad sequence began in the previous block
                    if local >= 0:
                        line = lines_before + block.count(b"\n", 0, local) + 1
                        last = block.rfind(b"\n", 0, local)
                        column = local - (last + 1) + 1 if last >= 0 else at - line_start + 1
                    else:
                        line, column = lines_before + 1, at - line_start + 1
                    bad_utf8 = (line, column, byte, at)
            if final:
                break
            newlines = block.count(b"\n")
            if newlines:
                lines_before += newlines
                line_start = offset + block.rfind(b"\n") + 1
            offset += len(block)
    if bad_utf8 is not None:
        line, column, byte, _ = bad_utf8
        raise _fail(path, f"line {line}", f"not valid UTF-8 (byte 0x{byte:02x} at column {column})",
                    "save the file as UTF-8")


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a file that passed :func:`_check_bytes`, split on ``\\n`` (as ``str.split``),
    a leading UTF-8 byte-order mark dropped."""
    with _open(path) as fh:
        first = True
        number = 0
        for raw in fh:
            number += 1
            if first:
                first = False
                if raw.startswith(_UTF8_BOM):
                    raw = raw[len(_UTF8_BOM) :]
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            yield number, raw.decode("utf-8")


def _json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of every non-blank line, raising the first line that is not a JSON object."""
    loads = loads_strict
    seen_row = False
    for number, line in _text_lines(path):
        if not line or line.isspace():
            continue
        try:
            obj = loads(line)
        except JSONProblem as exc:
            raise _fail(path, f"line {number}", exc.msg, exc.fix) from None
        except json.JSONDecodeError as exc:
            hint = "each line must hold one JSON object (JSON Lines)"
            if line.lstrip().startswith("[") and not seen_row:
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
        seen_row = True
        yield number, obj


def _line_where(lines: np.ndarray) -> Callable[[int], str]:
    return lambda i: f"line {int(lines[i])}"


def _jsonl_source(path: Path) -> _Source:
    _check_bytes(path)
    columns: dict[str, None] = {}  # ordered set: keys in order of first appearance
    last_keys: tuple[str, ...] | None = None
    line_numbers = array("q")
    for number, obj in _json_rows(path):
        keys = tuple(obj)
        if keys != last_keys:
            for key in keys:
                columns.setdefault(key, None)
            last_keys = keys
        line_numbers.append(number)
    lines = np.frombuffer(line_numbers, dtype=np.int64) if len(line_numbers) else np.empty(0, np.int64)
    where = _line_where(lines)

    def batches() -> Iterator[_Batch]:
        rows: list[dict[str, Any]] = []
        start = 0
        for _, obj in _json_rows(path):
            rows.append(obj)
            if len(rows) == BATCH_ROWS:
                yield _json_batch(start, rows)
                start += len(rows)
                rows = []
        if rows:
            yield _json_batch(start, rows)

    def whole(column: str) -> pa.Array:
        """The column's Arrow values inferred over the whole file (one pass for this column only)."""
        data = [obj.get(column) for _, obj in _json_rows(path)]
        try:
            return pa.array(data)
        except OverflowError:
            raise _too_large(path, column, data, where) from None
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise _mixed_types(path, column, data, where, exc) from None

    def finish(column: str, chunks: list[pa.Array | None]) -> pa.Array | pa.ChunkedArray:
        # Arrow infers a column's type from its values; batches that each inferred the same type (or null) give
        # what inference over the whole column gives. Otherwise (or on an error) the whole column decides.
        if any(c is None for c in chunks):
            return whole(column)
        types = {c.type for c in chunks if c.type != pa.null()}
        if len(types) > 1:
            return whole(column)
        kind = types.pop() if types else pa.null()
        return pa.chunked_array([c if c.type == kind else pa.nulls(len(c), kind) for c in chunks], kind)

    return _Source(path, list(columns), len(lines), batches, finish, where)


def _json_batch(start: int, rows: list[dict[str, Any]]) -> _Batch:
    def values(column: str) -> list[Any]:
        return [row.get(column, _MISSING) for row in rows]

    def kept(column: str) -> pa.Array | None:
        try:
            return pa.array([row.get(column) for row in rows])
        except (OverflowError, pa.ArrowException):
            return None

    return _Batch(start, len(rows), values, kept)


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


def _csv_records(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(first line, fields)`` of every non-blank record (the header first), raising the first malformed one."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    old_limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # long documents are fine; restored below
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter, strict=True)
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
                    raise _fail(path, f"line {start}", problem, f"fix the quoting: {_QUOTING_FIX}") from None
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # blank line
                yield start, record
    except OSError as exc:
        raise _fail(path, None, f"cannot be read ({exc.strerror or exc})", "check the path and its permissions") from None
    finally:
        csv.field_size_limit(old_limit)


_QUOTING_FIX = (
    "a field that holds the delimiter, a double quote or a line break must be enclosed in double quotes, "
    "with inner double quotes doubled"
)


def _csv_source(path: Path, delimiter: str) -> _Source:
    _check_bytes(path)
    kind = "TSV" if delimiter == "\t" else "CSV"
    header: list[str] | None = None
    line_numbers = array("q")
    for start, record in _csv_records(path, delimiter):
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
                f"give every row one field per header column; {_QUOTING_FIX}",
            )
        line_numbers.append(start)
    if header is None:
        header = []
    if header and not line_numbers:
        raise _fail(path, None, "has a header but no rows (no items)", "add at least one item below the header")
    lines = np.frombuffer(line_numbers, dtype=np.int64) if len(line_numbers) else np.empty(0, np.int64)
    names = list(header)

    def batches() -> Iterator[_Batch]:
        records: list[list[str]] = []
        start = 0
        body = _csv_records(path, delimiter)
        next(body, None)  # the header
        for _, record in body:
            records.append(record)
            if len(records) == BATCH_ROWS:
                yield _csv_batch(start, records, names)
                start += len(records)
                records = []
        if records:
            yield _csv_batch(start, records, names)

    def finish(column: str, chunks: list[pa.Array | None]) -> pa.Array | pa.ChunkedArray:
        return _infer_csv_column(pa.chunked_array([c for c in chunks if c is not None], pa.string()))

    return _Source(path, names, len(lines), batches, finish, _line_where(lines))


def _csv_batch(start: int, records: list[list[str]], names: list[str]) -> _Batch:
    index = {name: j for j, name in enumerate(names)}

    def values(column: str) -> list[Any]:
        j = index[column]
        return [r[j] for r in records]

    def kept(column: str) -> pa.Array:
        return pa.array(values(column), pa.string())

    return _Batch(start, len(records), values, kept)


def _infer_csv_column(strings: pa.ChunkedArray) -> pa.ChunkedArray:
    """A kept CSV column (its strings): int64 or float64 when every non-empty value is a finite number written
    without leading zeros (empty fields become null), else the strings as they are (so ``nan``, ``inf`` and numbers
    too large for a float stay text)."""
    empty = pc.equal(strings, "")
    if len(strings) == 0 or pc.all(empty).as_py():
        return strings
    # Leading zeros: an Arrow filter finds the few values that may have one, Python decides (str.isdigit).
    maybe = pc.filter(strings, pc.match_substring_regex(strings, r"(?s)^[+-]*0."))
    if any(_leading_zero(v) for v in maybe.to_pylist()):
        return strings
    nullable = pc.if_else(empty, pa.scalar(None, pa.string()), strings)
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


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise _fail(
            path, None, f"not a readable Parquet file ({exc})", "check the file, or give a .jsonl or .csv file instead"
        ) from None


def _parquet_batches(path: Path) -> Iterator[pa.RecordBatch]:
    pf = _parquet_file(path)
    try:
        yield from pf.iter_batches(batch_size=BATCH_ROWS, use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        raise _fail(
            path, None, f"not a readable Parquet file ({exc})", "check the file, or give a .jsonl or .csv file instead"
        ) from None


def _parquet_source(path: Path) -> _Source:
    pf = _parquet_file(path)
    schema = pf.schema_arrow
    names = schema.names
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise _fail(path, None, f"column {name!r} appears twice", "rename one of them")
        seen.add(name)
    for batch in _parquet_batches(path):  # the check pass: every value readable and valid
        for name, column in zip(names, batch.columns):
            try:
                column.validate(full=True)  # e.g. a string column holding bytes that are not UTF-8
            except pa.ArrowException as exc:
                raise _fail(
                    path, None, f"column {name!r} holds invalid data ({exc})",
                    "write the file again with valid UTF-8 text"
                ) from None

    def batches() -> Iterator[_Batch]:
        start = 0
        for batch in _parquet_batches(path):
            yield _Batch(start, batch.num_rows, lambda c, b=batch: b.column(c).to_pylist(),
                         lambda c, b=batch: b.column(c))
            start += batch.num_rows

    def finish(column: str, chunks: list[pa.Array | None]) -> pa.ChunkedArray:
        return pa.chunked_array([c for c in chunks if c is not None], schema.field(column).type)

    return _Source(path, list(names), pf.metadata.num_rows, batches, finish, lambda i: f"row {i + 1}")


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

    # Row checks, a batch at a time; the first problem in file order is reported. Each check stops at its own first
    # problem; reading stops after the batch where one is found (a later row cannot come first), except that a
    # duplicate id needs every id before it: ids are kept as 64-bit hashes (8 bytes an item) and compared at the end.
    text_error: tuple[int, CurateError] | None = None
    id_error: tuple[int, CurateError] | None = None
    gold_error: tuple[int, CurateError] | None = None
    id_fix = "give every item a unique, non-empty id"
    if id_field is None:
        id_fix += " (or pass --id-field to take the ids from another column)"
    allowed = set(labels) if labels is not None and gold_field is not None else None
    id_chunks: list[pa.Array] = []
    hash_chunks: list[np.ndarray] = []
    text_chunks: list[pa.Array] = []
    kept_chunks: dict[str, list[pa.Array | None]] = {c: [] for c in kept}

    for batch in src.batches():
        start = batch.start
        texts = batch.values(text_field)
        if text_error is None:
            text_error = _first_text_problem(texts, start, path, where, text_field)

        if id_source is None:
            keys = [str(i) for i in range(start, start + batch.n)]
        else:
            keys = []
            if id_error is None:
                keys, id_error = _id_keys(batch.values(id_source), start, path, where, id_source, id_fix)
            if keys:
                hash_chunks.append(np.fromiter(map(hash, keys), dtype=np.int64, count=len(keys)))

        if allowed is not None and gold_error is None:
            fix = "fix the file or pass the right --labels"
            for j, value in enumerate(batch.values(gold_field)):
                if value.__class__ is str and value in allowed:
                    continue
                if value is _MISSING or value is None or value == "":
                    problem = f"the gold label ({gold_field!r}) is missing; every item needs one of the labels {labels}"
                    fix_here = "fill in the gold label or remove the item, or pass the right --gold-field"
                else:
                    problem = f"gold label {_show(value)} in column {gold_field!r} is not one of the labels {labels}"
                    fix_here = fix
                gold_error = (start + j, _fail(path, where(start + j), problem, fix_here))
                break

        id_chunks.append(pa.array(keys, pa.string()))
        if text_error is not None or id_error is not None or gold_error is not None:
            break
        text_chunks.append(pa.array(texts, pa.string()))
        for c in kept:
            kept_chunks[c].append(batch.kept(c))
        del texts, keys

    if id_source is not None and hash_chunks:
        duplicate = _first_duplicate(np.concatenate(hash_chunks), pa.chunked_array(id_chunks, pa.string()))
        if duplicate is not None:
            i, first = duplicate
            key = _chunks_value(id_chunks, i)
            id_error = (i, _fail(path, where(i), f"id {_show(key)} is also the id on {where(first)} (duplicate id)",
                                 id_fix))
    problems = [p for p in (text_error, id_error, gold_error) if p is not None]
    if problems:
        raise min(problems, key=lambda p: p[0])[1]

    arrays: list[pa.Array | pa.ChunkedArray] = [pa.chunked_array(id_chunks, pa.string()),
                                                 pa.chunked_array(text_chunks, pa.string())]
    arrays += [src.finish(c, kept_chunks.pop(c)) for c in kept]
    chunked = [a if isinstance(a, pa.ChunkedArray) else pa.chunked_array([a], a.type) for a in arrays]
    return pa.Table.from_arrays(chunked, names=["id", "text", *kept])


def _first_text_problem(texts: list[Any], start: int, path: Path, where: Callable[[int], str],
                        text_field: str) -> tuple[int, CurateError] | None:
    """The first text of a batch that cannot be an item's text, as ``(row, error)``, or None."""
    for j, value in enumerate(texts):
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
        return start + j, _fail(path, where(start + j), problem, fix)
    return None


def _id_keys(values: list[Any], start: int, path: Path, where: Callable[[int], str], id_source: str,
             fix: str) -> tuple[list[str], tuple[int, CurateError] | None]:
    """The ids of a batch as strings, up to its first id that cannot be one (then that ``(row, error)``)."""
    keys: list[str] = []
    for j, value in enumerate(values):
        i = start + j
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
            return keys, (i, _fail(path, where(i), problem, fix))
        if not key or key.isspace():
            return keys, (i, _fail(path, where(i), f"the id ({id_source!r}) is empty", fix))
        bad = text_problem(key)
        if bad is not None:
            return keys, (i, _fail(path, where(i), f"the id ({id_source!r}) {bad}", "remove that character"))
        keys.append(key)
    return keys, None


def _chunks_value(chunks: list[pa.Array], i: int) -> str:
    """Item ``i`` of string chunks laid end to end."""
    for chunk in chunks:
        if i < len(chunk):
            return chunk[i].as_py()
        i -= len(chunk)
    raise IndexError(i)


def _first_duplicate(hashes: np.ndarray, keys: pa.ChunkedArray) -> tuple[int, int] | None:
    """The first row (file order) whose id an earlier row already has, and that earlier row's index, or None.

    Args:
        hashes: ``(n,)`` int64 ``hash()`` of each id (equal ids, equal hashes).
        keys: ``(n,)`` the ids, to tell a real duplicate from a hash collision.
    """
    order = np.argsort(hashes, kind="stable")  # by hash, then by row
    ordered = hashes[order]
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return None
    in_run = np.zeros(order.size, dtype=bool)
    in_run[1:] |= same
    in_run[:-1] |= same
    rows = np.sort(order[in_run])  # every row whose hash another row shares, in file order
    first_at: dict[str, int] = {}
    for i, key in zip(rows.tolist(), keys.take(pa.array(rows)).to_pylist()):
        first = first_at.setdefault(key, i)
        if first != i:
            return i, first
    return None


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
        CSV columns as strings, or int64/float64 when every non-empty value is a number). The table is
        assembled from record batches (its columns are chunked arrays); it equals a whole-file read.

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


def load_pool(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a pool written by :func:`write_pool` (a project's ``pool.parquet``).

    Args:
        path: the pool file.
        columns: read only these columns (e.g. ``["id"]``: 10,000,000 ids without their texts); None: all.

    Returns:
        The ``pyarrow.Table`` as written: ``id`` and ``text`` first, then the kept columns (only ``columns``, in
        that order, when given).

    Raises:
        CurateError: the file is missing, is not readable Parquet, does not start with the ``id`` and ``text``
            string columns, or lacks one of ``columns``.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, None, "pool not found", "create the project first with `curate init PROJECT --pool FILE ...`")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise _fail(path, None, f"not a readable Parquet file ({exc})", "recreate the project with `curate init`") from None
    names = schema.names
    if names[:2] != ["id", "text"] or not all(
        pa.types.is_string(schema.field(i).type) or pa.types.is_large_string(schema.field(i).type)
        for i in range(2)
    ):
        raise _fail(
            path,
            None,
            f"not a pool file: it must start with string columns 'id' and 'text', found {_names(names, 5)}",
            "recreate the project with `curate init`",
        )
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise _fail(path, None, f"no column {missing[0]!r}; the columns are {_names(names)}",
                        "recreate the project with `curate init`")
    try:
        return pq.read_table(path, columns=None if columns is None else list(columns))
    except (pa.ArrowException, OSError) as exc:
        raise _fail(path, None, f"not a readable Parquet file ({exc})", "recreate the project with `curate init`") from None
