#!/usr/bin/env python
"""The LLM path against the default one, on a fixed Webis Clickbait 2017 subsample (issue 5's benchmark).

Two projects are made from the same seeded subsample with the quickstart's policy, seed examples and settings and
run for the same rounds and expert budget with the simulated experts:

- ``minilm``: the embedding scout (round 0) and the all-MiniLM-L6-v2 student (full fine-tune);
- ``llm``: ``curate init --llm``: SmolLM2-135M-Instruct prompted with ``--demonstrations`` seed examples per label
  and contextual calibration (round 0), and SmolLM2 with a last-token head trained with LoRA as the student.

Reported: kappa against gold on the project's 20 % test split per round (both projects split the same way: the
split depends on the seed and the ids only), the prompted LLM's zero-shot kappa raw and calibrated (the raw
probabilities are recovered exactly from the stored calibrated ones and the recorded offsets), and the wall time of
every step. Everything runs through the ``curate`` command line; the subsample and projects live in a temporary
folder (or ``--keep DIR``).

    .venv/bin/python benchmarks/llm_loop.py                # 5,000 tweets (the issue's fixed subsample), 3 rounds of 100
    .venv/bin/python benchmarks/llm_loop.py --quick        # 200 tweets, 1 round of 20, 16 presentations
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _machine  # benchmarks/_machine.py, beside this script
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data")) / "webis-clickbait-17" / (
    "webis-clickbait-17.jsonl")
EXAMPLES = REPO / "examples" / "webis"
CURATE = [str(Path(sys.executable).with_name("curate"))]


def _sh(args: list[str], log: list[str]) -> float:
    log.append(" ".join(args))
    t0 = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return time.perf_counter() - t0


def _subsample(n: int, seed: int, out: Path) -> int:
    rows = [json.loads(line) for line in DATA.open(encoding="utf-8")]
    keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False))
    with out.open("w", encoding="utf-8") as fh:
        for i in keep:
            fh.write(json.dumps(rows[i]) + "\n")
    return len(keep)


def _project_results(project: Path) -> dict:
    """Per-round test kappa and per-step seconds from a finished project (its metrics.json and database)."""
    from curate.project import Project

    proj = Project.open(project)
    rounds = []
    for d in sorted((project / "rounds").glob("r*"), key=lambda p: int(p.name[1:])):
        f = d / "metrics.json"
        if f.is_file():
            m = json.loads(f.read_text())
            rounds.append({"round": m["round"], "items_labelled": m["items_labelled"],
                           "kappa_test": m.get("kappa_test"), "auroc_test": m.get("auroc_test"),
                           "predicted_positive_share": m["predicted_positive_share"]})
    steps = [{"round": r["round"], "step": r["step"], "seconds": round(r["seconds"], 2), "info": r["info"]}
             for r in proj.store.step_records()]
    return {"rounds": rounds, "steps": steps}


def _raw_scout_kappa(project: Path) -> dict | None:
    """Zero-shot kappa of the prompted LLM without calibration, from the stored calibrated round-0 scores.

    Stored: ``p = softmax(raw - offsets + log_prior)``; so ``softmax(log p + offsets - log_prior)`` is the raw
    (uncalibrated) distribution exactly (softmax ignores a per-row constant)."""
    import pyarrow.parquet as pq

    from curate.agreement import kappa_with_ci
    from curate.loop import Loop
    from curate.project import Project

    proj = Project.open(project)
    info = next(r["info"] for r in proj.store.step_records() if r["round"] == 0 and r["step"] == "score")
    if "calibration_offsets" not in info:
        return None
    labels = proj.config.task.labels
    table = pq.read_table(project / "rounds" / "r000" / "scores.parquet")
    p = np.stack([table.column(f"p_{lab}").to_numpy() for lab in labels], axis=1).astype(np.float64)
    off = np.array([info["calibration_offsets"][lab] for lab in labels])
    prior = proj.config.scout.prior
    log_prior = np.log(np.where(np.array(labels) == proj.config.task.positive, prior, (1 - prior) / (len(labels) - 1)))
    z = np.log(np.clip(p, 1e-30, None)) + off - log_prior
    raw = np.exp(z - z.max(axis=1, keepdims=True))
    raw /= raw.sum(axis=1, keepdims=True)
    loop = Loop(proj, progress=False, log=lambda s: None)
    pred = dict(zip(proj.ids, loop.predicted_labels(raw.astype(np.float32))))
    test = sorted(i for i, s in proj.store.splits().items() if s == "test")
    k = kappa_with_ci([pred[i] for i in test], [loop.gold[i] for i in test], rng=np.random.default_rng(0), n_boot=1000)
    return {"kappa_test": k.to_dict(), "predicted_positive_share": float(np.mean(raw[:, labels.index(proj.config.task.positive)] >= 0.5))}


def _md(res: dict) -> str:
    s = res["settings"]
    out = [
        "# The LLM path against the default (Webis Clickbait 2017 subsample)", "",
        f"- Command: `{res['command']}`",
        f"- Date: {res['date']}; total {res['elapsed_s'] / 60:.1f} min",
        f"- Machine: {res['machine']['cpu_model']}, {res['machine']['cores_usable']} cores usable, CUDA: "
        f"{res['machine']['cuda']}; load average at start {res['machine']['load_average_at_start']}",
        f"- Subsample: {s['items']} of the 19,459 tweets (seed {s['sample_seed']}); 20 % test split against gold; "
        f"{s['rounds']} rounds of {s['budget']} items, two simulated experts per item (kappa 0.8), loop seed 0; "
        f"{s['presentations']} example presentations per fine-tune; the quickstart's policy, seed examples and "
        "prior 0.25.",
        f"- minilm: embedding scout + all-MiniLM-L6-v2 full fine-tune (lr 5e-5). llm: `curate init --llm "
        f"--demonstrations {s['demonstrations']}`: SmolLM2-135M-Instruct prompted (chat template, k = "
        f"{s['demonstrations']} seed examples per label, contextual calibration) + SmolLM2 LoRA student "
        f"(rank 8, alpha 16, all linear projections, lr 5e-4, set by `--llm`).", "",
        "## Kappa against gold on the test split", "",
        "| project | " + " | ".join(f"round {r['round']} ({r['items_labelled']} labelled)"
                                    for r in res["projects"]["minilm"]["rounds"]) + " |",
        "|---|" + "---|" * len(res["projects"]["minilm"]["rounds"]),
    ]
    for name, pr in res["projects"].items():
        cells = []
        for r in pr["rounds"]:
            k = r["kappa_test"]
            cells.append(f"{k['kappa']:.3f} [{k['low']:.3f}, {k['high']:.3f}]" if k else "n/a")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    raw = res.get("llm_scout_raw")
    cal = res["projects"]["llm"]["rounds"][0]
    emb = res["projects"]["minilm"]["rounds"][0]
    out += ["", "## Round 0: zero-shot scouts", "",
            "| scout | test kappa | predicted positive share |", "|---|---|---|",
            f"| embedding scout (prompt + seed examples, prior 0.25) | {emb['kappa_test']['kappa']:.3f} | "
            f"{emb['predicted_positive_share']:.2f} |"]
    if raw:
        out.append(f"| prompted SmolLM2, raw | {raw['kappa_test']['kappa']:.3f} | {raw['predicted_positive_share']:.2f} |")
    out.append(f"| prompted SmolLM2, calibrated (+ prior 0.25) | {cal['kappa_test']['kappa']:.3f} | "
               f"{cal['predicted_positive_share']:.2f} |")
    out += ["", "## Wall time per step (seconds)", "", "| step | minilm | llm |", "|---|---|---|"]
    keys = []
    for pr in res["projects"].values():
        for st in pr["steps"]:
            if (st["round"], st["step"]) not in keys:
                keys.append((st["round"], st["step"]))
    for rnd, step in keys:
        vals = []
        for pr in res["projects"].values():
            v = [st["seconds"] for st in pr["steps"] if (st["round"], st["step"]) == (rnd, step)]
            vals.append(f"{v[0]:.1f}" if v else "")
        out.append(f"| {'setup' if rnd < 0 else f'round {rnd}'}: {step} | " + " | ".join(vals) + " |")
    out.append(f"| whole `curate run` | {res['projects']['minilm']['run_s']:.0f} | {res['projects']['llm']['run_s']:.0f} |")
    out += ["", "## Findings", ""] + [f"- {f}" for f in res["findings"]]
    return "\n".join(out) + "\n"


def _findings(res: dict) -> list[str]:
    m, l = res["projects"]["minilm"]["rounds"], res["projects"]["llm"]["rounds"]
    f = []
    last_m, last_l = m[-1]["kappa_test"]["kappa"], l[-1]["kappa_test"]["kappa"]
    f.append(f"After {m[-1]['items_labelled']} expert-labelled items the LLM student reaches kappa {last_l:.3f} "
             f"against MiniLM's {last_m:.3f} on the same test split.")
    f.append(f"Round 0: the prompted SmolLM2 scout {l[0]['kappa_test']['kappa']:.3f} (calibrated) against the "
             f"embedding scout's {m[0]['kappa_test']['kappa']:.3f}"
             + (f"; raw {res['llm_scout_raw']['kappa_test']['kappa']:.3f}." if res.get("llm_scout_raw") else "."))
    tm = res["projects"]["minilm"]["run_s"]
    tl = res["projects"]["llm"]["run_s"]
    f.append(f"Wall time of the run: {tl:.0f} s with the LLM against {tm:.0f} s with MiniLM ({tl / tm:.1f}x).")
    return f


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--presentations", type=int, default=1000)
    ap.add_argument("--demonstrations", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "llm")
    ap.add_argument("--keep", type=Path, default=None, help="keep the projects in this folder")
    ap.add_argument("--quick", action="store_true", help="200 tweets, 1 round of 20, 16 presentations")
    args = ap.parse_args(argv)
    if args.quick:
        args.items, args.rounds, args.budget, args.presentations = 200, 1, 20, 16
    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="curate-llm-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    pool = work / "pool.jsonl"
    n = _subsample(args.items, 0, pool)
    log: list[str] = []
    res: dict = {
        "command": "python benchmarks/llm_loop.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine.machine_info(("transformers", "peft")),
        "settings": {"items": n, "sample_seed": 0, "rounds": args.rounds, "budget": args.budget,
                     "presentations": args.presentations, "demonstrations": args.demonstrations},
        "projects": {},
    }
    common = ["--pool", str(pool), "--labels", "no-clickbait,clickbait", "--positive", "clickbait",
              "--prompt-file", str(EXAMPLES / "policy.txt"), "--seed-examples", str(EXAMPLES / "seed_examples.json"),
              "--negative-description", "A plain news headline that states what happened.", "--prior", "0.25",
              "--gold-field", "label", "--crowd-field", "judgments", "--weak-labels", "none"]
    for name, extra in (("minilm", []), ("llm", ["--llm", "--demonstrations", str(args.demonstrations)])):
        project = work / name
        shutil.rmtree(project, ignore_errors=True)
        _sh(CURATE + ["init", str(project), *common, *extra], log)
        run_s = _sh(CURATE + ["run", str(project), "--rounds", str(args.rounds), "--budget", str(args.budget),
                              "--seed", "0",
                              "--presentations", str(args.presentations), "--quiet"], log)
        res["projects"][name] = {**_project_results(project), "run_s": round(run_s, 1)}
        print(f"{name}: {run_s:.0f} s", flush=True)
    res["llm_scout_raw"] = _raw_scout_kappa(work / "llm")
    res["commands"] = log
    res["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    res["findings"] = _findings(res)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(res, indent=2, default=str))
    (args.out / "results.md").write_text(_md(res))
    print(_md(res))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
