#!/usr/bin/env python
"""Faster CPU scoring (issue 15, part 3): the fine-tuned student's scoring rate and its kappa against gold, per backend.

One run, one machine: the bundled all-MiniLM-L6-v2 is fine-tuned once on Webis Clickbait 2017 training labels (gold
labels of posts outside the test split), saved, and the test split is scored by each backend:

- ``torch fp32`` and ``torch bf16`` (``student.backend = "torch"``, ``student.precision = "fp32"`` / ``"bf16"``);
- ``onnx fp32`` and ``onnx int8`` (``student.backend = "onnx"`` / ``"onnx-int8"``, :mod:`curate.models.onnx_backend`).

For each: texts/s of ``EncoderClassifier.predict_proba`` over the test split (best of ``repeats`` passes, after a
64-text first call that is timed apart: it holds the one-off ONNX export or quantization), Cohen's kappa against
gold (two decision rules: the loop's default ``prior`` rule, the ``1 - prior`` quantile of the scores, prior 0.25
as in the Webis quickstart; and argmax), AUROC, and how far the scores move from torch fp32 (largest
``|delta p|``, share of identical decisions). The issue's aim: at least 2x the fp32 rate with kappa within 0.01 of
fp32. The embedding model's rate per backend is measured too (cosine with the fp32 vectors instead of a kappa).

The test split is the loop's (``loop.test_fraction = 0.2``, seed 0: ``curate.loop.step_rng(0, 0, "split-test")``).

Usage::

    .venv/bin/python benchmarks/fast_scoring.py            # 600 labels, the whole test split (3,892 posts), best of 3
    .venv/bin/python benchmarks/fast_scoring.py --quick    # 200 labels, 600 test posts, one pass (a few minutes)
    .venv/bin/python benchmarks/fast_scoring.py --out DIR  # write DIR/fast_scoring[_quick].{md,json}

The results go to ``OUT/fast_scoring.json`` and ``OUT/fast_scoring.md`` (``fast_scoring_quick.*`` with ``--quick``).
The ONNX exports go to temporary folders (the student's beside its saved copy, the embedding model's in a temporary
``CURATE_CACHE``), so every run measures the one-off export too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import _machine  # benchmarks/_machine.py, beside this script (on sys.path when it runs as a script)
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data"))
WEBIS = SHARED_DATA / "webis-clickbait-17" / "webis-clickbait-17.jsonl"
MODEL = "bundled:all-MiniLM-L6-v2"
LABELS = ["no-clickbait", "clickbait"]
POSITIVE = 1
PRIOR = 0.25  # the Webis quickstart's --prior
TEST_FRACTION = 0.2  # loop.test_fraction's default
AIM_SPEEDUP = 2.0
AIM_KAPPA = 0.01
# (name, student.backend, student.precision)
BACKENDS = (("torch fp32", "torch", "fp32"), ("torch bf16", "torch", "bf16"), ("onnx fp32", "onnx", "fp32"),
            ("onnx int8", "onnx-int8", "fp32"))
EMBEDDING_BACKENDS = (("torch fp32", "torch", "fp32"), ("torch bf16", "torch", "bf16"), ("onnx fp32", "onnx", "fp32"),
                      ("onnx int8", "onnx-int8", "fp32"))


@dataclass(frozen=True)
class Plan:
    """The sizes of one run.

    Attributes:
        train_labels: gold-labelled training posts (outside the test split) the student is fine-tuned on.
        presentations: ``student.presentations`` of that fine-tune (None: the default, 4000).
        test_texts: test-split posts scored (None: the whole split).
        repeats: timed passes per backend (the best counts).
    """

    train_labels: int
    presentations: int | None
    test_texts: int | None
    repeats: int


FULL = Plan(train_labels=600, presentations=None, test_texts=None, repeats=3)
QUICK = Plan(train_labels=200, presentations=400, test_texts=600, repeats=1)


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the final table)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read_webis() -> list[dict]:
    """Every Webis row."""
    if not WEBIS.is_file():
        sys.exit(f"error: {WEBIS}: Webis Clickbait 2017 not found (set CURATE_SHARED_DATA to the shared data folder)")
    with WEBIS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def split(n: int, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` row positions: the loop's test split (seed 0) and ``plan.train_labels`` other rows."""
    from curate.loop import step_rng

    test = np.sort(step_rng(0, 0, "split-test").permutation(n)[: int(round(TEST_FRACTION * n))])
    rest = np.setdiff1d(np.arange(n), test)
    train = np.sort(np.random.default_rng(0).permutation(rest)[: plan.train_labels])
    if plan.test_texts is not None:
        test = test[: plan.test_texts]
    return train, test


def decisions(p_pos: np.ndarray) -> dict[str, np.ndarray]:
    """``(n,)`` predicted label indices under the two rules: ``prior`` (the ``1 - PRIOR`` quantile of the scores
    themselves, label-free) and ``argmax`` (p >= 0.5)."""
    thr = float(np.quantile(p_pos.astype(np.float64), 1.0 - PRIOR))
    return {"prior": (p_pos >= thr).astype(int), "argmax": (p_pos >= 0.5).astype(int)}


def train_student(rows: list[dict], train: np.ndarray, plan: Plan, folder: Path, threads: int) -> dict[str, Any]:
    """Fine-tune the student once on the gold labels of ``train`` (torch, ``precision = "auto"``) and save it."""
    from curate.config import StudentConfig
    from curate.models.encoder import EncoderClassifier

    update = {} if plan.presentations is None else {"presentations": plan.presentations}
    settings = StudentConfig(threads=threads, **update)
    texts = [rows[i]["text"] for i in train]
    targets = np.array([[rows[i]["label"] == lab for lab in LABELS] for i in train], dtype=np.float32)
    clf = EncoderClassifier(LABELS, settings)
    start = time.perf_counter()
    fit = clf.fit(texts, targets, seed=0, progress=False)
    clf.save(folder)
    fit["seconds"] = time.perf_counter() - start
    log(f"fine-tuned on {len(texts)} labels: {fit['epochs']} epochs, {fit['steps']} steps, {fit['seconds']:.0f} s "
        f"({fit['precision']})")
    return {k: fit[k] for k in ("examples", "epochs", "steps", "precision", "final_loss", "seconds")}


def measure_student(folder: Path, texts: list[str], gold: np.ndarray, plan: Plan, threads: int) -> list[dict]:
    """Rate, kappa against gold and distance from torch fp32 of each backend (see the module docstring)."""
    from curate.agreement import cohen_kappa
    from curate.config import StudentConfig
    from curate.evaluation import auroc
    from curate.models.encoder import EncoderClassifier

    rows: list[dict] = []
    reference: np.ndarray | None = None
    for name, backend, precision in BACKENDS:
        clf = EncoderClassifier.load(folder, LABELS, StudentConfig(precision=precision, backend=backend,
                                                                   threads=threads))
        start = time.perf_counter()
        clf.predict_proba(texts[:64], progress=False)  # one-off: the export (onnx) or quantization (int8)
        first = time.perf_counter() - start
        passes, loads = [], []
        for _ in range(plan.repeats):
            with _machine.Load() as load:
                proba = clf.predict_proba(texts, progress=False)
            passes.append(load.wall)
            loads.append(load.other_cores)
        if not np.isfinite(proba).all():
            raise RuntimeError(f"{name}: non-finite scores")
        p = proba[:, POSITIVE]
        reference = p if reference is None else reference
        dec, ref_dec = decisions(p), decisions(reference)
        row = {
            "backend": name, "student_backend": backend, "precision": precision, "texts": len(texts),
            "first_call_seconds": first, "pass_seconds": passes, "other_cores": loads,
            "texts_per_s": len(texts) / min(passes),
            "kappa_prior": cohen_kappa(dec["prior"].tolist(), gold.tolist()),
            "kappa_argmax": cohen_kappa(dec["argmax"].tolist(), gold.tolist()),
            "auroc": auroc(gold.astype(bool), p),
            "max_abs_dp_vs_fp32": float(np.abs(p - reference).max()),
            "same_decision_vs_fp32_prior": float(np.mean(dec["prior"] == ref_dec["prior"])),
        }
        rows.append(row)
        log(f"student {name}: {row['texts_per_s']:.0f} texts/s (first call {first:.1f} s), kappa "
            f"{row['kappa_prior']:.3f} (prior) {row['kappa_argmax']:.3f} (argmax), max |dp| vs fp32 "
            f"{row['max_abs_dp_vs_fp32']:.2g}")
        del clf
    base = rows[0]
    for row in rows:
        row["speedup_vs_fp32"] = row["texts_per_s"] / base["texts_per_s"]
        row["kappa_delta_vs_fp32"] = row["kappa_prior"] - base["kappa_prior"]
        row["meets_aim"] = (row["speedup_vs_fp32"] >= AIM_SPEEDUP and abs(row["kappa_delta_vs_fp32"]) <= AIM_KAPPA
                            if row is not base else None)
    return rows


def measure_embedding(texts: list[str], plan: Plan, threads: int) -> list[dict]:
    """Embedding rate of each backend (``embed_texts``), and the cosine of each vector with its torch fp32 twin."""
    from curate.embed import embed_texts

    rows: list[dict] = []
    reference: np.ndarray | None = None
    for name, backend, precision in EMBEDDING_BACKENDS:
        def run(batch: list[str]) -> np.ndarray:
            return embed_texts(batch, model=MODEL, precision=precision, threads=threads, progress=False,
                               backend=backend)

        start = time.perf_counter()
        run(texts[:64])
        first = time.perf_counter() - start
        passes, loads = [], []
        for _ in range(plan.repeats):
            with _machine.Load() as load:
                vecs = run(texts)
            passes.append(load.wall)
            loads.append(load.other_cores)
        reference = vecs if reference is None else reference
        cos = np.sum(vecs * reference, axis=1)
        rows.append({"backend": name, "embedding_backend": backend, "precision": precision, "texts": len(texts),
                     "first_call_seconds": first, "pass_seconds": passes, "other_cores": loads,
                     "texts_per_s": len(texts) / min(passes), "min_cosine_vs_fp32": float(cos.min()),
                     "mean_cosine_vs_fp32": float(cos.mean())})
        log(f"embedding {name}: {rows[-1]['texts_per_s']:.0f} texts/s, min cosine vs fp32 {cos.min():.4f}")
    for row in rows:
        row["speedup_vs_fp32"] = row["texts_per_s"] / rows[0]["texts_per_s"]
    return rows


def _table(header: Sequence[str], rows: list[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def render_markdown(result: dict[str, Any]) -> str:
    """The results as Markdown (what is printed and written to ``fast_scoring[_quick].md``)."""
    m = result["machine"]
    fit = result["fit"]
    lines = [
        "# Faster CPU scoring: torch fp32 / bf16 against ONNX Runtime fp32 / int8"
        + (" (--quick slice)" if result["quick"] else ""),
        "",
        f"- Command: `{result['command']}`",
        f"- Date: {result['date']} (total {result['total_seconds'] / 60:.1f} min)",
        f"- Machine: {result['machine_line']}; {m['memory_gib']} GiB memory; native bf16: "
        f"{'yes' if m['bf16_native'] else 'no'} (bf16/fp32 matmul {m['bf16_speedup']}x, auto picks "
        f"{m['auto_precision']}); int8 dot products (VNNI): {'yes' if result['vnni'] else 'no'}; {m['platform']}",
        f"- Software: Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}, onnxruntime "
        f"{m['onnxruntime']}, onnx {m['onnx']}, onnxscript {m['onnxscript']}",
        f"- Threads: {result['threads']}; load average at start {m['load_average_at_start']}",
        f"- Student: {MODEL} fine-tuned once on {fit['examples']} gold-labelled Webis posts outside the test split "
        f"({fit['epochs']} epochs, {fit['steps']} steps, {fit['precision']}, {fit['seconds']:.0f} s); scored: "
        f"{result['test_texts']:,} posts of the test split (loop.test_fraction 0.2, seed 0), best of "
        f"{result['repeats']} pass(es), batch 128, max_length 64",
        "",
        f"## Student scoring (aim: >= {AIM_SPEEDUP:g}x the torch fp32 rate, kappa within {AIM_KAPPA} of fp32)",
        "",
    ]
    rows = []
    for r in result["student"]:
        aim = "—" if r["meets_aim"] is None else ("yes" if r["meets_aim"] else "no")
        rows.append([r["backend"], f"{r['texts_per_s']:,.0f}", f"{r['speedup_vs_fp32']:.2f}x",
                     f"{r['kappa_prior']:.4f}", f"{r['kappa_delta_vs_fp32']:+.4f}", f"{r['kappa_argmax']:.4f}",
                     f"{r['auroc']:.4f}", f"{r['max_abs_dp_vs_fp32']:.2g}",
                     f"{100 * r['same_decision_vs_fp32_prior']:.1f} %", f"{r['first_call_seconds']:.1f}",
                     f"{max(r['other_cores']):.2f}", aim])
    lines += _table(["backend", "texts/s", "vs fp32", "kappa (prior)", "delta kappa", "kappa (argmax)", "AUROC",
                     "max abs dp vs fp32", "same decision as fp32", "first call s", "other cores", "meets aim"], rows)
    lines += ["", "kappa (prior): the loop's default rule (the top 25 % of scores positive); delta kappa: against "
              "torch fp32 on the same posts. first call: 64 posts, with the one-off ONNX export (onnx fp32) or "
              "int8 quantization (onnx int8, from the fp32 export). other cores: cores other processes kept busy "
              "during the timed pass (above 0.1: the rates are low)."]
    lines += ["", "## Embedding (all-MiniLM-L6-v2, the same posts)", ""]
    lines += _table(["backend", "texts/s", "vs fp32", "min cosine vs fp32", "mean cosine vs fp32", "first call s",
                     "other cores"],
                    [[r["backend"], f"{r['texts_per_s']:,.0f}", f"{r['speedup_vs_fp32']:.2f}x",
                      f"{r['min_cosine_vs_fp32']:.5f}", f"{r['mean_cosine_vs_fp32']:.5f}",
                      f"{r['first_call_seconds']:.1f}", f"{max(r['other_cores']):.2f}"] for r in result["embedding"]])
    return "\n".join(lines) + "\n"


def run_benchmark(plan: Plan, out: Path, threads: int, argv: Sequence[str]) -> dict[str, Any]:
    """Fine-tune, score with every backend, write ``out/fast_scoring[_quick].{json,md}`` and print the tables."""
    from curate.models.onnx_backend import has_vnni
    from curate.runtime import configure_threads

    configure_threads(threads)
    started = time.perf_counter()
    quick = plan is QUICK
    result: dict[str, Any] = {
        "command": _machine.command_line(__file__, argv),
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": quick,
        "threads": threads,
        "model": MODEL,
        "machine_line": _machine.machine_line(),
        "machine": _machine.machine_info(("transformers", "onnxruntime", "onnx", "onnxscript")),
        "vnni": has_vnni(),
        "repeats": plan.repeats,
    }
    rows = read_webis()
    train, test = split(len(rows), plan)
    texts = [rows[i]["text"] for i in test]
    gold = np.array([rows[i]["label"] == LABELS[POSITIVE] for i in test], dtype=int)
    result.update(test_texts=len(texts), train_labels=len(train), test_positive_share=float(gold.mean()))
    with tempfile.TemporaryDirectory(prefix="curate-fast-scoring-") as tmp:
        os.environ["CURATE_CACHE"] = str(Path(tmp) / "cache")  # the embedding model's export: fresh, then removed
        folder = Path(tmp) / "student"
        result["fit"] = train_student(rows, train, plan, folder, threads)
        result["student"] = measure_student(folder, texts, gold, plan, threads)
        result["embedding"] = measure_embedding(texts, plan, threads)
    result["total_seconds"] = time.perf_counter() - started
    result = _machine.json_clean(result)
    name = "fast_scoring_quick" if quick else "fast_scoring"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(result)
    (out / f"{name}.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    log(f"wrote {out / (name + '.json')} and {out / (name + '.md')}")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the benchmark."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a slice: 200 training labels (400 presentations), 600 test posts, one timed pass")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results",
                        help="folder for fast_scoring[_quick].{json,md} (default: benchmarks/results)")
    parser.add_argument("--threads", type=int, default=2, help="threads for torch and ONNX Runtime (default 2)")
    args = parser.parse_args(argv)
    run_benchmark(QUICK if args.quick else FULL, args.out, args.threads, argv)


if __name__ == "__main__":
    main()
