"""Pool ingestion: JSON Lines, CSV/TSV and Parquet into the canonical ``id``/``text`` table."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.pool import load_pool, read_pool, write_pool
from tests.checks import check_webis_pool
from tests.unit.synthetic import LABELS as WEBIS_LABELS
from tests.unit.synthetic import webis_like_rows


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def error_of(path: Path, **kwargs) -> str:
    """The CurateError message of ``read_pool(path, **kwargs)``, checked to be one line naming the file."""
    with pytest.raises(CurateError) as info:
        read_pool(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert path.name in message
    return message


# --------------------------------------------------------------------------- JSON Lines


def test_jsonl_reads_ids_text_and_keeps_other_columns(tmp_path):
    path = write_jsonl(
        tmp_path / "pool.jsonl",
        [
            {"text": "first", "id": "a", "score": 1.5, "tags": ["x"]},
            {"id": "b", "text": "second", "score": 2, "tags": []},
        ],
    )
    table = read_pool(path)
    assert table.column_names == ["id", "text", "score", "tags"]
    assert table.schema.field("id").type == pa.string()
    assert table.schema.field("text").type == pa.string()
    assert table.column("id").to_pylist() == ["a", "b"]
    assert table.column("text").to_pylist() == ["first", "second"]
    assert table.column("score").to_pylist() == [1.5, 2.0]
    assert table.column("tags").to_pylist() == [["x"], []]


def test_jsonl_ids_generated_when_absent(tmp_path):
    path = tmp_path / "pool.ndjson"
    path.write_text('{"text": "a"}\n\n   \n{"text": "b"}\n{"text": "c"}', encoding="utf-8")  # blanks skipped
    table = read_pool(path)
    assert table.column_names == ["id", "text"]
    assert table.column("id").to_pylist() == ["0", "1", "2"]


def test_jsonl_integer_ids_become_strings(tmp_path):
    path = write_jsonl(tmp_path / "pool.json", [{"id": 7, "text": "a"}, {"id": 12345678901234567890, "text": "b"}])
    table = read_pool(path)
    assert table.column("id").to_pylist() == ["7", "12345678901234567890"]


def test_jsonl_id_field_and_text_field(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"doc": 1, "body": "a", "x": 1}, {"doc": 2, "body": "b", "x": 2}])
    table = read_pool(path, text_field="body", id_field="doc")
    assert table.column_names == ["id", "text", "x"]
    assert table.column("id").to_pylist() == ["1", "2"]
    assert table.column("text").to_pylist() == ["a", "b"]


def test_jsonl_rows_with_different_keys_become_null(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"text": "a", "x": 1}, {"text": "b", "y": "z"}])
    table = read_pool(path)
    assert table.column_names == ["id", "text", "x", "y"]
    assert table.column("x").to_pylist() == [1, None]
    assert table.column("y").to_pylist() == [None, "z"]


def test_jsonl_crlf_and_bom(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "a"}\r\n{"text": "b"}\r\n')
    assert read_pool(path).column("text").to_pylist() == ["a", "b"]


def test_suffix_is_case_insensitive(tmp_path):
    path = write_jsonl(tmp_path / "POOL.JSONL", [{"text": "a"}])
    assert read_pool(path).num_rows == 1


# --------------------------------------------------------------------------- Webis-shaped data


def test_webis_shaped_slice(tmp_path):
    """Rows shaped like Webis Clickbait 2017 (the real file: tests/integration/test_real_data.py)."""
    lines = [json.dumps(r) + "\n" for r in webis_like_rows(200)]
    path = tmp_path / "webis.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    table = read_pool(path, labels=WEBIS_LABELS, gold_field="label", crowd_field="judgments")
    assert table.num_rows == 200
    check_webis_pool(table, lines, WEBIS_LABELS)

    # The slice with a label the task does not have.
    with pytest.raises(CurateError, match=r"line 1: .*'no-clickbait'.*--labels"):
        read_pool(path, labels=["clickbait", "other"], gold_field="label")


# --------------------------------------------------------------------------- CSV, TSV, Parquet


def test_csv_reads_with_quotes_and_newlines(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text('id,text,label,score\n1,"Hello, ""world""",a,0.5\n2,"two\nlines",b,\n\n', encoding="utf-8")
    table = read_pool(path, labels=["a", "b"], gold_field="label")
    assert table.column_names == ["id", "text", "label", "score"]
    assert table.column("id").to_pylist() == ["1", "2"]
    assert table.column("text").to_pylist() == ['Hello, "world"', "two\nlines"]
    assert table.column("label").to_pylist() == ["a", "b"]
    assert table.column("score").to_pylist() == [0.5, None]


def test_csv_keeps_codes_with_leading_zeros_as_strings(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("text,zip,n\na,01234,1\nb,98765,2\n", encoding="utf-8")
    table = read_pool(path)
    assert table.column("zip").to_pylist() == ["01234", "98765"]
    assert table.column("n").to_pylist() == [1, 2]
    assert table.column("id").to_pylist() == ["0", "1"]


def test_tsv(tmp_path):
    path = tmp_path / "pool.tsv"
    path.write_text("id\ttext\nx\thas, a comma\ny\tplain\n", encoding="utf-8")
    table = read_pool(path)
    assert table.column("text").to_pylist() == ["has, a comma", "plain"]


def test_csv_round_trip_through_parquet(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("id,text,label\nu1,alpha,yes\nu2,beta,no\n", encoding="utf-8")
    table = read_pool(path, labels=["yes", "no"], gold_field="label")
    out = tmp_path / "project" / "pool.parquet"
    out.parent.mkdir()
    write_pool(table, out)
    assert load_pool(out).equals(table)
    assert [p.name for p in out.parent.iterdir()] == ["pool.parquet"]  # no temporary file left


def test_parquet_input_round_trip(tmp_path):
    source = pa.table(
        {
            "doc_id": pa.array([10, 20, 30], pa.int64()),
            "body": ["a", "b", "c"],
            "judgments": pa.array([[0.0, 1.0], [1.0], []], pa.list_(pa.float64())),
            "label": ["x", "y", "x"],
        }
    )
    path = tmp_path / "in.parquet"
    pq.write_table(source, path)
    table = read_pool(path, text_field="body", id_field="doc_id", labels=["x", "y"], gold_field="label")
    assert table.column_names == ["id", "text", "judgments", "label"]
    assert table.column("id").to_pylist() == ["10", "20", "30"]
    assert table.schema.field("judgments").type == pa.list_(pa.float64())
    out = tmp_path / "pool.parquet"
    write_pool(table, out)
    write_pool(table, out)  # overwriting is fine
    assert load_pool(out).equals(table)
    assert read_pool(out).equals(table)  # a written pool reads back as a pool


def test_parquet_ids_generated_when_absent(tmp_path):
    path = tmp_path / "in.pq"
    pq.write_table(pa.table({"text": ["a", "b"]}), path)
    assert read_pool(path).column("id").to_pylist() == ["0", "1"]


def test_load_pool_errors(tmp_path):
    with pytest.raises(CurateError, match="pool not found"):
        load_pool(tmp_path / "pool.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet", encoding="utf-8")
    with pytest.raises(CurateError, match="not a readable Parquet file"):
        load_pool(bad)
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"text": ["a"], "id": ["1"]}), other)
    with pytest.raises(CurateError, match="not a pool file"):
        load_pool(other)


# --------------------------------------------------------------------------- file-level errors


def test_error_file_not_found(tmp_path):
    message = error_of(tmp_path / "missing.jsonl")
    assert "not found" in message


def test_error_directory(tmp_path):
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    assert "is a directory" in error_of(folder)


def test_error_empty_file(tmp_path):
    for name in ("empty.jsonl", "empty.csv", "empty.parquet"):
        path = tmp_path / name
        path.write_bytes(b"")
        assert "empty" in error_of(path)


def test_error_no_items(tmp_path):
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n\n", encoding="utf-8")
    assert "no items" in error_of(blank)
    header_only = tmp_path / "header.csv"
    header_only.write_text("id,text\n", encoding="utf-8")
    assert "no items" in error_of(header_only)
    no_rows = tmp_path / "none.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), no_rows)
    assert "no items" in error_of(no_rows)


def test_error_unknown_suffix(tmp_path):
    path = tmp_path / "pool.txt"
    path.write_text("hello\n", encoding="utf-8")
    message = error_of(path)
    assert "'.txt'" in message
    for suffix in (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".pq"):
        assert suffix in message


def test_error_not_utf8(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "ok"}\n{"text": "caf\xe9"}\n')
    message = error_of(path)
    assert "line 3" in message and "UTF-8" in message and "0xe9" in message
    csv_path = tmp_path / "latin1.csv"
    csv_path.write_bytes(b"id,text\n1,ok\n2,caf\xe9\n")
    message = error_of(csv_path)
    assert "line 3" in message and "UTF-8" in message


def test_error_not_parquet(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text("id,text\n1,a\n", encoding="utf-8")
    assert "not a readable Parquet file" in error_of(path)


# --------------------------------------------------------------------------- JSON Lines errors


def test_error_invalid_json_line(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b",}\n', encoding="utf-8")
    message = error_of(path)
    assert "line 3" in message and "not valid JSON" in message and "column" in message


def test_error_json_line_not_object(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_text('{"text": "a"}\n["text", "b"]\n', encoding="utf-8")
    message = error_of(path)
    assert "line 2" in message and "JSON object" in message and "a list" in message


def test_error_json_array_file_gets_a_hint(tmp_path):
    path = tmp_path / "pool.json"
    path.write_text('[\n  {"text": "a"}\n]\n', encoding="utf-8")
    message = error_of(path)
    assert "line 1" in message and "one object per line" in message


def test_error_kept_column_with_mixed_types(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"text": "a", "x": 1}, {"text": "b"}, {"text": "c", "x": "one"}])
    message = error_of(path)
    assert "line 3" in message and "'x'" in message and "'one'" in message and "line 1" in message


# --------------------------------------------------------------------------- CSV errors


def test_error_csv_ragged_row(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("id,text,label\n1,a,x\n2,b\n", encoding="utf-8")
    message = error_of(path)
    assert "line 3" in message and "2 fields" in message and "header has 3" in message


def test_error_csv_ragged_row_counts_quoted_newlines(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text('id,text\n1,"multi\nline"\n2,b,extra\n', encoding="utf-8")
    assert "line 4" in error_of(path)


def test_error_csv_unterminated_quote(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text('id,text\n1,a\n2,"never closed\n3,c\n', encoding="utf-8")
    message = error_of(path)
    assert "line 3" in message and "never closed" in message


def test_error_csv_duplicate_header(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("id,text,text\n1,a,b\n", encoding="utf-8")
    message = error_of(path)
    assert "line 1" in message and "'text'" in message and "twice" in message


# --------------------------------------------------------------------------- column errors


def test_error_missing_columns(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"id": "1", "body": "a", "label": "x"}])
    for kwargs, column, flag in (
        ({}, "'text'", "--text-field"),
        ({"text_field": "body", "id_field": "uid"}, "'uid'", "--id-field"),
        ({"text_field": "body", "gold_field": "gold"}, "'gold'", "--gold-field"),
        ({"text_field": "body", "crowd_field": "votes"}, "'votes'", "--crowd-field"),
    ):
        message = error_of(path, **kwargs)
        assert column in message and flag in message and "not found" in message
        assert "'id', 'body', 'label'" in message  # the available columns


def test_error_missing_column_csv_and_parquet(tmp_path):
    csv_path = tmp_path / "pool.csv"
    csv_path.write_text("id,body\n1,a\n", encoding="utf-8")
    message = error_of(csv_path)
    assert "'text'" in message and "'id', 'body'" in message
    pq_path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"body": ["a"]}), pq_path)
    message = error_of(pq_path)
    assert "'text'" in message and "'body'" in message


def test_error_text_column_clash(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"body": "a", "text": "other"}])
    message = error_of(path, text_field="body")
    assert "'text'" in message and "clashes" in message and "'body'" in message


def test_error_id_column_clash(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("uid,id,text\n1,a,hello\n", encoding="utf-8")
    message = error_of(path, id_field="uid")
    assert "'id'" in message and "clashes" in message and "'uid'" in message


def test_error_id_and_text_same_column(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"text": "a"}])
    assert "both the id and the text column" in error_of(path, id_field="text")


# --------------------------------------------------------------------------- row errors


@pytest.mark.parametrize(
    "bad, expected",
    [
        ({"id": "3"}, "no 'text' field"),
        ({"id": "3", "text": None}, "null"),
        ({"id": "3", "text": 42}, "a number 42"),
        ({"id": "3", "text": ""}, "empty"),
        ({"id": "3", "text": " \t "}, "empty"),
    ],
)
def test_error_bad_text_jsonl(tmp_path, bad, expected):
    path = tmp_path / "pool.jsonl"
    path.write_text(
        json.dumps({"id": "1", "text": "a"}) + "\n\n" + json.dumps({"id": "2", "text": "b"}) + "\n" + json.dumps(bad) + "\n",
        encoding="utf-8",
    )
    message = error_of(path)
    assert "line 4" in message and expected in message and "'text'" in message


def test_error_bad_text_csv_and_parquet(tmp_path):
    csv_path = tmp_path / "pool.csv"
    csv_path.write_text("id,text\n1,a\n2,  \n", encoding="utf-8")
    message = error_of(csv_path)
    assert "line 3" in message and "empty" in message
    pq_path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"text": ["a", "b", None]}), pq_path)
    message = error_of(pq_path)
    assert "row 3" in message and "null" in message


@pytest.mark.parametrize(
    "bad, expected",
    [
        ({"text": "c"}, "no 'id' field"),
        ({"id": None, "text": "c"}, "null"),
        ({"id": "", "text": "c"}, "empty"),
        ({"id": "  ", "text": "c"}, "empty"),
        ({"id": 1.5, "text": "c"}, "a number 1.5"),
        ({"id": ["x"], "text": "c"}, "a list"),
    ],
)
def test_error_bad_id(tmp_path, bad, expected):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"id": "a", "text": "a"}, {"id": "b", "text": "b"}, bad])
    message = error_of(path)
    assert "line 3" in message and expected in message and "'id'" in message


def test_error_bad_id_from_id_field(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"uid": "a", "text": "a"}, {"uid": "", "text": "b"}])
    message = error_of(path, id_field="uid")
    assert "line 2" in message and "'uid'" in message and "empty" in message


def test_error_duplicate_id(tmp_path):
    path = write_jsonl(
        tmp_path / "pool.jsonl", [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}, {"id": "a", "text": "z"}]
    )
    message = error_of(path)
    assert "line 3" in message and "line 1" in message and "'a'" in message and "duplicate" in message


def test_error_duplicate_id_int_and_string(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"id": 5, "text": "x"}, {"id": "5", "text": "y"}])
    message = error_of(path)
    assert "line 2" in message and "line 1" in message and "'5'" in message


def test_error_duplicate_id_csv(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("id,text\nq,a\nr,b\nq,c\n", encoding="utf-8")
    message = error_of(path)
    assert "line 4" in message and "line 2" in message and "'q'" in message


def test_error_reports_the_first_problem_in_the_file(tmp_path):
    path = write_jsonl(
        tmp_path / "pool.jsonl", [{"id": "a", "text": "x"}, {"id": "", "text": "y"}, {"id": "c", "text": ""}]
    )
    assert "line 2" in error_of(path)


def test_error_gold_not_in_labels(tmp_path):
    path = write_jsonl(
        tmp_path / "pool.jsonl",
        [{"text": "a", "label": "clickbait"}, {"text": "b", "label": "spam"}],
    )
    message = error_of(path, labels=WEBIS_LABELS, gold_field="label")
    assert "line 2" in message and "'spam'" in message and "'label'" in message
    assert "['no-clickbait', 'clickbait']" in message and "--labels" in message
    read_pool(path, gold_field="label")  # without labels the gold column is only checked to exist


@pytest.mark.parametrize("bad", [{"text": "b", "label": None}, {"text": "b"}, {"text": "b", "label": ""}])
def test_error_gold_missing(tmp_path, bad):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"text": "a", "label": "clickbait"}, bad])
    message = error_of(path, labels=WEBIS_LABELS, gold_field="label")
    assert "line 2" in message and "'label'" in message and "missing" in message


def test_error_gold_not_a_string(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", [{"text": "a", "label": 1}])
    message = error_of(path, labels=["0", "1"], gold_field="label")
    assert "line 1" in message and "1" in message and "['0', '1']" in message


def test_error_gold_csv_and_parquet(tmp_path):
    csv_path = tmp_path / "pool.csv"
    csv_path.write_text("text,label\na,yes\nb,maybe\n", encoding="utf-8")
    message = error_of(csv_path, labels=["yes", "no"], gold_field="label")
    assert "line 3" in message and "'maybe'" in message
    pq_path = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["yes", None]}), pq_path)
    message = error_of(pq_path, labels=["yes", "no"], gold_field="label")
    assert "row 2" in message and "missing" in message
