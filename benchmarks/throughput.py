#!/usr/bin/env python
"""Throughput benchmark of curate on one machine: rates, selection time and memory, one full round.

What it measures (every figure from this run, on this machine):

- the machine's own limits: matrix-multiply FLOP/s (``torch.matmul`` of 2048 x 2048, fp32 and bf16) and memory-copy
  bandwidth (``numpy.copyto`` of a 512 MiB array);
- the embedding rate (``curate.embed.embed_texts``) and scoring rate (``EncoderClassifier.predict_proba`` of a freshly
  initialised classifier) of the bundled all-MiniLM-L6-v2 on Webis Clickbait 2017 tweets, fp32 and bf16;
- the time and peak memory of boundary-pairs selection (uncertainty and random as reference) on synthetic pools of
  clustered unit embeddings, each selection in a fresh child process;
- one full round of ``curate run`` on Webis (embedding reported apart, as a one-off), time per stage;

and puts each figure next to its target and, where it can, next to the limit that bounds it.

Usage::

    .venv/bin/python benchmarks/throughput.py            # full run (about 6 minutes on 2 cores)
    .venv/bin/python benchmarks/throughput.py --quick    # a slice, under 3 minutes
    .venv/bin/python benchmarks/throughput.py --out DIR  # write DIR/throughput.{md,json} (default benchmarks/results)

The results go to ``OUT/throughput.json`` (every figure) and ``OUT/throughput.md`` (the tables printed at the end).
The main process never imports faiss; the selection children and the CLI import torch first (see
``curate.runtime.import_faiss``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import math
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import _machine  # benchmarks/_machine.py, beside this script (on sys.path when it runs as a script)
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data"))
WEBIS = SHARED_DATA / "webis-clickbait-17" / "webis-clickbait-17.jsonl"
MODEL = "bundled:all-MiniLM-L6-v2"
LABELS = ["no-clickbait", "clickbait"]
STRATEGIES = ("boundary-margin", "typiclust", "boundary-pairs", "uncertainty", "random")
SEED = 0

# The synthetic selection pool: unit rows of dimension DIM around CENTRES Gaussian centres on the sphere.
DIM = 384
CENTRES = 500
NOISE = 1.0  # noise norm relative to a centre's (cosine item-centre about 0.7)
BUDGET = 100
GEN_CHUNK = 65_536

MATMUL_SIZE = 2048
COPY_BYTES = 512 * 2**20

TARGET_EMBED_RATE = 1_000.0  # short texts/s, bf16
TARGET_SELECT_SECONDS = 60.0  # boundary-pairs on 1,000,000 items
TARGET_SELECT_BYTES = 4 * 2**30  # peak memory of that selection
TARGET_ROUND_SECONDS = 120.0  # one full Webis round, embedding excluded
TARGET_SELECT_ITEMS = 1_000_000

# The Webis project of the full round: the README's quickstart settings.
INIT_ARGS = [
    "--labels", ",".join(LABELS), "--positive", "clickbait",
    "--prompt-file", str(REPO / "examples" / "webis" / "policy.txt"),
    "--negative-description", "A plain news headline that states what happened.",
    "--seed-examples", str(REPO / "examples" / "webis" / "seed_examples.json"),
    "--prior", "0.25", "--gold-field", "label", "--crowd-field", "judgments", "--weak-labels", "none",
]


@dataclass(frozen=True)
class Plan:
    """The sizes of one benchmark run.

    Attributes:
        rate_texts: Webis texts timed per rate (None: all 19,459).
        pool_sizes: synthetic selection pool sizes.
        round_items: Webis items in the round's pool (None: all).
        presentations: ``--presentations`` of the round's fine-tune (None: the default, 4000).
    """

    rate_texts: int | None
    pool_sizes: tuple[int, ...]
    round_items: int | None
    presentations: int | None


FULL = Plan(rate_texts=None, pool_sizes=(100_000, 1_000_000), round_items=None, presentations=None)
QUICK = Plan(rate_texts=600, pool_sizes=(20_000,), round_items=600, presentations=32)


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the final table)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def thread_env(threads: int) -> dict[str, str]:
    """The environment of a child process limited to ``threads`` threads (OpenMP, OpenBLAS, MKL)."""
    n = str(threads)
    return {**os.environ, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}


# -- the machine ------------------------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    """CPU, memory, versions and load at start (benchmarks/_machine.py)."""
    info = _machine.machine_info(("faiss-cpu",))
    info["faiss"] = info.pop("faiss-cpu")  # not imported here: this process never loads faiss
    return info


class LoadMonitor:
    """Measures, per section of the benchmark, how many cores other processes kept busy meanwhile (noise)."""

    def __init__(self) -> None:
        self.sections: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Time a section; record its wall time, the cores it used and the cores others used."""
        log(f"{name} ...")
        with _machine.Load() as load:
            yield
        self.sections.append({"section": name, "wall_seconds": load.wall, "own_cores": load.own_cores,
                              "other_cores": load.other_cores})
        log(f"{name}: {load.wall:.1f} s (other processes: {load.other_cores:.2f} cores)")


def measure_matmul(threads: int, repeats: int = 10) -> dict[str, dict[str, float]]:
    """FLOP/s of ``torch.matmul`` on two 2048 x 2048 matrices, fp32 and bf16 (2 n^3 FLOPs per product).

    Returns:
        ``{"fp32"|"bf16": {"best": FLOP/s of the fastest of ``repeats`` products, "median": ...}}``.
    """
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(SEED)
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=gen).to(dtype)
        b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=gen).to(dtype)
        for _ in range(2):  # warm-up: thread pool, packing buffers
            torch.matmul(a, b)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b)
            times.append(time.perf_counter() - start)
        flops = 2.0 * MATMUL_SIZE**3
        out[name] = {"best": flops / min(times), "median": flops / float(np.median(times))}
    return out


def measure_copy(repeats: int = 5) -> dict[str, float]:
    """Memory-copy bandwidth: ``numpy.copyto`` of a 512 MiB float64 array (one thread), bytes read + written per s.

    Returns:
        ``{"best": bytes/s of the fastest copy, "median": ...}``.
    """
    src = np.ones(COPY_BYTES // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the destination's pages in before timing
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    moved = 2.0 * COPY_BYTES
    return {"best": moved / min(times), "median": moved / float(np.median(times))}


def measure_limits(threads: int) -> dict[str, Any]:
    """Both limits once: ``{"matmul": {"fp32"|"bf16": {"best", "median"}}, "copy": {"best", "median"}}``."""
    return {"matmul": measure_matmul(threads), "copy": measure_copy()}


def combine_limits(start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
    """The limits measured at the start and at the end of the run; ``best`` is the higher of the two, so a
    neighbour's load during one measurement does not lower the limit every stage is compared with."""
    def both(a: dict[str, float], b: dict[str, float]) -> dict[str, Any]:
        return {"best": max(a["best"], b["best"]), "start": a, "end": b}

    return {"matmul": {p: both(start["matmul"][p], end["matmul"][p]) for p in start["matmul"]},
            "copy": both(start["copy"], end["copy"])}


def limit_value(limits: dict[str, Any], limit: str) -> float:
    """The value of a named limit: ``matmul fp32``, ``matmul bf16`` (FLOP/s) or ``copy bandwidth`` (bytes/s)."""
    if limit == "copy bandwidth":
        return limits["copy"]["best"]
    return limits["matmul"][limit.removeprefix("matmul ")]["best"]


def apply_limits(result: dict[str, Any]) -> None:
    """Fill in every figure that compares a stage with a limit (fractions, the rate the peak would allow)."""
    limits = result["limits"]
    for r in result["rates"]:
        peak = limit_value(limits, f"matmul {r['precision']}")
        r["fraction_of_peak"] = r["flops"] / r["seconds"] / peak
        r["items_per_s_at_peak"] = peak / (r["flops"] / r["texts"])
    for r in result["selection"]:
        r["fraction_of_copy_bw"] = r["bytes_floor"] / limit_value(limits, "copy bandwidth") / r["seconds"]
    rnd = result["round"]
    for s in [rnd["embedding"], rnd["scout_score"], *rnd["stages"]]:
        s["fraction_of_limit"] = None
        if s["limit"] is not None:
            s["fraction_of_limit"] = s["work"] / limit_value(limits, s["limit"]) / s["seconds"]


# -- model work (FLOPs) -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arch:
    """What the FLOP estimate needs of the transformer: its matmul parameters, layers and width."""

    params: int  # parameters of the encoder layers (token, position embeddings and pooler excluded)
    layers: int
    hidden: int


def model_arch() -> tuple[Arch, Callable[[Sequence[str]], np.ndarray]]:
    """The bundled model's :class:`Arch` and a function giving each text's token count (special tokens included)."""
    from transformers import AutoModel, AutoTokenizer

    from curate.models.resolve import resolve_model_path
    from curate.runtime import quiet_hf

    quiet_hf()
    path = str(resolve_model_path(MODEL))
    model = AutoModel.from_pretrained(path, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    arch = Arch(sum(p.numel() for p in model.encoder.parameters()), model.config.num_hidden_layers,
                model.config.hidden_size)

    def lengths(texts: Sequence[str]) -> np.ndarray:
        ids = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return np.array([len(x) for x in ids], dtype=np.int64)

    return arch, lengths


def forward_work(texts: Sequence[str], lengths: np.ndarray, *, batch_size: int, max_length: int,
                 arch: Arch) -> dict[str, float]:
    """Tokens and FLOPs of one forward pass over ``texts`` in curate's batches (sorted by length, padded per batch).

    FLOPs per batch of ``b`` texts padded to ``L`` tokens: ``2 * params * b * L`` (every matmul parameter is one
    multiply-add per token) plus ``4 * layers * b * L^2 * hidden`` (attention scores and their weighted sum).
    Embedding look-ups, softmax, layer norm and activations are not counted.
    """
    from curate.progress import batches_by_length

    tokens = padded = flops = 0.0
    clipped = np.minimum(lengths, max_length)
    for idx in batches_by_length(texts, batch_size, "", enabled=False):
        b, seq = len(idx), int(clipped[idx].max())
        tokens += float(clipped[idx].sum())
        padded += b * seq
        flops += 2.0 * arch.params * b * seq + 4.0 * arch.layers * b * seq**2 * arch.hidden
    return {"tokens": tokens, "padded_tokens": padded, "flops": flops}


def padded_if_sorted_by_tokens(lengths: np.ndarray, *, batch_size: int, max_length: int) -> float:
    """Padded tokens per text if batches were sorted by token count instead of characters (for comparison)."""
    clipped = np.sort(np.minimum(lengths, max_length))
    padded = sum(len(b) * int(b[-1]) for b in np.split(clipped, range(batch_size, len(clipped), batch_size)))
    return padded / max(len(clipped), 1)


def train_work(lengths: np.ndarray, *, epochs: int, batch_size: int, max_length: int, arch: Arch) -> float:
    """Estimated FLOPs of a fine-tune: 3 x the forward FLOPs (forward, then backward at twice the cost) over
    ``epochs`` passes in random batches of ``batch_size``, each padded to its longest text (a random order drawn
    here, not the run's own: the padding is estimated, not replayed)."""
    rng = np.random.default_rng(SEED)
    clipped = np.minimum(lengths, max_length)
    flops = 0.0
    for _ in range(epochs):
        order = rng.permutation(len(clipped))
        for start in range(0, len(order), batch_size):
            batch = clipped[order[start:start + batch_size]]
            b, seq = len(batch), int(batch.max())
            flops += 3.0 * (2.0 * arch.params * b * seq + 4.0 * arch.layers * b * seq**2 * arch.hidden)
    return flops


# -- rates ------------------------------------------------------------------------------------------------------------
def read_webis(n: int | None) -> list[dict]:
    """The first ``n`` Webis rows (all when None)."""
    if not WEBIS.is_file():
        sys.exit(f"error: {WEBIS}: Webis Clickbait 2017 not found (set CURATE_SHARED_DATA to the shared data folder)")
    rows = []
    with WEBIS.open(encoding="utf-8") as fh:
        for line in fh:
            rows.append(json.loads(line))
            if n is not None and len(rows) >= n:
                break
    return rows


def measure_rates(texts: list[str], lengths: np.ndarray, arch: Arch, threads: int) -> list[dict[str, Any]]:
    """Embedding and scoring rate of the bundled model, fp32 and bf16, after a warm-up of 256 texts.

    Model loading and the warm-up are not timed. ``flops`` is the estimated work of the timed pass (see
    :func:`forward_work`); :func:`apply_limits` compares it with the matmul peak of the same precision.
    """
    import torch

    from curate.config import StudentConfig
    from curate.embed import embed_texts, load_sentence_model
    from curate.models.encoder import EncoderClassifier

    rows = []
    for stage in ("embedding", "scoring"):
        for precision in ("fp32", "bf16"):
            if stage == "embedding":
                max_length = load_sentence_model(MODEL, precision=precision).max_seq_length

                def run(batch: list[str], precision: str = precision) -> np.ndarray:
                    return embed_texts(batch, model=MODEL, precision=precision, threads=threads, progress=False)
            else:
                settings = StudentConfig(precision=precision, threads=threads)
                max_length = settings.max_length
                torch.manual_seed(SEED)  # the fresh classification head
                clf = EncoderClassifier(LABELS, settings)

                def run(batch: list[str], clf: EncoderClassifier = clf) -> np.ndarray:
                    return clf.predict_proba(batch, progress=False)

            run(texts[:256])
            start = time.perf_counter()
            out = run(texts)
            seconds = time.perf_counter() - start
            if not np.isfinite(out).all():
                raise RuntimeError(f"{stage} {precision}: non-finite outputs")
            work = forward_work(texts, lengths, batch_size=128, max_length=max_length, arch=arch)
            flops_per_s = work["flops"] / seconds
            rows.append({
                "stage": stage, "precision": precision, "texts": len(texts), "seconds": seconds,
                "items_per_s": len(texts) / seconds, "max_length": max_length, "batch_size": 128,
                "tokens_per_text": work["tokens"] / len(texts),
                "padded_tokens_per_text": work["padded_tokens"] / len(texts),
                "padded_tokens_per_text_if_sorted_by_tokens": padded_if_sorted_by_tokens(
                    lengths, batch_size=128, max_length=max_length),
                "flops": work["flops"], "mflop_per_text": work["flops"] / len(texts) / 1e6,
                "gflop_per_s": flops_per_s / 1e9,
            })
            log(f"{stage} {precision}: {len(texts) / seconds:.0f} texts/s")
    return rows


def embedding_breakdown(texts: list[str], lengths: np.ndarray, arch: Arch, threads: int) -> dict[str, Any]:
    """Where the time of bf16 embedding goes: a profiled pass (torch profiler, self time per operator) over up to
    2,000 texts, grouped into linear layers, attention kernels, other torch operators and time outside torch
    (tokenisation, Python); tokenisation is also timed on its own."""
    from torch.profiler import ProfilerActivity, profile

    from curate.embed import embed_texts, load_sentence_model
    from curate.progress import batches_by_length

    sample = texts[:2000]
    st = load_sentence_model(MODEL, precision="bf16")
    start = time.perf_counter()
    for idx in batches_by_length(sample, 128, "", enabled=False):
        st.tokenizer([sample[i] for i in idx], padding=True, truncation=True, max_length=st.max_seq_length,
                     return_tensors="pt")
    tokenize = time.perf_counter() - start
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        embed_texts(sample, model=MODEL, precision="bf16", threads=threads, progress=False)
        wall = time.perf_counter() - start
    groups = {"linear": 0.0, "attention": 0.0, "other_ops": 0.0}
    for event in prof.key_averages():
        seconds = event.self_cpu_time_total / 1e6
        if event.key in ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear"):
            groups["linear"] += seconds
        elif "attention" in event.key or "softmax" in event.key:
            groups["attention"] += seconds
        elif event.key.startswith("aten::"):
            groups["other_ops"] += seconds
    work = forward_work(sample, lengths[: len(sample)], batch_size=128, max_length=st.max_seq_length, arch=arch)
    return {
        "texts": len(sample), "wall_seconds": wall, "tokenize_seconds": tokenize,
        **{f"{k}_seconds": v for k, v in groups.items()},
        "outside_torch_seconds": max(wall - sum(groups.values()), 0.0),
        "linear_gflop_per_s": 2.0 * arch.params * work["padded_tokens"] / groups["linear"] / 1e9,
        "attention_flop_share": 1.0 - 2.0 * arch.params * work["padded_tokens"] / work["flops"],
    }


# -- selection --------------------------------------------------------------------------------------------------------
def scores_path(embeddings_path: Path) -> Path:
    """Where :func:`make_synthetic_pool` writes the scores that go with an embeddings file."""
    return embeddings_path.with_name(embeddings_path.stem + ".scores.npy")


def make_synthetic_pool(path: Path, n: int) -> None:
    """Write ``n`` clustered unit embeddings (float16, ``(n, DIM)``) to ``path`` and their scores beside it.

    Deterministic: ``CENTRES`` Gaussian centres normalised onto the sphere, cluster shares drawn from a flat
    Dirichlet, each item its centre plus Gaussian noise of norm about ``NOISE`` (relative), normalised. The
    score p(positive) is a logistic function of the item's projection on one random direction (about a third
    predicted positive), so clusters straddle the decision boundary. Written in chunks through a memory map, so
    the pool is never held in memory as a whole.
    """
    rng = np.random.default_rng([SEED, DIM])
    centres = rng.standard_normal((CENTRES, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    shares = rng.dirichlet(np.ones(CENTRES))
    direction = rng.standard_normal(DIM).astype(np.float32)
    direction /= np.linalg.norm(direction)
    spread = float(np.std(centres @ direction))
    emb = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, DIM))
    scores = np.empty(n, dtype=np.float32)
    for k, start in enumerate(range(0, n, GEN_CHUNK)):
        crng = np.random.default_rng([SEED, DIM, k])
        m = min(GEN_CHUNK, n - start)
        x = centres[crng.choice(CENTRES, size=m, p=shares)]
        x += crng.standard_normal((m, DIM), dtype=np.float32) * np.float32(NOISE / math.sqrt(DIM))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        emb[start:start + m] = x
        scores[start:start + m] = 1.0 / (1.0 + np.exp(-(2.5 * (x @ direction) / spread - 0.6)))
    emb.flush()
    del emb
    np.save(scores_path(path), scores)


def _rss_bytes() -> int:
    """The current resident set size of this process (VmRSS)."""
    with open("/proc/self/status", encoding="utf-8") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


def _peak_rss_bytes() -> int:
    """This process's peak resident set size so far: ``VmHWM``, else ``ru_maxrss``.

    On Linux ``getrusage(RUSAGE_SELF).ru_maxrss`` of a child started by fork + exec keeps the parent's peak
    (about 1.3 GB here, with the models loaded), which would hide the child's own; ``VmHWM`` is the peak of the
    child's own address space.
    """
    with contextlib.suppress(OSError, StopIteration), open("/proc/self/status", encoding="utf-8") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def select_child(name: str, path: Path, budget: int, threads: int) -> dict[str, Any]:
    """Run one selection in this (fresh) process; the body of ``--_select NAME NPY``.

    The embeddings are memory-mapped and read once before the baseline is taken, so the baseline holds the
    libraries and the resident embeddings, and the peak minus the baseline is the selection's own memory.
    """
    import torch

    torch.set_num_threads(threads)
    from curate.select import make_strategy  # imports faiss, after torch

    emb = np.load(path, mmap_mode="r")
    scores = np.load(scores_path(path))
    n = emb.shape[0]
    for start in range(0, n, GEN_CHUNK):  # fault the pages in (file-backed: they count in RSS once read)
        emb[start:start + GEN_CHUNK].max()
    labelled = np.zeros(n, dtype=bool)
    strategy = make_strategy(name)
    baseline = _rss_bytes()
    start = time.perf_counter()
    chosen = strategy.query(scores=scores, embeddings=emb, labelled=labelled, budget=budget,
                            rng=np.random.default_rng(SEED), threshold=0.5)
    seconds = time.perf_counter() - start
    row = {"strategy": name, "n_items": n, "seconds": seconds, "selected": int(chosen.indices.size),
           "baseline_rss_bytes": baseline, "peak_rss_bytes": _peak_rss_bytes(),
           "predicted_positive": int((scores >= 0.5).sum()), "info": chosen.info}
    if name == "boundary-pairs":  # where the time goes: a second, profiled run (after the peak was read)
        profiler = cProfile.Profile()
        profiler.runcall(strategy.query, scores=scores, embeddings=emb, labelled=labelled, budget=budget,
                         rng=np.random.default_rng(SEED), threshold=0.5)
        row["profile"] = profile_hotspots(profiler)
    return row


HOTSPOT_NOTES = {
    "numpy.array": "float16 -> float32 copies",
    "Clustering_train": "faiss k-means",
    "IndexFlat_search": "faiss exact search",
    "_cluster": "nearest-centroid pass: matmul, distances, radii",
    "margin_order": "margin sort for the fallback, done even when it fills nothing",
}


def profile_hotspots(profiler: cProfile.Profile, top: int = 4) -> list[dict[str, Any]]:
    """The ``top`` functions by own time (``tottime``) of a cProfile run, with their share of the total."""
    stats = pstats.Stats(profiler).stats  # {(file, line, function): (calls, ncalls, tottime, cumtime, callers)}
    total = sum(v[2] for v in stats.values()) or 1.0
    out = []
    for (file, _line, func), v in sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]:
        name = func.removeprefix("<built-in method ").removesuffix(">") if file == "~" else f"{Path(file).stem}.{func}"
        name = name.removeprefix("faiss._swigfaiss.")
        note = next((n for key, n in HOTSPOT_NOTES.items() if key in name), None)
        out.append({"function": name, "note": note, "seconds": v[2], "share": v[2] / total})
    return out


def selection_bytes(name: str, n: int, info: dict[str, Any]) -> float:
    """The bytes a selection must move at the least (its memory-bound floor), by strategy.

    boundary-pairs: one read of the ``n x d`` float16 embeddings (the nearest-centroid pass) plus one write of the
    ``n x K`` float32 distance matrix; boundary-margin (the candidates' neighbour search) and typiclust (the
    nearest-centroid pass): one read of the embeddings plus scores and mask; uncertainty: the float32 scores and the
    bool labelled mask; random: the mask.
    """
    if name == "boundary-pairs":
        k = int(info.get("n_clusters_positive", 0)) + int(info.get("n_clusters_benign", 0))
        return float(n) * (DIM * 2 + k * 4)
    if name in ("boundary-margin", "typiclust"):  # one read of the embeddings (neighbour search / assignment)
        return float(n) * (DIM * 2 + 5)
    return float(n) * (5 if name == "uncertainty" else 1)


def measure_selection(name: str, path: Path, n: int, threads: int) -> dict[str, Any]:
    """Run :func:`select_child` in a child process and add the memory-bound estimate."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_select", name, str(path), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=thread_env(threads), cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"selection {name} on {n} items failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["increment_rss_bytes"] = row["peak_rss_bytes"] - row["baseline_rss_bytes"]
    row["bytes_floor"] = selection_bytes(name, n, row["info"])
    log(f"{name} on {n:,} items: {row['seconds']:.2f} s, peak {row['peak_rss_bytes'] / 2**20:.0f} MiB")
    return row


# -- one full round ---------------------------------------------------------------------------------------------------
def _cli(args: list[str], threads: int) -> float:
    """Run ``python -m curate.cli ARGS`` in the repository; return its wall seconds.

    Raises:
        RuntimeError: the command failed (its stderr attached).
    """
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "curate.cli", *args], capture_output=True, text=True,
                          env=thread_env(threads), cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"curate {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def measure_round(work: Path, plan: Plan, threads: int, arch: Arch,
                  lengths_of: Callable[[Sequence[str]], np.ndarray]) -> dict[str, Any]:
    """Create a Webis project with ``curate init``, run ``curate run --rounds 1 --budget 100``, read the step times.

    The run embeds the pool (one-off), scores it with the prompt-only scout (round 0), selects, labels (simulated
    experts), splits and fine-tunes ``M_1``, then scores and evaluates ``M_1`` (round 1) and stops at the round
    limit. A round of the loop from then on (score, evaluate, select, label, split, train) is timed as round 1's
    score and evaluate (the student's, on the whole pool) plus round 0's select, label, split and train.
    """
    from curate.config import load_config, save_config
    from curate.embed import load_sentence_model
    from curate.project import Project
    from curate.runtime import pick_precision
    from curate.store import Store

    if plan.round_items is None:
        pool = WEBIS
        read_webis(1)  # fails clearly when the data is missing
    else:
        pool = work / "pool.jsonl"
        pool.write_text("".join(json.dumps(r) + "\n" for r in read_webis(plan.round_items)), encoding="utf-8")
    project = work / "webis-round"
    init_seconds = _cli(["init", str(project), "--pool", str(pool), *INIT_ARGS], threads)
    config = load_config(project)
    config.student.threads = threads
    save_config(project, config)
    run_args = ["run", str(project), "--oracle", "simulated", "--rounds", "1", "--budget", str(BUDGET),
                "--seed", str(SEED), "--quiet"]
    if plan.presentations is not None:
        run_args += ["--presentations", str(plan.presentations)]
    run_seconds = _cli(run_args, threads)

    store = Store(project)
    try:
        records = {(r["round"], r["step"]): r for r in store.step_records()}
        splits = store.splits()
    finally:
        store.close()
    proj = Project.open(project)
    texts = proj.texts
    lengths = lengths_of(texts)
    student = proj.config.student
    precision = pick_precision(student.precision)

    def stage(step: str, round_index: int, label: str) -> dict[str, Any]:
        rec = records[(round_index, step)]
        return {"stage": label, "step": step, "round": round_index, "seconds": float(rec["seconds"]),
                "info": rec["info"], "work": None, "limit": None}

    embed = stage("embed", -1, "embedding (one-off, cached in the project)")
    embed_length = load_sentence_model(MODEL, precision=precision).max_seq_length  # cached by the rates section
    embed_work = forward_work(texts, lengths, batch_size=128, max_length=embed_length, arch=arch)
    embed.update(work=embed_work["flops"], limit=f"matmul {precision}")
    scout = stage("score", 0, "score: round 0, prompt-only scout (from the embeddings)")

    steps = [stage("score", 1, "score: M_1 on the whole pool"), stage("evaluate", 1, "evaluate: M_1"),
             stage("select", 0, "select: the default (TypiClust cold start in round 0), budget 100"),
             stage("label", 0, "label: simulated experts"),
             stage("split", 0, "split: fine-tune / eval"), stage("train", 0, "train: fine-tune M_1")]
    score_work = forward_work(texts, lengths, batch_size=128, max_length=student.max_length, arch=arch)
    steps[0].update(work=score_work["flops"], limit=f"matmul {precision}")
    sel_info = steps[2]["info"]
    n_selectable = len(texts) - sum(1 for s in splits.values() if s == "test")
    steps[2].update(work=selection_bytes("typiclust", n_selectable, sel_info), limit="copy bandwidth")
    train_info = steps[5]["info"]
    ft_pos = [proj.position[i] for i, s in splits.items() if s == "finetune"]
    flops = train_work(lengths[ft_pos], epochs=int(train_info["epochs"]), batch_size=student.batch_size,
                       max_length=student.max_length, arch=arch)
    steps[5].update(work=flops, limit=f"matmul {precision}")
    round_seconds = sum(s["seconds"] for s in steps)
    for s in steps:
        s["share_of_round"] = s["seconds"] / round_seconds
    return {
        "pool_items": len(texts), "selectable_items": n_selectable, "budget": BUDGET, "precision": precision,
        "presentations": student.presentations, "finetune_items": len(ft_pos),
        "epochs": int(train_info["epochs"]), "train_steps": int(train_info["steps"]),
        "embedding": embed, "scout_score": scout, "stages": steps, "round_seconds": round_seconds,
        "init_wall_seconds": init_seconds, "run_wall_seconds": run_seconds,
        "steps_recorded": [{"round": r, "step": s, "seconds": float(rec["seconds"])}
                           for (r, s), rec in sorted(records.items())],
    }


# -- targets and report -----------------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return f"{100 * x:.0f} %" if x >= 0.1 else f"{100 * x:.1f} %" if x >= 0.001 else f"{100 * x:.2g} %"


def evaluate_targets(result: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    """Each target with the figure measured for it, whether it is reached, and a one-line why where it is not."""
    out = []
    bf16 = next(r for r in result["rates"] if r["stage"] == "embedding" and r["precision"] == "bf16")
    why = None
    if bf16["items_per_s"] < TARGET_EMBED_RATE:
        if bf16["items_per_s_at_peak"] < TARGET_EMBED_RATE:
            why = (f"the bf16 matmul peak itself allows only {bf16['items_per_s_at_peak']:.0f} texts/s at "
                   f"{bf16['mflop_per_text']:.0f} MFLOP per text")
        else:
            b = result["embedding_breakdown"]
            real, padded = bf16["tokens_per_text"], bf16["padded_tokens_per_text"]
            why = (f"{_pct(bf16['fraction_of_peak'])} of the bf16 matmul peak ({bf16['items_per_s_at_peak']:,.0f} "
                   f"texts/s at 100 %): attention kernels take {_pct(b['attention_seconds'] / b['wall_seconds'])} "
                   f"of the time for {_pct(b['attention_flop_share'])} of the FLOPs; batches sorted by characters "
                   f"carry {_pct(padded / real - 1)} padding ({padded:.1f} tokens/text for {real:.1f}, "
                   f"{bf16['padded_tokens_per_text_if_sorted_by_tokens']:.1f} if sorted by tokens); the linear "
                   f"layers run at {_pct(b['linear_gflop_per_s'] * 1e9 / result['limits']['matmul']['bf16']['best'])}"
                   " of peak")
    out.append({"target": "embedding, bf16 (short texts/s)", "goal": f">= {TARGET_EMBED_RATE:,.0f}",
                "measured": bf16["items_per_s"], "unit": "texts/s", "reached": bf16["items_per_s"] >= TARGET_EMBED_RATE,
                "why": why, "note": f"{bf16['texts']:,} Webis texts"})

    big = [r for r in result["selection"] if r["strategy"] == "boundary-pairs" and r["n_items"] >= TARGET_SELECT_ITEMS]
    for what, key, goal, unit, scale in (
        ("time", "seconds", TARGET_SELECT_SECONDS, "s", 1.0),
        ("peak memory", "peak_rss_bytes", TARGET_SELECT_BYTES, "GiB", 2**30),
    ):
        name = f"boundary-pairs on 1,000,000 items, {what}"
        goal_text = f"< {goal / scale:g} {unit}"
        if not big:
            out.append({"target": name, "goal": goal_text, "measured": None, "unit": unit, "reached": None,
                        "why": None, "note": "not measured with --quick (20,000-item pool only)"})
            continue
        row = big[0]
        reached = row[key] < goal
        why = None
        if not reached and key == "seconds":
            spots = ", ".join(f"{h['note'] or h['function']} {_pct(h['share'])}" for h in row.get("profile", [])[:2])
            why = f"at {_pct(row['fraction_of_copy_bw'])} of the copy-bandwidth floor; most time in {spots}"
        elif not reached:
            why = (f"baseline {row['baseline_rss_bytes'] / 2**30:.2f} GiB (libraries + mapped embeddings) "
                   f"+ selection {row['increment_rss_bytes'] / 2**30:.2f} GiB")
        out.append({"target": name, "goal": goal_text, "measured": row[key] / scale, "unit": unit,
                    "reached": reached, "why": why, "note": None})

    rnd = result["round"]
    slowest = max(rnd["stages"], key=lambda s: s["seconds"])
    why = None
    if rnd["round_seconds"] >= TARGET_ROUND_SECONDS:
        frac = slowest["fraction_of_limit"]
        why = (f"{slowest['step']} takes {slowest['seconds']:.0f} s ({_pct(slowest['share_of_round'])} of the round)"
               + (f", at {_pct(frac)} of the {slowest['limit']} limit" if frac is not None else ""))
    out.append({"target": "one full Webis round (embedding excluded)", "goal": f"< {TARGET_ROUND_SECONDS / 60:g} min",
                "measured": rnd["round_seconds"], "unit": "s", "reached": rnd["round_seconds"] < TARGET_ROUND_SECONDS,
                "why": why,
                "note": (f"{rnd['pool_items']:,}-item pool, --presentations {rnd['presentations']} (--quick)"
                         if quick else f"{rnd['pool_items']:,} items")})
    return out


def _size(n: float) -> str:
    """Bytes in MiB, or KiB below 1 MiB."""
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


def _table(header: Sequence[str], rows: list[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(result: dict[str, Any]) -> str:
    """The results as Markdown tables (what is printed and written to ``throughput.md``)."""
    m, lim = result["machine"], result["limits"]
    mib = 2**20
    lines = [
        "# curate throughput benchmark" + (" (--quick slice)" if result["quick"] else ""),
        "",
        f"- Command: `{result['command']}`",
        f"- Date: {result['date']} (total {result['total_seconds'] / 60:.1f} min)",
        f"- Machine: {m['cpu_model']}, {m['cores_usable']} cores usable ({m['cores_logical']} logical), "
        f"{m['memory_gib']} GiB memory, native bf16: {'yes' if m['bf16_native'] else 'no'} "
        f"(bf16/fp32 matmul {m['bf16_speedup']}x, auto picks {m['auto_precision']}); {m['platform']}",
        f"- Software: Python {m['python']}, torch {m['torch']}, numpy {m['numpy']}, faiss {m['faiss']}",
        f"- Threads: {result['threads']} (torch intra-op, OpenMP, BLAS)",
        "",
        "## Targets",
        "",
    ]
    tgt_rows = []
    for t in result["targets"]:
        if t["measured"] is None:
            measured = "—"
        elif t["unit"] in ("texts/s", "s"):
            measured = f"{t['measured']:,.0f} {t['unit']}"
        else:
            measured = f"{t['measured']:.2f} {t['unit']}"
        reached = "—" if t["reached"] is None else ("yes" if t["reached"] else "**no**")
        tgt_rows.append([t["target"], t["goal"], measured, reached, t["why"] or t["note"] or ""])
    lines += _table(["target", "goal", "measured", "reached", "why not / note"], tgt_rows)

    lines += ["", "## Machine limits (measured in this run)", ""]
    def limit_row(name: str, x: dict[str, Any], unit: str, digits: int) -> list[str]:
        return [name, f"**{x['best'] / 1e9:.{digits}f} {unit}**"] + [
            f"{x[when]['best'] / 1e9:.{digits}f} / {x[when]['median'] / 1e9:.{digits}f}" for when in ("start", "end")]

    lines += _table(["limit", "used (best of all)", "at start: best / median", "at end: best / median"], [
        limit_row(f"matmul {MATMUL_SIZE}x{MATMUL_SIZE} fp32 (torch, {result['threads']} threads)",
                  lim["matmul"]["fp32"], "GFLOP/s", 0),
        limit_row(f"matmul {MATMUL_SIZE}x{MATMUL_SIZE} bf16 (torch, {result['threads']} threads)",
                  lim["matmul"]["bf16"], "GFLOP/s", 0),
        limit_row(f"memory copy, numpy.copyto {COPY_BYTES // mib} MiB (1 thread, read + write)", lim["copy"],
                  "GB/s", 1),
    ])

    lines += ["", f"## Embedding and scoring rate (all-MiniLM-L6-v2, Webis tweets, {result['threads']} threads)", ""]
    lines += _table(
        ["stage", "precision", "texts", "seconds", "texts/s", "tokens/text: real, padded, padded if sorted by tokens",
         "GFLOP/s (est.)",
         "of matmul peak", "texts/s at peak", "target"],
        [[r["stage"], r["precision"], f"{r['texts']:,}", f"{r['seconds']:.1f}", f"**{r['items_per_s']:,.0f}**",
          f"{r['tokens_per_text']:.1f}, {r['padded_tokens_per_text']:.1f}, "
          f"{r['padded_tokens_per_text_if_sorted_by_tokens']:.1f}", f"{r['gflop_per_s']:.0f}",
          _pct(r["fraction_of_peak"]), f"{r['items_per_s_at_peak']:,.0f}",
          f">= {TARGET_EMBED_RATE:,.0f}" if r["stage"] == "embedding" and r["precision"] == "bf16" else ""]
         for r in result["rates"]])
    b = result["embedding_breakdown"]
    w = b["wall_seconds"]
    lines += ["", f"bf16 embedding of {b['texts']:,} texts under the torch profiler: {w:.2f} s, of which linear layers "
              f"{_pct(b['linear_seconds'] / w)} ({b['linear_gflop_per_s']:.0f} GFLOP/s), attention kernels "
              f"{_pct(b['attention_seconds'] / w)} ({_pct(b['attention_flop_share'])} of the FLOPs), other torch "
              f"operators {_pct(b['other_ops_seconds'] / w)}, outside torch {_pct(b['outside_torch_seconds'] / w)} "
              f"(tokenisation alone: {b['tokenize_seconds']:.2f} s)."]

    sel = result["selection"]
    lines += ["", f"## Selection, budget {BUDGET} (synthetic pool: {CENTRES} clusters of unit embeddings, "
              f"dimension {DIM}, float16, memory-mapped; each run in a fresh process)", ""]
    lines += _table(
        ["strategy", "items", "seconds", "peak RSS", "baseline RSS", "selection's own", "bytes floor",
         "of copy bandwidth", "target"],
        [[r["strategy"], f"{r['n_items']:,}", f"**{r['seconds']:.2f}**", f"**{_size(r['peak_rss_bytes'])}**",
          _size(r["baseline_rss_bytes"]), _size(r["increment_rss_bytes"]), _size(r["bytes_floor"]),
          _pct(r["fraction_of_copy_bw"]),
          f"< {TARGET_SELECT_SECONDS:g} s, < {TARGET_SELECT_BYTES / 2**30:g} GiB"
          if r["strategy"] == "boundary-pairs" and r["n_items"] >= TARGET_SELECT_ITEMS else ""]
         for r in sel])

    rnd = result["round"]
    for r in sel:
        if "profile" in r:
            spots = ", ".join(f"{h['function']}{' (' + h['note'] + ')' if h['note'] else ''} {_pct(h['share'])}"
                              for h in r["profile"])
            lines += ["", f"boundary-pairs on {r['n_items']:,} items, where the time goes (cProfile of a second run, "
                      f"own time): {spots}."]
    lines += ["", f"## One full round on Webis ({rnd['pool_items']:,} items, budget {rnd['budget']}, "
              f"{rnd['finetune_items']} fine-tune items x {rnd['epochs']} epochs = {rnd['train_steps']} steps, "
              f"{rnd['precision']})", ""]
    rows = []
    for s in rnd["stages"]:
        frac = "" if s["fraction_of_limit"] is None else f"{_pct(s['fraction_of_limit'])} of {s['limit']}"
        rows.append([s["stage"], f"{s['seconds']:.1f}", _pct(s["share_of_round"]), frac])
    rows.append(["**round**", f"**{rnd['round_seconds']:.1f}**", "100 %",
                 f"target < {TARGET_ROUND_SECONDS:g} s"])
    e = rnd["embedding"]
    rows.append([e["stage"], f"{e['seconds']:.1f}", "", f"{_pct(e['fraction_of_limit'])} of {e['limit']}"])
    rows.append([rnd["scout_score"]["stage"], f"{rnd['scout_score']['seconds']:.1f}", "", ""])
    rows.append(["`curate init` / `curate run` wall (process start, imports, model loads, everything above)",
                 f"{rnd['init_wall_seconds']:.1f} / {rnd['run_wall_seconds']:.1f}", "", ""])
    lines += _table(["stage", "seconds", "share of round", "of its limit (est.)"], rows)
    lines += ["", "Round = round 1's score and evaluate (the student M_1) + round 0's select, label, split and "
              "train (the steps of every later round); round 0 scores with the prompt-only scout instead. Times are "
              "the loop's own step records: train includes loading the base model and saving M_1, score loading M_1, "
              "embedding loading the sentence model."]

    lines += [
        "", "## How the estimates are made", "",
        f"- Model FLOPs: 2 x {result['arch']['params'] / 1e6:.2f} M encoder-layer parameters x padded tokens, "
        f"+ 4 x layers x L^2 x hidden per text for attention (L = padded length of its batch); embeddings, softmax, "
        "layer norm and activations not counted. Batches as curate makes them (128 texts sorted by length). "
        "Fine-tuning: 3 x forward (backward = 2 x forward), padding of random batches of 32 simulated.",
        "- Limits: measured at the start and at the end of the run (the fastest of 10 `torch.matmul` products, of 5 "
        "copies); stages are compared with the better of the two, so a neighbour's load during one measurement "
        "does not flatter them. The model's matmuls are smaller (about 3,000 x 384 x 1,536 per batch) and cannot "
        "reach the 2048 x 2048 peak fully.",
        "- Selection floor: boundary-pairs must read the n x 384 float16 embeddings once and write the n x K float32 "
        "distances (K clusters); uncertainty reads scores and mask, random the mask; floor time = bytes / copy "
        "bandwidth (one thread). The chunked float32 copies, k-means and searches add to it, so 100 % is unreachable.",
        "- Peak RSS: the child process's `VmHWM` (its `ru_maxrss` would carry the parent's peak over fork + exec); "
        "baseline = RSS just before `query` (Python, torch, faiss, and the embeddings read once, which count as "
        "resident file pages); selection's own = peak - baseline.",
        f"- Synthetic pool: {CENTRES} Gaussian centres on the sphere, Dirichlet(1) shares, noise of norm about "
        f"{NOISE:g} x the centre's; p(positive) logistic in one random direction "
        f"(about a third predicted positive); seed {SEED}.",
    ]

    load = result["load"]
    busy = [s for s in load if s["other_cores"] >= 0.2]
    lines += ["", "## Load from other processes", ""]
    lines += [f"Load average at start (1, 5, 15 min, work finished before included): "
              f"{', '.join(map(str, m['load_average_at_start']))}. "
              + (f"Other processes kept on average >= 0.2 cores busy during: "
                 f"{', '.join(s['section'] for s in busy)}; those figures are pessimistic."
                 if busy else "No section saw other processes use more than 0.2 cores on average."), ""]
    lines += _table(["section", "wall s", "cores used by the benchmark", "cores used by others"],
                    [[s["section"], f"{s['wall_seconds']:.1f}", f"{s['own_cores']:.2f}", f"{s['other_cores']:.2f}"]
                     for s in load])
    return "\n".join(lines) + "\n"


def run_benchmark(plan: Plan, out: Path, threads: int, argv: Sequence[str]) -> dict[str, Any]:
    """Run every section of the benchmark and write ``out/throughput.{json,md}``."""
    import torch  # before faiss (curate.runtime.import_faiss)

    from curate.runtime import configure_threads

    configure_threads(threads)
    started = time.perf_counter()
    monitor = LoadMonitor()
    result: dict[str, Any] = {
        "command": _machine.command_line(__file__, argv),
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": plan is QUICK,
        "threads": threads,
        "model": MODEL,
        "machine": machine_info(),
        "torch_threads": torch.get_num_threads(),
    }
    with monitor.section("machine limits (start)"):
        limits_start = measure_limits(threads)

    arch, lengths_of = model_arch()
    result["arch"] = {"params": arch.params, "layers": arch.layers, "hidden": arch.hidden}
    texts = [r["text"] for r in read_webis(plan.rate_texts)]
    with monitor.section("embedding and scoring rates"):
        result["rates"] = measure_rates(texts, lengths_of(texts), arch, threads)
    with monitor.section("bf16 embedding time breakdown (profiler)"):
        result["embedding_breakdown"] = embedding_breakdown(texts, lengths_of(texts), arch, threads)

    result["selection"] = []
    with tempfile.TemporaryDirectory(prefix="curate-bench-") as tmp:
        for n in plan.pool_sizes:
            path = Path(tmp) / f"pool-{n}.npy"
            with monitor.section(f"synthetic pool of {n:,} (generation)"):
                make_synthetic_pool(path, n)
            for name in STRATEGIES:
                with monitor.section(f"selection: {name}, {n:,} items"):
                    result["selection"].append(measure_selection(name, path, n, threads))
            path.unlink()
            scores_path(path).unlink()
        with monitor.section("full round on Webis (curate init + curate run)"):
            result["round"] = measure_round(Path(tmp), plan, threads, arch, lengths_of)

    with monitor.section("machine limits (end)"):
        limits_end = measure_limits(threads)
    result["limits"] = combine_limits(limits_start, limits_end)
    apply_limits(result)
    result["load"] = monitor.sections
    result["total_seconds"] = time.perf_counter() - started
    result["targets"] = evaluate_targets(result, plan is QUICK)
    result = _machine.json_clean(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(result)
    (out / "throughput.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    log(f"wrote {out / 'throughput.json'} and {out / 'throughput.md'}")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line; run the benchmark, or one selection when called as a child (``--_select``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a slice: 2,000 texts for rates, a 20,000-item synthetic pool, a 1,000-item round")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results",
                        help="folder for throughput.json and throughput.md (default: benchmarks/results)")
    parser.add_argument("--threads", type=int, default=2, help="threads for torch, OpenMP and BLAS (default 2)")
    parser.add_argument("--_select", nargs=2, metavar=("NAME", "NPY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._select:
        name, path = args._select
        print(json.dumps(_machine.json_clean(select_child(name, Path(path), BUDGET, args.threads))))
        return
    run_benchmark(QUICK if args.quick else FULL, args.out, args.threads, argv)


if __name__ == "__main__":
    main()
