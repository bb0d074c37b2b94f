"""The scale benchmark runs end to end on a small pool, and the streaming ingest reads a real slice into the same
table as a whole-file read (``benchmarks/scale.py``; issue 15, "ten million items on one machine")."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import pool as pool_module
from curate.pool import read_pool
from curate.select import STRATEGIES
from tests.conftest import LABELS, REPO, RTE, webis_rows

SCRIPT = REPO / "benchmarks" / "scale.py"


def test_scale_benchmark_reports_every_stage(tmp_path):
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--n", "20000", "--out", str(tmp_path / "out"),
                           "--workdir", str(work)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "scale_20k.json").read_text(encoding="utf-8"))
    markdown = (tmp_path / "out" / "scale_20k.md").read_text(encoding="utf-8")
    stages = {row["stage"]: row for row in result["stages"]}
    assert set(stages) == {"build", "ingest", "round", *(f"select:{name}" for name in STRATEGIES)}
    for name, row in stages.items():
        assert "error" not in row, (name, row)
        assert row["seconds"] > 0 and row["wall_seconds"] > 0, name
        assert 0 < row["peak_rss_bytes"] < 4 * 2**30, name
        assert f"| {name} |" in markdown
    for name in STRATEGIES:
        assert stages[f"select:{name}"]["info"]["selected"] == 100
    assert stages["ingest"]["info"]["pool_rows"] == 20000
    assert stages["round"]["info"]["selected"] == 100
    assert result["n"] == 20000 and "--n 20000" in result["command"] and result["machine"] and result["date"]
    assert result["max_peak_rss_bytes"] == max(r["peak_rss_bytes"] for r in result["stages"])
    assert "extrapolated from the measured rate" in markdown
    assert not work.exists()  # the pool files are removed without --keep


def test_streaming_ingest_equals_a_whole_file_read_on_real_slices(tmp_path, monkeypatch):
    rows = webis_rows(3000)
    path = tmp_path / "webis.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    kwargs = {"labels": LABELS, "gold_field": "label", "crowd_field": "judgments"}
    monkeypatch.setattr(pool_module, "BATCH_ROWS", 10**9)  # one batch: the whole file at once
    whole = read_pool(path, **kwargs)
    monkeypatch.setattr(pool_module, "BATCH_ROWS", 257)
    streamed = read_pool(path, **kwargs)
    assert streamed.equals(whole) and streamed.schema == whole.schema
    # and both are what the file holds, column by column
    expected = pa.table({"id": [str(r["id"]) for r in rows], "text": [r["text"] for r in rows],
                         **{c: pa.array([r.get(c) for r in rows]) for c in ("judgments", "truth_mean", "label")}})
    assert streamed.equals(expected)

    pq.write_table(whole, tmp_path / "webis.parquet", row_group_size=1000)
    assert read_pool(tmp_path / "webis.parquet", **kwargs).equals(whole)

    if RTE.is_file():
        lines = RTE.read_text(encoding="utf-8").splitlines(keepends=True)[:1001]
        (tmp_path / "rte.csv").write_text("".join(lines), encoding="utf-8")
        streamed = read_pool(tmp_path / "rte.csv")
        monkeypatch.setattr(pool_module, "BATCH_ROWS", 10**9)
        assert streamed.equals(read_pool(tmp_path / "rte.csv")) and streamed.num_rows == 1000


def test_streaming_ingest_needs_no_more_memory_than_the_table(tmp_path):
    """Reading 300,000 rows holds Python objects for one batch only: the reader's peak stays near the table's size
    (the whole-file reader held every row as Python objects, several times the table)."""
    code = r"""
import json, resource, sys
from pathlib import Path
import pyarrow as pa
from curate.pool import read_pool
path = Path(sys.argv[1])
with path.open("w", encoding="utf-8") as fh:
    for i in range(300_000):
        fh.write(json.dumps({"id": f"item-{i:07d}", "text": f"a short text number {i} about nothing"}) + "\n")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
table = read_pool(path)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_kib": peak - before, "table_kib": table.nbytes // 1024, "rows": table.num_rows}))
"""
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.jsonl")], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rows"] == 300_000
    assert out["grew_kib"] < 4 * out["table_kib"] + 64 * 1024, out


def test_cached_embeddings_are_written_as_float16_batch_by_batch(tmp_path, monkeypatch):
    """The embedding cache is filled batch by batch into a float16 map (no (N, d) float32 array): the file holds the
    bytes of ``np.save(embed_texts(...).astype(np.float16))``, as before."""
    import numpy as np

    from curate import embed

    rows = webis_rows(120)
    ids, texts = [r["id"] for r in rows], [r["text"] for r in rows]
    monkeypatch.setattr(embed, "RELEASE_ROWS", 16)  # flush and release the map's pages often
    got = embed.cached_embeddings(tmp_path, ids, texts, model="bundled:all-MiniLM-L6-v2", precision="fp32",
                                  progress=False)
    assert isinstance(got, np.memmap) and got.dtype == np.float16 and got.shape == (120, 384)
    ref = embed.embed_texts(texts, model="bundled:all-MiniLM-L6-v2", precision="fp32", progress=False)
    np.save(tmp_path / "ref.npy", ref.astype(np.float16))
    assert (tmp_path / "embeddings.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embeddings.json", "embeddings.npy", "ref.npy"]
