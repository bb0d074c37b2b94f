"""Label efficiency on Webis Clickbait 2017: test kappa against the number of expert labels, per query strategy.

The cheap proxy of METHOD.md section 4, extended: a *linear student* (logistic regression on frozen
all-MiniLM-L6-v2 embeddings), not the fine-tuned transformer of the real loop, so numbers compare strategies with
each other and with the proxy table, not with the Google Research 2025 figures (METHOD.md section 1).

Per positive class x strategy x seed: the round-0 embedding scout scores the pool, the strategy picks
``round_size`` unlabelled pool items, two simulated experts label them, the student is refitted on every labelled
item, it scores the pool for the next round and is evaluated on one fixed held-out test split against gold.
Baselines: the scout alone, the crowd baseline (one crowd judgment per pool item), the gold ceiling (all pool gold
labels) and sequential training (Mallen & Belrose 2024, METHOD.md section 2) adapted to the linear student.

Run: ``python -m curate.experiments.label_efficiency --out benchmarks/results/label_efficiency [--quick]``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score

from curate.agreement import cohen_kappa
from curate.config import BUNDLED_MODEL, SelectionConfig
from curate.embed import cached_embeddings, embed_texts
from curate.errors import CurateError
from curate.models.scout import EmbeddingScout, build_label_vectors
from curate.oracle.simulated import SimulatedExperts, crowd_labels
from curate.progress import progress_callback
from curate.select import make_strategy
from curate.select.coreset import CoreSetGreedy

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data")) / (
    "webis-clickbait-17/webis-clickbait-17.jsonl"
)
EXAMPLES = REPO / "examples" / "webis"
NEGATIVE_DESCRIPTION = "A plain news headline that states what happened."  # as in examples/webis/quickstart.sh
TEST_SEED = 0
QUICK_ITEMS = 3000
SEQUENTIAL_STRATEGIES = ("boundary-pairs", "random")
LR_PARAMS = {"class_weight": "balanced", "C": 1.0, "max_iter": 1000}

# Positive class -> (definition, label names (negative, positive), crowd threshold on the one drawn judgment).
POSITIVES: dict[str, tuple[str, tuple[str, str], float]] = {
    "majority": ('label == "clickbait" (Webis majority label)', ("no-clickbait", "clickbait"), 0.5),
    "rare": ("truth_mean >= 0.7 (strong clickbait)", ("not-strong-clickbait", "strong-clickbait"), 0.7),
}

NOTES = [
    "Student: the cheap proxy of METHOD.md section 4 - logistic regression (scikit-learn, class_weight='balanced', "
    "C=1.0, max_iter=1000) on frozen all-MiniLM-L6-v2 embeddings (float16 cache, float32 compute), threshold 0.5. "
    "Not the project's fine-tuned transformer student.",
    "Test split: ONE fixed random 20 % of the items (numpy default_rng(0) permutation) for every cell, both positive "
    "classes, all seeds; the rest is the pool. Nothing is tuned on it; selection uses the SelectionConfig defaults.",
    "Training targets: the majority of 2 simulated experts (SimulatedExperts, target pairwise kappa = expert_kappa, "
    "seed = the run's seed); a tie goes to expert-1's label, so with 2 experts the target is expert-1's label and "
    "expert-2 only measures the expert-expert ceiling.",
    "Crowd label: one judgment per item drawn by curate.oracle.simulated.crowd_labels (seed = the run's seed); "
    "positive when the drawn judgment >= 0.5 for 'majority' and >= 0.7 for 'rare' (on Webis' {0, 1/3, 2/3, 1} scale: "
    "the drawn annotator chose 'very clickbaiting').",
    "Round 0: the embedding scout from examples/webis/policy.txt + seed_examples.json (negative description as in "
    "quickstart.sh), prior = the pool's gold positive share rounded to 0.05. Limitation: 'rare' reuses the same "
    "clickbait prompt and seed examples (no strong-clickbait prompt was written).",
    "If the labelled items hold only one class, the previous model (possibly the scout) is kept for that round.",
    "Sequential training (Mallen & Belrose 2024) adapted to the linear student: fit on all crowd labels, then refit "
    "warm-started on crowd + curated labels with each curated item weighted N_crowd / N_curated. The loss is convex, "
    "so the second stage equals the weighted joint fit (the warm start only saves iterations).",
    "Aggregates: mean over seeds with a 95 % Student-t interval over seeds (mean +- t_{0.975, n-1} * sd / sqrt(n)); "
    "no interval for one seed. 'beats' in the findings: the paired t-interval of the per-seed difference excludes 0.",
]


# ----------------------------------------------------------------------------------------------------- helpers
def _load(data: Path, limit: int | None) -> dict[str, Any]:
    """Webis JSONL -> ids, texts, judgments (lists), truth_mean ``(N,)`` and the majority label ``(N,)`` bool."""
    rows = []
    with Path(data).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
                if limit is not None and len(rows) >= limit:
                    break
    return {
        "ids": [str(r["id"]) for r in rows],
        "texts": [r["text"] for r in rows],
        "judgments": [r.get("judgments") or [] for r in rows],
        "truth_mean": np.array([r["truth_mean"] for r in rows], dtype=np.float64),
        "majority": np.array([r["label"] == "clickbait" for r in rows]),
    }


def _fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None,
         init: LogisticRegression | None = None) -> LogisticRegression | None:
    """Fit the student on ``x (n, d)``, ``y (n,)`` bool; None when ``y`` holds one class. ``init``: warm start."""
    if y.size == 0 or y.all() or not y.any():
        return None
    model = copy.deepcopy(init) if init is not None else LogisticRegression(**LR_PARAMS)
    model.set_params(warm_start=init is not None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y, sample_weight=weight)


def _metrics(gold: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Cohen's kappa and F1 of ``p >= 0.5`` and AUROC of ``p`` against ``gold (n,)`` bool."""
    pred = p >= 0.5
    auroc = float(roc_auc_score(gold, p)) if 0 < gold.sum() < gold.size else math.nan
    return {"kappa": cohen_kappa(gold, pred), "f1": float(f1_score(gold, pred, zero_division=0)), "auroc": auroc}


def _interval(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean and 95 % Student-t interval over seeds (``low``/``high`` None for fewer than 2 finite values)."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = float(v.mean())
    if v.size < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1}
    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(v.size)}


def _aggregate(per_seed: list[dict[str, float]]) -> dict[str, dict]:
    """Per metric, :func:`_interval` over the seeds' dicts."""
    return {k: _interval([d.get(k) for d in per_seed]) for k in per_seed[0]} if per_seed else {}


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python, int dict keys -> str."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _scout(labels: tuple[str, str], pool_emb: np.ndarray, prior: float) -> EmbeddingScout:
    """The round-0 embedding scout (examples/webis prompt and seed examples) calibrated on the pool."""
    prompt = (EXAMPLES / "policy.txt").read_text(encoding="utf-8").strip()
    seeds = json.loads((EXAMPLES / "seed_examples.json").read_text(encoding="utf-8"))
    seed_examples = {labels[1]: seeds.get("clickbait", []), labels[0]: seeds.get("no-clickbait", [])}

    def embed(texts: Sequence[str]) -> np.ndarray:
        return embed_texts(texts, model=BUNDLED_MODEL, progress=False)

    vectors = build_label_vectors(list(labels), labels[1], prompt, negative_description=NEGATIVE_DESCRIPTION,
                                  seed_examples=seed_examples, embed=embed)
    return EmbeddingScout(list(labels), labels[1], vectors, embed=embed, prior=prior).calibrate(pool_emb)


def _strategy(name: str):
    """``coreset`` built here (not registered in ``curate.select``); the others via ``make_strategy``."""
    if name == CoreSetGreedy.name:
        return CoreSetGreedy()
    try:
        return make_strategy(name, **SelectionConfig().model_dump(exclude={"strategy", "embedding_model"}))
    except ValueError as exc:
        raise ValueError(f"{exc}, {CoreSetGreedy.name}") from None


# ------------------------------------------------------------------------------------------------- the runs
def _run_curve(name: str, rng: np.random.Generator, *, pool_emb: np.ndarray, test_emb: np.ndarray,
               gold_test: np.ndarray, gold_pool: np.ndarray, target: np.ndarray, second: np.ndarray,
               crowd: np.ndarray, scout_pool: np.ndarray, scout_test: np.ndarray, rounds: int, round_size: int,
               budgets: Sequence[int], crowd_model: LogisticRegression | None, crowd_mask: np.ndarray,
               advance) -> tuple[list[dict], dict[int, dict]]:
    """One strategy x seed learning curve.

    Args:
        pool_emb: ``(P, d)`` float32; ``target``/``second``/``crowd``/``gold_pool``: ``(P,)`` bool (expert-majority
            target, expert-2's label, crowd label, gold); ``crowd_mask``: ``(P,)`` items with a crowd label.

    Returns:
        Per-round metric dicts, and per budget the sequential-training metrics (empty unless the strategy is in
        :data:`SEQUENTIAL_STRATEGIES`).
    """
    strategy = _strategy(name)
    labelled = np.zeros(len(pool_emb), dtype=bool)
    order: list[int] = []
    model, scores = None, scout_pool
    curve, sequential = [], {}
    for r in range(rounds):
        t0 = time.perf_counter()
        sel = strategy.query(scores=scores.astype(np.float32), embeddings=pool_emb, labelled=labelled,
                             budget=round_size, rng=rng)
        select_s = time.perf_counter() - t0
        labelled[sel.indices] = True
        order.extend(sel.indices.tolist())
        cur = np.array(order)
        fitted = _fit(pool_emb[cur], target[cur])
        model = fitted if fitted is not None else model  # one class only: keep the previous model
        scores = model.predict_proba(pool_emb)[:, 1] if model is not None else scout_pool
        p_test = model.predict_proba(test_emb)[:, 1] if model is not None else scout_test
        row = {"round": r + 1, "n_labelled": int(cur.size), **_metrics(gold_test, p_test),
               "positive_share": float(target[cur].mean()), "gold_positive_share": float(gold_pool[cur].mean()),
               "crowd_expert_kappa": cohen_kappa(crowd[cur][crowd_mask[cur]], target[cur][crowd_mask[cur]]),
               "expert_expert_kappa": cohen_kappa(target[cur], second[cur]),
               "model": "student" if model is not None else "scout", "select_s": round(select_s, 3),
               "select_info": sel.info}
        curve.append(row)
        if cur.size in budgets and name in SEQUENTIAL_STRATEGIES and crowd_model is not None:
            xc = pool_emb[crowd_mask]
            x = np.concatenate([xc, pool_emb[cur]])
            y = np.concatenate([crowd[crowd_mask], target[cur]])
            w = np.concatenate([np.ones(len(xc)), np.full(cur.size, len(xc) / cur.size)])
            seq = _fit(x, y, w, init=crowd_model)
            seq = seq if seq is not None else crowd_model
            sequential[int(cur.size)] = _metrics(gold_test, seq.predict_proba(test_emb)[:, 1])
        advance(1)
    return curve, sequential


def _run_class(pos: str, d: dict[str, Any], emb: np.ndarray, pool: np.ndarray, test: np.ndarray, *, seeds: int,
               budgets: Sequence[int], round_size: int, strategies: Sequence[str], expert_kappa: float,
               advance) -> dict[str, Any]:
    """Every baseline and strategy curve for one positive class (see the module docstring)."""
    definition, labels, threshold = POSITIVES[pos]
    gold = d["majority"] if pos == "majority" else d["truth_mean"] >= 0.7
    pool_emb, test_emb = emb[pool], emb[test]
    gold_pool, gold_test = gold[pool], gold[test]
    pool_ids = [d["ids"][i] for i in pool]
    prior = max(0.05, round(float(gold_pool.mean()) / 0.05) * 0.05)
    scout = _scout(labels, pool_emb, prior)
    scout_pool, scout_test = (scout.proba_from_embeddings(e)[:, 1] for e in (pool_emb, test_emb))
    # Judgments as 0/1 against this class's threshold: crowd_labels draws the same judgment (its draw depends on
    # the seed, the id and the number of judgments only) and calls it positive when it is 1.
    binary = [[1.0 if v is not None and v >= threshold else 0.0 for v in d["judgments"][i]] for i in pool]
    gold_model = _fit(pool_emb, gold_pool)
    out: dict[str, Any] = {
        "definition": definition, "labels": list(labels), "crowd_threshold": threshold,
        "gold_share_pool": float(gold_pool.mean()), "gold_share_test": float(gold_test.mean()),
        "scout_prior": prior,
        "baselines": {"scout": _metrics(gold_test, scout_test),
                      "gold_ceiling": {**_metrics(gold_test, gold_model.predict_proba(test_emb)[:, 1]),
                                       "n_labels": int(pool.size)}},
    }
    crowd_runs, per_seed = [], {}
    for seed in range(seeds):
        got = crowd_labels(binary, pool_ids, list(labels), labels[1], seed=seed)
        mask = np.array([i in got for i in pool_ids])
        crowd = np.array([got.get(i) == labels[1] for i in pool_ids])
        experts = SimulatedExperts({i: labels[int(g)] for i, g in zip(pool_ids, gold_pool)}, list(labels),
                                   n_experts=2, target_kappa=expert_kappa, seed=seed)
        votes = np.array([[experts.answer(i, a) == labels[1] for i in pool_ids] for a in experts.annotators])
        share = votes.mean(axis=0)
        target = np.where(share == 0.5, votes[0], share > 0.5)  # majority; a tie -> expert-1's label
        crowd_model = _fit(pool_emb[mask], crowd[mask])
        crowd_runs.append({**_metrics(gold_test, crowd_model.predict_proba(test_emb)[:, 1]),
                           "n_labels": int(mask.sum()),
                           "crowd_gold_kappa_pool": cohen_kappa(crowd[mask], gold_pool[mask]),
                           "expert_gold_kappa_pool": cohen_kappa(target, gold_pool),
                           "expert_expert_kappa_pool": cohen_kappa(votes[0], votes[1])})
        advance(1)
        per_seed[seed] = dict(target=target, second=votes[1], crowd=crowd, mask=mask, crowd_model=crowd_model)
    out["baselines"]["crowd"] = {"per_seed": crowd_runs, "aggregate": _aggregate(crowd_runs)}
    rounds = max(budgets) // round_size
    curves: dict[str, Any] = {}
    seq: dict[str, Any] = {}
    for si, name in enumerate(strategies):
        runs, seq_runs = [], []
        for seed in range(seeds):
            s = per_seed[seed]
            rng = np.random.default_rng([seed, si, list(POSITIVES).index(pos)])
            curve, sequential = _run_curve(
                name, rng, pool_emb=pool_emb, test_emb=test_emb, gold_test=gold_test, gold_pool=gold_pool,
                target=s["target"], second=s["second"], crowd=s["crowd"], scout_pool=scout_pool,
                scout_test=scout_test, rounds=rounds, round_size=round_size, budgets=budgets,
                crowd_model=s["crowd_model"], crowd_mask=s["mask"], advance=advance)
            runs.append(curve)
            seq_runs.append(sequential)
        agg = {}
        for r in range(rounds):
            rows = [{k: v for k, v in c[r].items() if isinstance(v, float)} for c in runs]
            agg[runs[0][r]["n_labelled"]] = _aggregate(rows)
        curves[name] = {"per_seed": runs, "aggregate": agg}
        if any(seq_runs):
            seq[name] = {"per_seed": seq_runs,
                         "aggregate": {b: _aggregate([s[b] for s in seq_runs if b in s]) for b in budgets}}
    out["strategies"] = curves
    out["sequential"] = seq
    return out


# ---------------------------------------------------------------------------------------------- reporting
def _cell(a: dict | None, interval: bool = True) -> str:
    if not a or a.get("mean") is None:
        return "-"
    if interval and a.get("low") is not None:
        return f"{a['mean']:.2f} [{a['low']:.2f}, {a['high']:.2f}]"
    return f"{a['mean']:.2f}"


def _rows(res: dict, metric: str, budgets: Sequence[int]) -> list[tuple[str, list[dict | None]]]:
    """Table rows ``(name, one aggregate per budget)`` for one class and metric."""
    b = res["baselines"]
    const = lambda v: {"mean": v, "low": None, "high": None}  # noqa: E731
    crowd = b["crowd"]["aggregate"][metric]
    rows = [(name, [c["aggregate"].get(x, {}).get(metric) for x in budgets]) for name, c in res["strategies"].items()]
    rows += [(f"sequential: crowd -> {name}", [s["aggregate"].get(x, {}).get(metric) for x in budgets])
             for name, s in res["sequential"].items()]
    rows += [("scout (round 0, no labels)", [const(b["scout"][metric])] * len(budgets)),
             (f"crowd baseline ({b['crowd']['per_seed'][0]['n_labels']} crowd labels)", [crowd] * len(budgets)),
             (f"gold ceiling ({b['gold_ceiling']['n_labels']} gold labels)",
              [const(b["gold_ceiling"][metric])] * len(budgets))]
    return rows


def _table(res: dict, metric: str, budgets: Sequence[int], interval: bool) -> list[str]:
    lines = ["| condition | " + " | ".join(f"{x} expert labels" for x in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    lines += [f"| {name} | " + " | ".join(_cell(c, interval) for c in cells) + " |"
              for name, cells in _rows(res, metric, budgets)]
    return lines


def _findings(res: dict, budgets: Sequence[int]) -> list[str]:
    """Where boundary-pairs beats / loses to each comparator (paired t-interval of the per-seed kappa difference)."""
    if "boundary-pairs" not in res["strategies"]:
        return []
    bp = res["strategies"]["boundary-pairs"]["per_seed"]
    idx = {c["n_labelled"]: i for i, c in enumerate(bp[0])}

    def bp_k(x: int) -> np.ndarray:
        return np.array([run[idx[x]]["kappa"] for run in bp])

    comparators: dict[str, Any] = {
        name: (lambda x, c=c: np.array([run[idx[x]]["kappa"] for run in c["per_seed"]]))
        for name, c in res["strategies"].items() if name != "boundary-pairs"}
    crowd = np.array([r["kappa"] for r in res["baselines"]["crowd"]["per_seed"]])
    comparators["crowd baseline"] = lambda x: crowd
    comparators["scout"] = lambda x: np.full(len(bp), res["baselines"]["scout"]["kappa"])
    comparators["gold ceiling"] = lambda x: np.full(len(bp), res["baselines"]["gold_ceiling"]["kappa"])
    if "boundary-pairs" in res["sequential"]:
        s = res["sequential"]["boundary-pairs"]["per_seed"]
        comparators["sequential crowd -> boundary-pairs"] = lambda x: np.array([run[x]["kappa"] for run in s])
    lines = []
    for name, fn in comparators.items():
        verdict: dict[str, list[str]] = {"beats": [], "ties": [], "loses to": []}
        for x in budgets:
            diff = _interval((bp_k(x) - fn(x)).tolist())
            if diff["low"] is None:
                key = "beats" if diff["mean"] > 0 else "loses to"
                verdict[key].append(f"{x} ({diff['mean']:+.2f}, 1 seed)")
            else:
                key = "beats" if diff["low"] > 0 else "loses to" if diff["high"] < 0 else "ties"
                verdict[key].append(f"{x} ({diff['mean']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}])")
        parts = [f"{k} it at {', '.join(v)}" for k, v in verdict.items() if v]
        lines.append(f"- boundary-pairs vs {name}: " + "; ".join(parts) + ".")
    return lines


def _write_md(results: dict, path: Path) -> None:
    s = results["settings"]
    budgets = s["budgets"]
    lines = [
        "# Label efficiency: test kappa against expert labels (Webis Clickbait 2017)", "",
        f"Proxy student (METHOD.md section 4): logistic regression on frozen all-MiniLM-L6-v2 embeddings, "
        f"not the fine-tuned transformer. {s['n_items']} items, one fixed test split of {s['n_test']} "
        f"(seed {TEST_SEED}), pool {s['n_pool']}; {s['seeds']} seed(s); rounds of {s['round_size']}; "
        f"simulated experts with pairwise kappa {s['expert_kappa']}; {'QUICK MODE; ' if s['quick'] else ''}"
        f"run {results['date']} in {results['elapsed_s']:.0f} s.", "",
        f"Command: `{results['command']}`", "",
        "Cells: mean test Cohen's kappa against gold over seeds [95 % Student-t interval over seeds].", "",
    ]
    for pos, res in results["classes"].items():
        lines += [f"## Positive class '{pos}': {res['definition']}", "",
                  f"Gold positive share: pool {res['gold_share_pool']:.3f}, test {res['gold_share_test']:.3f}; "
                  f"scout prior {res['scout_prior']:.2f}; crowd label positive when the drawn judgment >= "
                  f"{res['crowd_threshold']}.", "", "### Kappa", ""]
        lines += _table(res, "kappa", budgets, True)
        lines += ["", "### F1 of the positive class (means)", ""] + _table(res, "f1", budgets, False)
        lines += ["", "### AUROC (means)", ""] + _table(res, "auroc", budgets, False)
        crowd = res["baselines"]["crowd"]["aggregate"]
        top = max(budgets)
        lines += ["", f"### The curated set at {top} expert labels (means)", "",
                  "| strategy | expert-label positive share | gold positive share | crowd-expert kappa | "
                  "expert-expert kappa |", "|---|---|---|---|---|"]
        for name, c in res["strategies"].items():
            a = c["aggregate"].get(top, {})
            lines.append(f"| {name} | " + " | ".join(_cell(a.get(k), False) for k in (
                "positive_share", "gold_positive_share", "crowd_expert_kappa", "expert_expert_kappa")) + " |")
        lines += ["", f"Whole pool: crowd-gold kappa {_cell(crowd['crowd_gold_kappa_pool'], False)}, "
                      f"expert-gold kappa {_cell(crowd['expert_gold_kappa_pool'], False)}, "
                      f"expert-expert kappa {_cell(crowd['expert_expert_kappa_pool'], False)}.", "",
                  "### Where boundary-pairs does and does not beat a baseline", ""]
        lines += _findings(res, budgets) + [""]
    lines += ["## Settings and rules", ""] + [f"- {n}" for n in results["notes"]]
    lines += [f"- Selection parameters (SelectionConfig defaults): `{json.dumps(s['selection'])}`", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = results["classes"]
    fig, axes = plt.subplots(1, len(classes), figsize=(6.5 * len(classes), 4.8), squeeze=False)
    for ax, (pos, res) in zip(axes[0], classes.items()):
        scout = res["baselines"]["scout"]["kappa"]
        for name, c in res["strategies"].items():
            xs = sorted(c["aggregate"])
            mean = [scout] + [c["aggregate"][x]["kappa"]["mean"] for x in xs]
            line, = ax.plot([0, *xs], mean, marker="o", ms=3, label=name)
            lo = [c["aggregate"][x]["kappa"]["low"] for x in xs]
            if all(v is not None for v in lo):
                hi = [c["aggregate"][x]["kappa"]["high"] for x in xs]
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
        for name, sq in res["sequential"].items():
            xs = sorted(sq["aggregate"])
            ax.plot(xs, [sq["aggregate"][x]["kappa"]["mean"] for x in xs], ls="--", marker="x",
                    label=f"sequential crowd -> {name}")
        ax.axhline(res["baselines"]["crowd"]["aggregate"]["kappa"]["mean"], color="grey", ls="--",
                   label="crowd baseline (all pool)")
        ax.axhline(res["baselines"]["gold_ceiling"]["kappa"], color="black", ls=":", label="gold ceiling (all pool)")
        ax.set(title=f"'{pos}': {res['definition']}", xlabel="expert-labelled items (0 = scout)",
               ylabel="test Cohen's kappa vs gold")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Label efficiency, linear proxy student (METHOD.md section 4)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------- the entry
def run_label_efficiency(
    data: Path,
    out: Path,
    *,
    seeds: int = 5,
    budgets: Sequence[int] = (100, 200, 400, 600),
    round_size: int = 100,
    strategies: Sequence[str] = ("boundary-pairs", "random", "uncertainty", "coreset"),
    positives: Sequence[str] = ("majority", "rare"),
    test_fraction: float = 0.2,
    expert_kappa: float = 0.8,
    quick: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Run the experiment and write ``results.json``, ``results.md``, ``learning_curves.png`` and the embedding
    cache (``embeddings.npy``, float16) into ``out``.

    Args:
        data: Webis Clickbait 2017 JSONL (id, text, judgments, truth_mean, label).
        seeds: seeds ``0 .. seeds-1`` (expert noise, crowd draw, selection randomness).
        budgets: expert-label counts reported in the tables; multiples of ``round_size``.
        quick: the first 3,000 items, one seed, budgets (100, 200).
        command: recorded in the results (default: this call's repr).

    Returns:
        The results dict written to ``results.json``.

    Raises:
        CurateError: ``data`` is not a file.
        ValueError: an unknown strategy or positive class, or a budget that is not a multiple of ``round_size``.
    """
    t_start = time.perf_counter()
    if quick:
        seeds, budgets = 1, (100, 200)
    budgets = tuple(sorted(int(b) for b in budgets))
    if round_size < 1 or any(b < 1 or b % round_size for b in budgets):
        raise ValueError(f"budgets {budgets} must be positive multiples of round_size {round_size}")
    unknown = [p for p in positives if p not in POSITIVES]
    if unknown or not positives:
        raise ValueError(f"unknown positive class {unknown}; known: {', '.join(POSITIVES)}")
    for name in strategies:
        _strategy(name)  # raises ValueError for an unknown name
    if not Path(data).is_file():
        raise CurateError(f"{data}: the Webis Clickbait 2017 JSONL was not found (pass --data)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    d = _load(data, QUICK_ITEMS if quick else None)
    emb = np.asarray(cached_embeddings(out, d["ids"], d["texts"], model=BUNDLED_MODEL, progress=progress),
                     dtype=np.float32)
    t_embed = time.perf_counter() - t_start
    perm = np.random.default_rng(TEST_SEED).permutation(len(d["ids"]))
    n_test = int(round(test_fraction * len(perm)))
    test, pool = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    rounds = max(budgets) // round_size
    total = len(positives) * seeds * (1 + len(strategies) * rounds)
    classes = {}
    with progress_callback("label efficiency", total=total, enabled=progress) as advance:
        for pos in positives:
            classes[pos] = _run_class(pos, d, emb, pool, test, seeds=seeds, budgets=budgets, round_size=round_size,
                                      strategies=strategies, expert_kappa=expert_kappa, advance=advance)
    import sklearn

    results = {
        "experiment": "label_efficiency",
        "command": command or (f"run_label_efficiency({str(data)!r}, {str(out)!r}, seeds={seeds}, "
                               f"budgets={budgets}, strategies={tuple(strategies)}, quick={quick})"),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus_usable": len(os.sched_getaffinity(0)), "load_average_at_end": list(os.getloadavg()),
                    "numpy": np.__version__, "sklearn": sklearn.__version__},
        "elapsed_s": time.perf_counter() - t_start, "embedding_s": t_embed,
        "settings": {"data": str(data), "n_items": len(d["ids"]), "n_test": int(test.size), "n_pool": int(pool.size),
                     "test_split_seed": TEST_SEED, "test_fraction": test_fraction, "seeds": seeds,
                     "budgets": list(budgets), "round_size": round_size, "rounds": rounds,
                     "strategies": list(strategies), "positives": list(positives), "expert_kappa": expert_kappa,
                     "n_experts": 2, "quick": quick, "embedding_model": BUNDLED_MODEL,
                     "student": {"kind": "sklearn LogisticRegression on frozen embeddings (proxy)", **LR_PARAMS},
                     "selection": SelectionConfig().model_dump(exclude={"strategy", "embedding_model"}),
                     "sequential_strategies": [s for s in strategies if s in SEQUENTIAL_STRATEGIES],
                     "interval": "95 % Student-t over seeds"},
        "notes": NOTES,
        "classes": classes,
    }
    results = _clean(results)
    for pos in results["classes"].values():  # JSON keys are strings; aggregates keyed by budget as str
        for c in list(pos["strategies"].values()) + list(pos["sequential"].values()):
            c["aggregate"] = {int(k): v for k, v in c["aggregate"].items()}
        for s in pos["sequential"].values():
            s["per_seed"] = [{int(k): v for k, v in run.items()} for run in s["per_seed"]]
    (out / "results.json").write_text(json.dumps(_clean(results), indent=1), encoding="utf-8")
    _write_md(results, out / "results.md")
    _plot(results, out / "learning_curves.png")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m curate.experiments.label_efficiency [options]``."""
    ap = argparse.ArgumentParser(prog="python -m curate.experiments.label_efficiency",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Webis Clickbait 2017 JSONL")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "label_efficiency")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budgets", default="100,200,400,600", help="comma-separated expert-label counts")
    ap.add_argument("--round-size", type=int, default=100)
    ap.add_argument("--strategies", default="boundary-pairs,random,uncertainty,coreset")
    ap.add_argument("--positives", default="majority,rare")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--expert-kappa", type=float, default=0.8)
    ap.add_argument("--quick", action="store_true", help="3,000 items, one seed, budgets 100,200")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    split = lambda s: tuple(x.strip() for x in s.split(",") if x.strip())  # noqa: E731
    res = run_label_efficiency(
        args.data, args.out, seeds=args.seeds, budgets=tuple(int(b) for b in split(args.budgets)),
        round_size=args.round_size, strategies=split(args.strategies), positives=split(args.positives),
        test_fraction=args.test_fraction, expert_kappa=args.expert_kappa, quick=args.quick,
        progress=not args.no_progress,
        command="python -m curate.experiments.label_efficiency " + " ".join(sys.argv[1:] if argv is None else argv))
    print(f"wrote {args.out}/results.json, results.md, learning_curves.png in {res['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
