#!/usr/bin/env python
"""LLM student (SmolLM2-135M-Instruct + LoRA) against the MiniLM student, at the same expert budget.

Design (the simplest honest comparison; every figure from this run, on this machine):

1. Webis Clickbait 2017 (``../shared/data/webis-clickbait-17``; gold = the majority of 5 crowd judgments, see its
   SOURCE.md): a seeded random subsample of ``5 * n_test`` tweets, split once into a pool (80 %) and a test set (20 %).
2. The same ``n_train`` pool items, drawn at random (seeded), with their gold labels as one-hot targets, train both
   students: the bundled all-MiniLM-L6-v2 fully fine-tuned with curate's default student settings, and the bundled
   SmolLM2-135M-Instruct (a causal LM, last-token head) with LoRA (rank 8, alpha 16, all linear layers, lr 5e-4).
   Both truncate to the same ``max_length`` tokens and use batches of 16 and the same threads. A third row, SmolLM2
   fully fine-tuned for ``--full-llm-epochs`` epochs (default 1), is a cost reference for full vs LoRA training.
3. Both score the test set (argmax = threshold 0.5). Reported: Cohen's kappa against gold with a 95 % percentile
   bootstrap interval over test items (``curate.agreement.kappa_with_ci``), F1 / precision / recall of the positive
   class (clickbait), accuracy, ROC AUC; wall time of training (per epoch too) and of scoring, items/s, parameters
   trained, the saved folder's size, and the training loss per epoch.

No hyper-parameter was tuned on the test set; the LoRA settings are common defaults (Hu et al. 2021; peft docs), the
epoch count is set by the CPU budget (see ``--llm-epochs``).

Usage::

    .venv/bin/python benchmarks/llm_vs_minilm.py                  # full run (n_train 300, n_test 1000; about 17 minutes on 2 cores)
    .venv/bin/python benchmarks/llm_vs_minilm.py --quick          # n_train 48, n_test 96, 1 LLM epoch: a smoke run
    .venv/bin/python benchmarks/llm_vs_minilm.py --out DIR --n-train 300 --n-test 1000

Writes ``OUT/results.json`` (every figure, settings, command, date, machine) and ``OUT/results.md`` (the tables,
also printed). Default ``OUT``: ``benchmarks/results/llm_vs_minilm``.

Threads: 1 by default (``--threads``). On a 2-core machine shared with other work, torch with 2 intra-op threads
ran SmolLM2's forward pass 15x slower than with 1 (threads waiting on each other at every small op); 1 thread keeps
the two students' timings comparable under such load. The load other processes put on the machine during each
section is recorded (``other_cores``) so that a reader can judge the timings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import _machine  # benchmarks/_machine.py, beside this script (on sys.path when it runs as a script)
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data"))
WEBIS = SHARED_DATA / "webis-clickbait-17" / "webis-clickbait-17.jsonl"
LABELS = ["no-clickbait", "clickbait"]
POSITIVE = "clickbait"
SEED = 0


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the final table)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the machine and its load ---------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    """CPU, memory, versions and load at start (benchmarks/_machine.py)."""
    return _machine.machine_info(("transformers", "peft"))


@contextlib.contextmanager
def timed(record: dict, key: str):
    """Time a block: ``record[key] = {"wall_seconds", "own_cores", "other_cores"}`` (other processes' busy cores)."""
    with _machine.Load() as load:
        yield
    record[key] = {"wall_seconds": round(load.wall, 2), "own_cores": round(load.own_cores, 2),
                   "other_cores": round(load.other_cores, 2)}


# -- data -----------------------------------------------------------------------------------------------------------
def load_split(n_train: int, n_test: int, seed: int) -> dict[str, Any]:
    """The seeded subsample (``5 * n_test`` tweets), its pool/test split (80/20) and the ``n_train`` training items.

    Raises:
        SystemExit: the data file is missing, or the pool is smaller than ``n_train``.
    """
    if not WEBIS.is_file():
        raise SystemExit(f"{WEBIS}: not found (set CURATE_SHARED_DATA to the folder holding webis-clickbait-17/)")
    rows = [json.loads(line) for line in WEBIS.open(encoding="utf-8")]
    rng = np.random.default_rng(seed)
    n_sub = 5 * n_test
    if n_sub > len(rows):
        raise SystemExit(f"--n-test {n_test}: the subsample of 5 x n_test = {n_sub} exceeds the {len(rows)} tweets")
    sub = rng.choice(len(rows), size=n_sub, replace=False)
    test_idx, pool_idx = sub[:n_test], sub[n_test:]
    if n_train > len(pool_idx):
        raise SystemExit(f"--n-train {n_train} exceeds the pool of {len(pool_idx)} items")
    train_idx = rng.choice(pool_idx, size=n_train, replace=False)
    pick = lambda idx: [rows[i] for i in idx]  # noqa: E731
    train, test = pick(train_idx), pick(test_idx)
    return {
        "subsample": n_sub, "pool": len(pool_idx), "train_rows": train, "test_rows": test,
        "train_positive_share": float(np.mean([r["label"] == POSITIVE for r in train])),
        "test_positive_share": float(np.mean([r["label"] == POSITIVE for r in test])),
        "train_ids": [r["id"] for r in train],
    }


# -- one student ----------------------------------------------------------------------------------------------------
def metrics(gold: list[str], proba: np.ndarray, seed: int, n_boot: int) -> dict[str, Any]:
    """Kappa with a bootstrap CI, F1 / precision / recall of the positive class, accuracy, ROC AUC."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    from curate.agreement import kappa_with_ci

    pred = np.asarray(LABELS)[proba.argmax(axis=1)]
    gold_arr = np.asarray(gold)
    k = kappa_with_ci(pred, gold_arr, rng=np.random.default_rng(seed), n_boot=n_boot)
    y = (gold_arr == POSITIVE).astype(int)
    yp = (pred == POSITIVE).astype(int)
    return {
        "kappa": k.kappa, "kappa_low": k.low, "kappa_high": k.high, "n_test": k.n,
        "f1": float(f1_score(y, yp, zero_division=0)),
        "precision": float(precision_score(y, yp, zero_division=0)),
        "recall": float(recall_score(y, yp, zero_division=0)),
        "accuracy": float(accuracy_score(y, yp)),
        "roc_auc": float(roc_auc_score(y, proba[:, LABELS.index(POSITIVE)])) if 0 < y.sum() < len(y) else math.nan,
        "predicted_positive_share": float(yp.mean()),
    }


def run_student(name: str, settings, split: dict, args, workdir: Path) -> dict[str, Any]:
    """Fine-tune one student on the training items, score the test set, save it; every figure of that."""
    from curate.models.encoder import EncoderClassifier

    train, test = split["train_rows"], split["test_rows"]
    texts = [r["text"] for r in train]
    targets = np.array([[r["label"] == lab for lab in LABELS] for r in train], dtype=np.float32)
    times: dict[str, Any] = {}
    log(f"{name}: fine-tuning on {len(texts)} items ...")
    clf = EncoderClassifier(LABELS, settings)
    with timed(times, "train"):
        info = clf.fit(texts, targets, seed=args.seed, progress=not args.no_progress)
    log(f"{name}: trained in {times['train']['wall_seconds']:.0f} s; losses {np.round(info['epoch_losses'], 3).tolist()}")
    test_texts = [r["text"] for r in test]
    clf.predict_proba(test_texts[:16], progress=False)  # warm-up (first-call allocations), not timed
    with timed(times, "score"):
        proba = clf.predict_proba(test_texts, progress=not args.no_progress, batch_size=args.score_batch)
    log(f"{name}: scored {len(test_texts)} items in {times['score']['wall_seconds']:.0f} s")
    folder = workdir / name
    with timed(times, "save"):
        clf.save(folder)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    train_s, score_s = times["train"]["wall_seconds"], times["score"]["wall_seconds"]
    presentations = info["epochs"] * info["examples"]
    return {
        "model": settings.model,
        "finetune": info["finetune"],
        "metrics": metrics([r["label"] for r in test], proba, args.seed, args.bootstrap),
        "train": {
            "epochs": info["epochs"], "steps": info["steps"], "examples": info["examples"],
            "presentations": presentations,
            "epoch_losses": [round(x, 4) for x in info["epoch_losses"]],
            "epoch_seconds": [round(x, 2) for x in info["epoch_seconds"]],
            "seconds_per_epoch_mean": round(float(np.mean(info["epoch_seconds"])), 2),
            "presentations_per_second": round(presentations / train_s, 2),
            "trainable_parameters": info["trainable_parameters"],
            "total_parameters": info["total_parameters"],
            "precision": info["precision"],
        },
        "score": {"items": len(test_texts), "items_per_second": round(len(test_texts) / score_s, 2)},
        "saved_megabytes": round(size / 2**20, 2),
        "times": times,
        "settings": settings.model_dump(),
    }


# -- report ---------------------------------------------------------------------------------------------------------
def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown(result: dict) -> str:
    m, s = result["machine"], result["split"]
    lines = [
        "# LLM student (SmolLM2-135M-Instruct + LoRA) vs MiniLM student, same expert budget",
        "",
        f"- Command: `{result['command']}`",
        f"- Date: {result['date']} (total {result['total_seconds'] / 60:.1f} min)",
        f"- Machine: {m['cpu_model']}, {m['cores_usable']} cores usable ({m['cores_logical']} logical), "
        f"{m['memory_gib']} GiB memory, native bf16: {'yes' if m['bf16_native'] else 'no'} "
        f"(bf16/fp32 matmul {m['bf16_speedup']}x, auto picks {m['auto_precision']}), CUDA: "
        f"{'yes' if m['cuda'] else 'no'}; {m['platform']}",
        f"- Software: Python {m['python']}, torch {m['torch']}, transformers {m['transformers']}, peft {m['peft']}",
        f"- Threads: {result['threads']} (torch intra-op) for both students; load average at start "
        f"{m['load_average_at_start']}, at end {result['load_average_at_end']}",
        f"- Data: Webis Clickbait 2017, seeded subsample of {s['subsample']:,} tweets (seed {result['seed']}): "
        f"test {s['n_test']} (gold positive share {s['test_positive_share']:.1%}), pool {s['pool']:,}; the same "
        f"{s['n_train']} random pool items with gold labels train both students (positive share "
        f"{s['train_positive_share']:.1%}).",
        "",
        "## Test agreement with gold",
        "",
        "| student | fine-tune | kappa [95 % CI] | F1 (clickbait) | precision | recall | accuracy | ROC AUC | predicted positive |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["students"].items():
        x = r["metrics"]
        lines.append(
            f"| {name} | {r['finetune']} | **{_fmt(x['kappa'])}** [{_fmt(x['kappa_low'])}, {_fmt(x['kappa_high'])}] "
            f"| {_fmt(x['f1'])} | {_fmt(x['precision'])} | {_fmt(x['recall'])} | {_fmt(x['accuracy'])} "
            f"| {_fmt(x['roc_auc'])} | {x['predicted_positive_share']:.1%} |")
    lines += [
        "",
        "## Cost",
        "",
        "| student | trained / total parameters | epochs x items | training wall s | s / epoch | presentations/s "
        "| scoring wall s | scored items/s | saved MB | other processes' cores (train, score) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["students"].items():
        t, times = r["train"], r["times"]
        lines.append(
            f"| {name} | {t['trainable_parameters']:,} / {t['total_parameters']:,} | {t['epochs']} x {t['examples']} "
            f"| {times['train']['wall_seconds']:.1f} | {t['seconds_per_epoch_mean']:.1f} | {t['presentations_per_second']:.1f} "
            f"| {times['score']['wall_seconds']:.1f} | {r['score']['items_per_second']:.1f} | {r['saved_megabytes']:.1f} "
            f"| {times['train']['other_cores']:.2f}, {times['score']['other_cores']:.2f} |")
    lines += ["", "## Training loss per epoch (mean cross-entropy, nats)", ""]
    for name, r in result["students"].items():
        lines.append(f"- {name}: {', '.join(f'{x:.3f}' for x in r['train']['epoch_losses'])}")
    lines += ["", "## Settings", ""]
    for name, r in result["students"].items():
        st = r["settings"]
        keys = ["model", "finetune", "learning_rate", "max_length", "batch_size", "presentations", "min_epochs",
                "max_epochs", "precision", "weight_decay", "warmup_ratio"]
        if st["finetune"] == "lora":
            keys += ["lora_rank", "lora_alpha", "lora_dropout", "lora_target_modules"]
        lines.append(f"- {name}: " + ", ".join(f"{k}={st[k]}" for k in keys))
    lines += ["", "## Reading the figures", "", *result["notes"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "llm_vs_minilm")
    parser.add_argument("--n-train", type=int, default=None, help="training items (default 300; --quick 48)")
    parser.add_argument("--n-test", type=int, default=None, help="test items, 20 %% of the subsample (default 1000; --quick 96)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sets, 1 LLM epoch")
    parser.add_argument("--llm-epochs", type=int, default=None, help="LoRA epochs (default 4; --quick 1)")
    parser.add_argument("--llm-lr", type=float, default=5e-4)
    parser.add_argument("--full-llm-epochs", type=int, default=None,
                        help="also fully fine-tune SmolLM2 for this many epochs, a cost reference (default 1; "
                             "--quick 0 = skip)")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per tweet, both students")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--score-batch", type=int, default=64)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.n_train = args.n_train or (48 if args.quick else 300)
    args.n_test = args.n_test or (96 if args.quick else 1000)
    args.llm_epochs = args.llm_epochs or (1 if args.quick else 4)
    if args.full_llm_epochs is None:
        args.full_llm_epochs = 0 if args.quick else 1

    sys.path.insert(0, str(REPO / "src"))
    from curate.config import BUNDLED_LLM, BUNDLED_MODEL, StudentConfig
    from curate.runtime import configure_threads

    t0 = time.perf_counter()
    configure_threads(args.threads)
    machine = machine_info()
    split = load_split(args.n_train, args.n_test, args.seed)
    log(f"subsample {split['subsample']}, pool {split['pool']}, test {args.n_test}, train {args.n_train}")
    common = dict(max_length=args.max_length, batch_size=16, threads=args.threads)
    minilm = StudentConfig(model=BUNDLED_MODEL, **common)  # curate's default student recipe (4000 presentations)
    if args.quick:
        minilm = StudentConfig(model=BUNDLED_MODEL, presentations=4 * args.n_train, **common)
    llm = StudentConfig(model=BUNDLED_LLM, finetune="lora", learning_rate=args.llm_lr, presentations=1,
                        min_epochs=args.llm_epochs, max_epochs=args.llm_epochs, **common)
    students: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="llm_vs_minilm_") as tmp:
        students["MiniLM-L6 (full)"] = run_student("minilm", minilm, split, args, Path(tmp))
        students["SmolLM2-135M (LoRA)"] = run_student("smollm2-lora", llm, split, args, Path(tmp))
        if args.full_llm_epochs:
            full = StudentConfig(model=BUNDLED_LLM, finetune="full", presentations=1, min_epochs=args.full_llm_epochs,
                                 max_epochs=args.full_llm_epochs, **common)  # curate's default lr 5e-5
            students[f"SmolLM2-135M (full, {args.full_llm_epochs} ep.)"] = run_student(
                "smollm2-full", full, split, args, Path(tmp))
    a, b = students["MiniLM-L6 (full)"], students["SmolLM2-135M (LoRA)"]
    notes = [
        f"- Same {args.n_train} gold-labelled items, same test set of {args.n_test}; kappa intervals are percentile "
        f"bootstraps over test items ({args.bootstrap} resamples), so they share the test-set noise: overlapping "
        "intervals do not mean the students are equal, and a difference needs a paired test to be claimed.",
        f"- Training cost: the LLM ran {b['train']['epochs']} epoch(s) and MiniLM {a['train']['epochs']} "
        f"(curate's default of >= {minilm.presentations} presentations); per presentation the LLM took "
        f"{(1 / b['train']['presentations_per_second']) / (1 / a['train']['presentations_per_second']):.1f}x MiniLM's "
        f"time, per scored item {a['score']['items_per_second'] / b['score']['items_per_second']:.1f}x.",
        *([f"- SmolLM2-135M (full) is a cost reference: every weight trained, {args.full_llm_epochs} epoch(s) "
           f"only (the CPU budget), learning rate 5e-5; per epoch it took "
           f"{students[f'SmolLM2-135M (full, {args.full_llm_epochs} ep.)']['train']['seconds_per_epoch_mean'] / b['train']['seconds_per_epoch_mean']:.2f}x "
           "the LoRA epoch's time. Its kappa is not comparable at equal training."] if args.full_llm_epochs else []),
        "- Timings are wall clock on a shared machine; `other processes' cores` says how busy the rest of the "
        "machine was meanwhile (2 usable cores: 1.0 means one core's worth of other work).",
        "- Nothing was tuned on the test set; the LLM's learning rate and epochs are common LoRA defaults within the "
        "CPU budget, so the LLM figure is a lower bound of what a tuned LoRA run might reach.",
    ]
    result = {
        "command": " ".join(shlex.quote(x) for x in [".venv/bin/python", "benchmarks/llm_vs_minilm.py", *(argv or sys.argv[1:])]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "threads": args.threads,
        "seed": args.seed,
        "quick": args.quick,
        "split": {k: v for k, v in split.items() if k not in ("train_rows", "test_rows")} | {
            "n_train": args.n_train, "n_test": args.n_test, "data": str(WEBIS)},
        "students": students,
        "notes": notes,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=1, default=float) + "\n", encoding="utf-8")
    md = markdown(result)
    (args.out / "results.md").write_text(md, encoding="utf-8")
    print(md)
    log(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
