"""The paths that let 10,000,000 items fit one machine give the same results as the whole-array paths:
:class:`curate.select.base.PoolRows` (a memory map or a subset of it, never copied whole), the streaming pool reader
(record batches of any size), the chunked ``scores.parquet`` writer and ``load_pool(columns=...)``."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import pool as pool_module
from curate.pool import load_pool, read_pool, write_pool
from curate.project import write_scores
from curate.select import STRATEGIES, make_strategy
from curate.select import base as select_base
from curate.select.base import PoolRows, pool_rows


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, d))
    x = centres[rng.integers(12, size=n)] + 0.5 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)


@pytest.fixture
def mapped(tmp_path):
    x = _clustered(1500, 12, 0)
    np.save(tmp_path / "emb.npy", x)
    return x, np.load(tmp_path / "emb.npy", mmap_mode="r")


def test_pool_rows_indexing_matches_the_array(mapped, monkeypatch):
    monkeypatch.setattr(select_base, "RELEASE_BYTES", 1024)  # release the map's pages after almost every read
    x, mm = mapped
    pos = np.sort(np.random.default_rng(1).choice(len(x), 900, replace=False))
    inner = np.arange(100)[::-1]
    for view, ref in ((pool_rows(mm), x), (pool_rows(mm, pos), x[pos]),
                      (pool_rows(pool_rows(mm, pos), inner), x[pos][inner])):
        assert isinstance(view, PoolRows) and view.shape == ref.shape and view.ndim == 2 and len(view) == len(ref)
        assert view.dtype == np.float16
        for key in (3, slice(2, 40), slice(None), [4, 0, 1], np.array([1, 1, 0]), np.arange(len(ref)) % 2 == 0):
            got = view[key]
            assert isinstance(got, np.ndarray) and not isinstance(got, np.memmap)
            assert np.array_equal(got, ref[key])
        assert np.array_equal(np.asarray(view), ref)
    assert pool_rows(x) is x  # an in-memory array needs no view
    with pytest.raises(ValueError, match="positions"):
        PoolRows(x, np.array([0, len(x)]))


def test_pool_rows_of_every_row_in_order_index_the_base_directly(mapped):
    _, mm = mapped
    assert pool_rows(mm, np.arange(len(mm))).positions is None


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_selects_the_same_on_a_map_and_a_subset_view(name, mapped, monkeypatch):
    monkeypatch.setattr(select_base, "RELEASE_BYTES", 4096)
    x, mm = mapped
    rng = np.random.default_rng(2)
    scores = rng.random(len(x)).astype(np.float32)
    labelled = np.zeros(len(x), bool)
    labelled[rng.choice(len(x), 30, replace=False)] = True
    pos = np.sort(rng.choice(len(x), 1200, replace=False))

    def run(emb, s, lab):
        sel = make_strategy(name).query(scores=s, embeddings=emb, labelled=lab, budget=25,
                                        rng=np.random.default_rng(3), threshold=0.5)
        return sel.indices.tolist(), sel.groups.tolist(), json.dumps(sel.info, sort_keys=True)

    assert run(mm, scores, labelled) == run(x, scores, labelled)
    assert run(pool_rows(mm, pos), scores[pos], labelled[pos]) == run(x[pos], scores[pos], labelled[pos])


def _rows(n: int) -> list[dict]:
    rng = np.random.default_rng(4)
    return [{"id": f"i{i}" if i % 3 else i, "text": f"text {i} " + "x" * int(rng.integers(1, 9)),
             "score": float(i) / 3 if i % 5 else None, "tags": ["a"] * (i % 3),
             "label": "pos" if i % 4 == 0 else "neg"} for i in range(n)]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_streaming_ingest_is_the_same_table_for_any_batch_size(tmp_path, monkeypatch, suffix):
    rows = _rows(200)
    path = tmp_path / f"pool{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif suffix == ".csv":
        lines = ["id,text,score,label"] + [f"{r['id']},{r['text']},{'' if r['score'] is None else r['score']},"
                                           f"{r['label']}" for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        pq.write_table(pa.table({"id": [str(r["id"]) for r in rows], "text": [r["text"] for r in rows],
                                 "score": [r["score"] for r in rows], "label": [r["label"] for r in rows]}), path)
    kwargs = {"labels": ["neg", "pos"], "gold_field": "label"}
    whole = read_pool(path, **kwargs)  # one batch
    for batch in (1, 7, 64):
        monkeypatch.setattr(pool_module, "BATCH_ROWS", batch)
        assert read_pool(path, **kwargs).equals(whole)
    assert whole.column("id").to_pylist() == [str(r["id"]) for r in rows]
    assert whole.column("text").to_pylist() == [r["text"] for r in rows]


def test_streaming_ingest_reports_the_first_problem_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(pool_module, "BATCH_ROWS", 4)
    rows = [{"id": f"i{i}", "text": f"t{i}"} for i in range(20)]
    rows[13]["id"] = "i2"  # a duplicate of a row three batches earlier
    rows[17]["text"] = ""  # a later problem of another kind
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(Exception, match=r"line 14: id 'i2' is also the id on line 3 \(duplicate id\)"):
        read_pool(path)
    rows[13]["id"] = "i13"
    rows[9]["text"] = None  # now a text problem comes first
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(Exception, match=r"line 10: the text \('text'\) is null"):
        read_pool(path)


def test_write_scores_in_chunks_equals_one_table(tmp_path):
    ids = [f"item-{i}" for i in range(1003)]
    proba = np.random.default_rng(5).random((1003, 2)).astype(np.float32)
    write_scores(tmp_path / "a.parquet", pa.chunked_array([ids[:500], ids[500:]]), proba, ["no", "yes"],
                 chunk_rows=97)
    expected = pa.table({"id": ids, "p_no": proba[:, 0], "p_yes": proba[:, 1]})
    got = pq.read_table(tmp_path / "a.parquet")
    assert got.schema == expected.schema and got.equals(expected)
    with pytest.raises(ValueError, match="proba"):
        write_scores(tmp_path / "b.parquet", ids, proba[:10], ["no", "yes"])


def test_load_pool_reads_only_the_columns_asked(tmp_path):
    table = pa.table({"id": ["a", "b"], "text": ["x", "y"], "label": ["p", "n"]})
    write_pool(table, tmp_path / "pool.parquet")
    assert load_pool(tmp_path / "pool.parquet", columns=["id"]).column_names == ["id"]
    assert load_pool(tmp_path / "pool.parquet").equals(table)
    with pytest.raises(Exception, match="no column 'nope'"):
        load_pool(tmp_path / "pool.parquet", columns=["nope"])


def test_string_column_is_the_column_without_a_list(tmp_path):
    from curate.project import StringColumn

    texts = [f"text {i}" for i in range(150_000)]  # three record batches
    write_pool(pa.table({"id": [str(i) for i in range(len(texts))], "text": texts}), tmp_path / "pool.parquet")
    loads = []

    def load():
        loads.append(1)
        return load_pool(tmp_path / "pool.parquet", columns=["text"]).column("text")

    col = StringColumn(tmp_path / "pool.parquet", "text", load)
    assert len(col) == len(texts) and list(col) == texts and not loads  # streamed, nothing loaded
    assert col[0] == texts[0] and col[-1] == texts[-1] and col[np.int64(70_000)] == texts[70_000]
    assert col[10:20] == texts[10:20] and col[::50_000] == texts[::50_000] and col[-3:] == texts[-3:]
    assert loads == [1] and list(col) == texts
    with pytest.raises(IndexError):
        col[len(texts)]
    with pytest.raises(TypeError):
        col["a"]
