#!/usr/bin/env python
"""Scale benchmark: ten million items on one machine (issue 15, part 2).

Builds a synthetic pool on disk and measures, each stage in a fresh child process, the wall time and the peak
resident memory (the child's ``VmHWM``: anonymous memory and the file pages it has mapped, read at its end) of:

- ``build``: the synthetic pool itself (not a curate stage): ``N`` short texts in a Parquet (or ``--format jsonl`` /
  ``csv``) file, ``N`` clustered 384-d unit embeddings written as a float16 ``.npy`` a chunk at a time, and synthetic
  scores (float32 p(positive));
- ``ingest``: what ``curate init`` does, :func:`curate.project.init_project` (``curate.pool.read_pool`` streaming
  the file in record batches, then ``write_pool``);
- ``select:NAME``: one selection of every registered query strategy (``curate.select.STRATEGIES``), its ``query``
  run on the memory-mapped ``(N, 384)`` float16 embeddings with a round budget of ``--budget`` items and
  ``--labelled`` items labelled by earlier rounds;
- ``round``: the per-round bookkeeping of :class:`curate.loop.Loop` on the ingested project: the ``score`` step
  writing ``scores.parquet`` (from the synthetic scores, the model's time excluded), the threshold, the ``select``
  step (the project's default strategy and cold start, recording the selection in the store) and the ``split`` step.

The embedding and scoring time of ``N`` items is not measured here: it is extrapolated from the measured rate in
``benchmarks/results/throughput.json``.

Usage::

    .venv/bin/python benchmarks/scale.py --n 10000000 --out benchmarks/results   # the committed run
    .venv/bin/python benchmarks/scale.py --n 1000000 --out /tmp/scale             # development
    .venv/bin/python benchmarks/scale.py --n 20000 --out /tmp/scale --strategies random   # a quick check

Results: ``OUT/scale_<n>.json`` and ``OUT/scale_<n>.md`` (``scale_10m`` for 10,000,000 items, ``scale_1m``,
``scale_100k``, else ``scale_<n>``). The pool lives in a temporary folder under ``/tmp`` (``--workdir`` to choose),
removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import _machine  # benchmarks/_machine.py, beside this script (on sys.path when it runs as a script)

REPO = Path(__file__).resolve().parents[1]
THROUGHPUT = REPO / "benchmarks" / "results" / "throughput.json"
LABELS = ["benign", "positive"]
DIM = 384
CENTRES = 1000
NOISE = 1.0  # noise norm relative to a centre's (cosine item-centre about 0.7), as benchmarks/throughput.py
PRIOR = 0.25  # share of items predicted positive (the decision threshold is that quantile)
GEN_CHUNK = 131_072  # rows generated and written at a time
TARGET_RSS_BYTES = 4 * 2**30
TARGET_TOTAL_SECONDS = 3600.0
SEED = 0
WORDS = (
    "the a new old report says man woman city state court police study shows why how what you will never believe "
    "this these after before over under year day week people government market price school game team win lose "
    "first last best worst big small top secret plan data water fire storm health food money home world local "
    "national report warns experts say could may might must should record high low rise fall"
).split()


# --------------------------------------------------------------------------- the child's side


def peak_rss_bytes() -> int:
    """This process's peak resident set size: ``VmHWM`` from /proc (``ru_maxrss`` where there is no /proc).

    ``ru_maxrss`` of a child started by fork + exec carries the parent's peak; ``VmHWM`` is the child's own.
    """
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _paths(work: Path, fmt: str) -> dict[str, Path]:
    return {"pool": work / f"pool.{fmt}", "emb": work / "embeddings.npy", "scores": work / "scores.npy",
            "project": work / "project"}


def _texts(rng, start: int, n: int) -> list[str]:
    """``n`` short headline-like texts (6 to 13 words) numbered from ``start`` (every text different)."""
    import numpy as np

    lengths = rng.integers(6, 14, size=n)
    idx = rng.integers(0, len(WORDS), size=(n, 13))
    words = np.asarray(WORDS, dtype=object)[idx]
    return [" ".join(row[:k]) + f" #{start + i}" for i, (row, k) in enumerate(zip(words.tolist(), lengths.tolist()))]


def build(work: Path, n: int, fmt: str) -> dict[str, Any]:
    """Write the synthetic pool: texts (``fmt``), float16 embeddings and float32 scores, ``GEN_CHUNK`` rows at a
    time (never the whole pool in memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = _paths(work, fmt)
    rng = np.random.default_rng(SEED)
    centres = rng.standard_normal((CENTRES, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    direction = rng.standard_normal(DIM).astype(np.float32)
    direction /= np.linalg.norm(direction)
    # cluster sizes: a long tail, as real pools have
    weights = 1.0 / np.arange(1, CENTRES + 1) ** 0.8
    weights /= weights.sum()
    centre_bias = rng.normal(0.0, 1.5, size=CENTRES).astype(np.float32)  # some clusters mostly positive

    timings: dict[str, float] = {"texts": 0.0, "embeddings": 0.0}
    schema = pa.schema([("id", pa.string()), ("text", pa.string())])
    writer = pq.ParquetWriter(paths["pool"], schema) if fmt == "parquet" else None
    text_fh = open(paths["pool"], "w", encoding="utf-8", newline="") if fmt != "parquet" else None
    csv_writer = None
    if fmt == "csv":
        import csv

        csv_writer = csv.writer(text_fh)
        csv_writer.writerow(["id", "text"])
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)), "fortran_order": False, "shape": (n, DIM)}
    scores_header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                     "shape": (n,)}
    with open(paths["emb"], "wb") as emb_fh, open(paths["scores"], "wb") as score_fh:
        np.lib.format.write_array_header_2_0(emb_fh, header)
        np.lib.format.write_array_header_2_0(score_fh, scores_header)
        for start in range(0, n, GEN_CHUNK):
            m = min(GEN_CHUNK, n - start)
            t0 = time.perf_counter()
            ids = [f"item-{i:09d}" for i in range(start, start + m)]
            texts = _texts(rng, start, m)
            if writer is not None:
                writer.write_table(pa.table({"id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string())},
                                            schema=schema))
            elif csv_writer is not None:
                csv_writer.writerows(zip(ids, texts))
            else:
                text_fh.write("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts)))
            del ids, texts
            t1 = time.perf_counter()
            which = rng.choice(CENTRES, size=m, p=weights)
            x = rng.standard_normal((m, DIM), dtype=np.float32)
            x *= NOISE / np.sqrt(DIM)
            x += centres[which]
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            logit = 6.0 * (x @ direction) + centre_bias[which] - 1.2 + rng.normal(0.0, 0.7, size=m).astype(np.float32)
            p = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
            emb_fh.write(x.astype(np.float16).tobytes())
            score_fh.write(p.tobytes())
            timings["embeddings"] += time.perf_counter() - t1
            timings["texts"] += t1 - t0
    if writer is not None:
        writer.close()
    if text_fh is not None:
        text_fh.close()
    return {"seconds_texts": timings["texts"], "seconds_embeddings_and_scores": timings["embeddings"],
            "bytes": {k: paths[k].stat().st_size for k in ("pool", "emb", "scores")}}


def _task():
    from curate.config import TaskConfig

    return TaskConfig(labels=LABELS, positive="positive", prompt="A synthetic positive item.")


def ingest(work: Path, fmt: str) -> dict[str, Any]:
    """``curate init``'s path: read and validate the pool file, write ``pool.parquet``, the settings and the store."""
    from curate.project import init_project

    paths = _paths(work, fmt)
    init_project(paths["project"], paths["pool"], task=_task(), overrides={"oracle": {"kind": "web"}})
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(paths["project"] / "pool.parquet").metadata
    return {"pool_rows": meta.num_rows, "pool_parquet_bytes": (paths["project"] / "pool.parquet").stat().st_size}


def _threshold(scores) -> float:
    import numpy as np

    return float(np.quantile(scores, 1.0 - PRIOR))


def select(work: Path, name: str, budget: int, n_labelled: int) -> tuple[dict[str, Any], float]:
    """One ``query`` of strategy ``name`` on the memory-mapped embeddings; returns (info, seconds of the query)."""
    import numpy as np
    import torch  # before faiss (see curate.runtime.import_faiss)

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    from curate.select import make_strategy

    paths = _paths(work, "parquet")
    emb = np.load(paths["emb"], mmap_mode="r")
    scores = np.load(paths["scores"])
    n = scores.shape[0]
    threshold = _threshold(scores)
    rng = np.random.default_rng(SEED + 1)
    labelled = np.zeros(n, dtype=bool)
    labelled[rng.choice(n, size=min(n_labelled, n), replace=False)] = True
    expert_positive = np.full(n, np.nan)
    flips = rng.random(n_labelled) < 0.2  # the experts disagree with the model on a fifth of them
    at = np.flatnonzero(labelled)
    expert_positive[at] = np.where(flips[: at.size], scores[at] < threshold, scores[at] >= threshold)
    strategy = make_strategy(name)
    start = time.perf_counter()
    chosen = strategy.query(scores=scores, embeddings=emb, labelled=labelled, budget=budget,
                            rng=np.random.default_rng(SEED), threshold=threshold, expert_positive=expert_positive)
    seconds = time.perf_counter() - start
    return {"selected": int(chosen.indices.size), "threshold": threshold, "info": chosen.info}, seconds


def round_bookkeeping(work: Path, budget: int) -> tuple[dict[str, Any], float]:
    """The loop's per-round steps on the ingested project with synthetic scores: score (write scores.parquet),
    threshold, select (the default strategy and cold start; the selection recorded in the store), split."""
    import numpy as np
    import torch  # before faiss

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    from curate.loop import Loop
    from curate.project import Project

    from curate.embed import EMBEDDINGS_NAME, embeddings_key, write_embeddings_meta

    paths = _paths(work, "parquet")
    project = Project.open(paths["project"])
    project.config = project.config.model_copy(update={"loop": project.config.loop.model_copy(
        update={"budget": budget})})
    # The synthetic embeddings become the project's cache, as if the embedding pass had run (its time is
    # extrapolated): a hard link (or a copy) of the .npy and embeddings.json with the fingerprint of the ids and texts.
    target = project.path / EMBEDDINGS_NAME
    if not target.exists():
        try:
            os.link(paths["emb"], target)
        except OSError:
            shutil.copyfile(paths["emb"], target)
    sel = project.config.selection
    write_embeddings_meta(project.path, embeddings_key(project.ids, project.text_sequence, sel.embedding_model,
                                                       sel.embedding_backend),
                          model=sel.embedding_model, shape=(len(project.ids), DIM), precision="fp32",
                          backend=sel.embedding_backend)
    loop = Loop(project, progress=False, log=lambda _msg: None)
    p = np.load(paths["scores"])
    proba = np.stack([1.0 - p, p], axis=1)
    del p
    loop._scout_proba = lambda: proba  # the model's scores of every item (their computing time is extrapolated)
    steps: dict[str, float] = {}
    start = time.perf_counter()
    loop.embeddings()
    steps["embeddings (fingerprint of ids and texts, memory map)"] = time.perf_counter() - start
    t = time.perf_counter()
    stored = loop.score(0)
    steps["score (write scores.parquet, read back)"] = time.perf_counter() - t
    t = time.perf_counter()
    threshold = loop.threshold(stored)
    steps["threshold"] = time.perf_counter() - t
    t = time.perf_counter()
    selection = loop.select(0, stored, threshold)
    steps["select (default strategy + cold start, recorded)"] = time.perf_counter() - t
    t = time.perf_counter()
    loop.split(0, selection)
    steps["split"] = time.perf_counter() - t
    seconds = time.perf_counter() - start
    info = loop.store.step_records()
    select_info = next((r["info"] for r in info if r["step"] == "select"), {})
    return {"steps_seconds": steps, "selected": len(selection), "strategy": select_info.get("strategy"),
            "threshold": threshold, "scores_parquet_bytes": (project.round_dir(0) / "scores.parquet").stat().st_size}, \
        seconds


def child(stage: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one stage in this (fresh) process; print its measurements as one JSON line."""
    start = time.perf_counter()
    if stage == "build":
        info, seconds = build(work, args.n, args.format), None
    elif stage == "ingest":
        info, seconds = ingest(work, args.format), None
    elif stage == "round":
        info, seconds = round_bookkeeping(work, args.budget)
    elif stage.startswith("select:"):
        info, seconds = select(work, stage.split(":", 1)[1], args.budget, args.labelled)
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    total = time.perf_counter() - start
    return {"stage": stage, "seconds": seconds if seconds is not None else total, "seconds_in_child": total,
            "peak_rss_bytes": peak_rss_bytes(), "info": info}


# --------------------------------------------------------------------------- the parent's side


def run_stage(stage: str, work: Path, args: argparse.Namespace, log) -> dict[str, Any]:
    """``stage`` in a fresh child process; its JSON line plus the wall time the parent saw."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_stage", stage, "--_work", str(work), "--n", str(args.n),
           "--format", args.format, "--budget", str(args.budget), "--labelled", str(args.labelled)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    threads = str(args.threads)
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    log(f"{stage} ...")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        row = {"stage": stage, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"],
               "stderr_tail": proc.stderr[-3000:], "wall_seconds": wall}
        log(f"{stage}: FAILED ({row['error'][0]})")
        return row
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["wall_seconds"] = wall
    log(f"{stage}: {row['seconds']:.1f} s, peak RSS {row['peak_rss_bytes'] / 2**30:.2f} GiB")
    return row


def extrapolated(n: int) -> dict[str, Any]:
    """Embedding and scoring time of ``n`` items from the measured rates of benchmarks/results/throughput.json."""
    out: dict[str, Any] = {"source": str(THROUGHPUT.relative_to(REPO))}
    try:
        data = json.loads(THROUGHPUT.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        out["error"] = "throughput.json not found"
        return out
    out["measured_on"] = f"{data.get('machine', {}).get('cpu_model', '?')}, {data.get('date', '?')}"
    rows = []
    for r in data.get("rates", []):
        rate = float(r["items_per_s"])
        rows.append({"stage": r["stage"], "precision": r["precision"], "items_per_s": rate,
                     "seconds_for_n": n / rate, "hours_for_n": n / rate / 3600})
    out["rates"] = rows
    return out


def stage_list(strategies: Sequence[str]) -> list[str]:
    return ["build", "ingest", *[f"select:{s}" for s in strategies], "round"]


def others_running() -> list[str]:
    """Other heavy jobs on the machine now (long benchmarks that share the cores), from ``ps``."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,args"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    me = os.getpid()
    found = []
    for line in out.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) < 3 or int(parts[0]) == me:
            continue
        if "scale.py" in parts[2]:
            continue
        if "selftrain.py" in parts[2] or "curate experiment" in parts[2] or float(parts[1]) >= 50.0:
            found.append(f"pid {parts[0]}: {parts[2][:120]}")
    return found


def results_name(n: int) -> str:
    """``scale_10m`` / ``scale_1m`` / ``scale_100k`` / ``scale_<n>``."""
    for size, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n % size == 0 and n >= size:
            return f"scale_{n // size}{suffix}"
    return f"scale_{n}"


def markdown(result: dict[str, Any]) -> str:
    n = result["n"]
    gib = lambda b: f"{b / 2**30:.2f}"  # noqa: E731
    lines = [f"# Scale benchmark: {n:,} items on one machine", "",
             f"- Command: `{result['command']}`",
             f"- Date: {result['date']}",
             f"- Machine: {result['machine']}",
             f"- Sharing the machine: {'; '.join(result['others_running']) or 'nothing else heavy running'} "
             f"(load average at start {result['load_average_at_start']}, at end {result['load_average_at_end']})",
             f"- Pool: {n:,} synthetic short texts ({result['format']}), {DIM}-d float16 unit embeddings around "
             f"{CENTRES} centres (memory-mapped, {result['embeddings_gib']:.2f} GiB on disk), synthetic scores; "
             f"budget {result['budget']} items per selection, {result['labelled']} items labelled by earlier rounds.",
             "- Each stage ran in a fresh child process; peak RSS is that child's `VmHWM` (its anonymous memory and "
             "the file pages it had mapped). Time is the stage's own work (imports excluded; `wall` is the child's "
             "whole life).",
             "",
             "| stage | time (s) | wall (s) | peak RSS (GiB) | under 4 GiB | notes |",
             "|---|---|---|---|---|---|"]
    for row in result["stages"]:
        if "error" in row:
            lines.append(f"| {row['stage']} | failed | {row['wall_seconds']:.1f} | | no | {row['error'][0][:120]} |")
            continue
        note = ""
        info = row.get("info", {})
        if row["stage"] == "round":
            note = "; ".join(f"{k} {v:.1f} s" for k, v in info.get("steps_seconds", {}).items())
        elif row["stage"].startswith("select:"):
            note = f"{info.get('selected')} selected"
        elif row["stage"] == "ingest":
            note = f"pool.parquet {info.get('pool_parquet_bytes', 0) / 2**20:.0f} MiB"
        elif row["stage"] == "build":
            note = (f"texts {info.get('seconds_texts', 0):.0f} s, embeddings and scores "
                    f"{info.get('seconds_embeddings_and_scores', 0):.0f} s (not a curate stage)")
        ok = "yes" if row["peak_rss_bytes"] < TARGET_RSS_BYTES else "**no**"
        lines.append(f"| {row['stage']} | {row['seconds']:.1f} | {row['wall_seconds']:.1f} | "
                     f"{gib(row['peak_rss_bytes'])} | {ok} | {note} |")
    lines += ["", f"Whole benchmark: {result['total_seconds'] / 60:.1f} minutes (target under 60 on 2 cores: "
              f"{'met' if result['total_seconds'] < TARGET_TOTAL_SECONDS else '**not met**'}); largest peak RSS "
              f"{gib(result['max_peak_rss_bytes'])} GiB (target under 4 GiB: "
              f"{'met' if result['max_peak_rss_bytes'] < TARGET_RSS_BYTES else '**not met**'}).", ""]
    ex = result["extrapolated"]
    if "rates" in ex:
        lines += [f"Embedding and scoring {n:,} items, **extrapolated from the measured rate** "
                  f"(`{ex['source']}`, {ex['measured_on']}; not measured here):", "",
                  "| stage | precision | measured rate (items/s) | time for the pool |", "|---|---|---|---|"]
        for r in ex["rates"]:
            lines.append(f"| {r['stage']} | {r['precision']} | {r['items_per_s']:.0f} | "
                         f"{r['hours_for_n']:.1f} h ({r['seconds_for_n']:.0f} s) |")
        lines.append("")
    if result.get("shortfalls"):
        lines += ["Where it falls short:", ""] + [f"- {s}" for s in result["shortfalls"]] + [""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="items in the synthetic pool (default 10,000,000)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results",
                        help="folder for scale_<n>.json and .md (default benchmarks/results)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the pool is built (default a new temporary folder under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the pool files (else removed at the end)")
    parser.add_argument("--format", choices=("parquet", "jsonl", "csv"), default="parquet",
                        help="the pool file ingested (default parquet)")
    parser.add_argument("--budget", type=int, default=100, help="items per selection (default 100)")
    parser.add_argument("--labelled", type=int, default=500, help="items labelled by earlier rounds (default 500)")
    parser.add_argument("--strategies", nargs="*", default=None, help="strategies to time (default: all registered)")
    parser.add_argument("--threads", type=int, default=2, help="threads for BLAS, OpenMP and faiss (default 2)")
    parser.add_argument("--_stage", help=argparse.SUPPRESS)
    parser.add_argument("--_work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._stage:
        print(json.dumps(_machine.json_clean(child(args._stage, args._work, args))))
        return
    if args.n < 2:
        parser.error("--n must be at least 2")

    sys.path.insert(0, str(REPO / "src"))
    from curate.select import STRATEGIES  # light: no torch, no faiss

    strategies = list(STRATEGIES) if args.strategies is None else args.strategies
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
    created = args.workdir is None
    work = Path(tempfile.mkdtemp(prefix="curate-scale-")) if created else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)  # noqa: E731
    others = others_running()
    load_start = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = []
    try:
        for stage in stage_list(strategies):
            rows.append(run_stage(stage, work, args, log))
            if stage in ("build", "ingest") and "error" in rows[-1]:
                break
            others = sorted(set(others) | set(others_running()))
    finally:
        emb_bytes = (work / "embeddings.npy").stat().st_size if (work / "embeddings.npy").is_file() else 0
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    total = time.perf_counter() - started
    ok_rows = [r for r in rows if "error" not in r]
    max_peak = max((r["peak_rss_bytes"] for r in ok_rows), default=0)
    shortfalls = []
    for r in rows:
        if "error" in r:
            shortfalls.append(f"{r['stage']} failed: {r['error'][0]}")
        elif r["peak_rss_bytes"] >= TARGET_RSS_BYTES:
            shortfalls.append(f"{r['stage']}: peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB, over 4 GiB")
    if total >= TARGET_TOTAL_SECONDS:
        shortfalls.append(f"the whole benchmark took {total / 60:.1f} minutes, over 60")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "command": _machine.command_line(__file__, argv),
        "date": date,
        "machine": _machine.machine_line(),
        "others_running": others,
        "load_average_at_start": load_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "n": args.n, "format": args.format, "budget": args.budget, "labelled": args.labelled,
        "dim": DIM, "centres": CENTRES, "threads": args.threads,
        "embeddings_gib": emb_bytes / 2**30,
        "stages": rows,
        "total_seconds": total,
        "max_peak_rss_bytes": max_peak,
        "children_max_rss_bytes_getrusage": children.ru_maxrss * 1024,
        "children_cpu_seconds": children.ru_utime + children.ru_stime,
        "targets": {"peak_rss_bytes": TARGET_RSS_BYTES, "total_seconds": TARGET_TOTAL_SECONDS},
        "shortfalls": shortfalls,
        "extrapolated": extrapolated(args.n),
    }
    result = _machine.json_clean(result)
    args.out.mkdir(parents=True, exist_ok=True)
    name = results_name(args.n)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / f"{name}.md").write_text(markdown(result), encoding="utf-8")
    log(f"wrote {args.out / name}.json and .md; total {total / 60:.1f} min, max peak RSS {max_peak / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
