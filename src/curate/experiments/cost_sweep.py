"""Cost sweep on any pool: label quantity versus quality at a fixed dollar budget, through the real loop.

After Mallen & Belrose 2024, "Balancing Label Quantity and Quality for Scalable Elicitation" (METHOD.md section 2):
an expert label costs $1 (``cost.expert_label``), a weak label ``w`` dollars; a budget ``B`` with weak share ``s``
buys ``n_expert = round((1 - s) * B)`` expert labels and ``n_weak = floor(s * B / w)`` weak labels, both capped at
the pool (:func:`allocation`).

Every cell (method, weak source, w, B, s, seed) is one run of :class:`curate.loop.Loop` (the steps ``curate run``
takes) in a project of its own, copied from one template project (``curate init``, or an existing one) with the
machinery of :mod:`curate.experiments.label_efficiency` (the same pool, embeddings, precision, test split
``loop.split_seed``, simulated experts, scout and student):

1. a weak stage (sequential SFT's first stage) on ``n_weak`` weak labels of random pool items
   (``student.weak_items``): one crowd judgment per item (``crowd``) or the round-0 scout's predictions
   (``scout``), priced at ``w`` each; none when ``n_weak = 0``;
2. one expert round of ``n_expert`` items (one simulated expert label each), chosen by the method's query strategy
   on the round-0 model's scores (the weak-stage model, or the scout when there is no weak stage);
3. the final model (every expert label, starting from the weak-stage model with a fresh optimizer), scored against
   gold on the fixed test split; with no expert label, the round-0 model is scored.

Methods: ``expert-only`` (share 0, random items), ``weak-only`` (share 1), ``sequential`` (random expert items),
``sequential+STRATEGY[@COLD]`` (expert items by that query strategy, e.g. ``sequential+uncertainty``,
``sequential+boundary-pairs``) and ``sequential+default`` (curate's ``[selection]`` defaults). Cells with the same
run (share 0 of every method with random items, share 1 of every sequential method, ...) share one project.

Results (``results.json``, ``results.md``, ``pareto_kappa.png``, ``pareto_accuracy.png``) record the command, date,
machine, precision and every setting; the regime of each budget and the Pareto frontier of mean test kappa against
dollars spent. A rerun takes every finished run from its project (``cell.json``) instead of running it again.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from curate.config import ProjectConfig
from curate.errors import CurateError
from curate.experiments.label_efficiency import (
    Condition, _clean, _interval, _machine, _run_config, open_template, prepare_run,
)
from curate.progress import progress_callback

PRICES = (0.50, 0.10, 0.01)
BUDGETS = (16, 64, 256, 1024, 4096)
SHARES = (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0)
WEAK_SOURCES = ("crowd", "scout")
METHODS = ("expert-only", "weak-only", "sequential", "sequential+uncertainty", "sequential+boundary-pairs")
QUICK = {"seeds": 1, "budgets": (16, 64), "shares": (0.0, 0.5, 1.0), "prices": (0.10,)}
EXPERT_PRICE = 1.0  # dollars per expert label (cost.expert_label of every run)
CELL_FILE = "cell.json"  # in a run project: what the sweep measured once the run finished

NOTES = [
    "Source: Mallen & Belrose 2024, 'Balancing Label Quantity and Quality for Scalable Elicitation' (METHOD.md "
    "section 2); uncertainty sampling after Settles 2009 ('Active Learning Literature Survey'). Every cell is a run of "
    "the real loop (curate.loop.Loop, the steps `curate run` takes) with the student named in the settings, so "
    "numbers compare methods and shares with each other, not with the paper's Llama-3-8B figures.",
    "Costs: expert label $1 (cost.expert_label), weak label $w (cost.crowd_label or cost.scout_label of the run). "
    "Budget B, weak share s: n_expert = round((1 - s) B) (half up), n_weak = floor(s B / w). When n_weak exceeds the "
    "pool (every item outside the test split), it is capped at the pool ('capped at N' in the tables) and the cell's "
    "actual cost (n_expert + w n_weak) is below B. Rounding n_expert half up can overspend B by less than $0.50 "
    "(e.g. $16.20 at B = 16, s = 0.2, w = 0.10). The Pareto plots use the actual cost.",
    "One run per cell (cells with the same run share it; 'run' in results.json names it): the loop's weak stage on "
    "n_weak weak labels (student.weak_items: the first n_weak of one random permutation of the pool per seed, "
    "step_rng(seed, 0, 'weak'), so the same items for both weak sources and nested across budgets), then one round "
    "of n_expert items chosen by the method's query strategy on the round-0 model's scores (the weak-stage model; the "
    "scout when n_weak = 0), each labelled by one simulated expert (oracle.experts_per_item = 1), then the loop's "
    "final model on every expert label (from the weak-stage model with student.after_weak_learning_rate: sequential "
    "SFT). The cell's figures are that final model's on the test split; with no expert label (share 1), the "
    "weak-stage model's (round 0).",
    "Test split: one fixed split for every run (loop.split_seed, loop.test_fraction of the items); test metrics are "
    "against gold, with the loop's decision threshold (loop.threshold_rule). Nothing is tuned on the test split.",
    "Weak source 'crowd': one judgment of the crowd column drawn at random per item (curate.oracle.crowd_labels, "
    "seed = the run's seed), a hard label. Weak source 'scout': the round-0 scout's probabilities (soft targets, as "
    "`curate run --weak-labels scout`). The scout is a weak *model*, priced like the crowd at $w per label here.",
    "Expert labels: the loop's simulated experts from gold at the pairwise kappa in the settings, one expert per item.",
    "Query strategies: as the loop runs them (curate.select), with the template's [selection] settings of that "
    "strategy ('sequential+default': curate's defaults, whose cold start chooses selection.cold_start_share of a "
    "first round when nothing is labelled yet). 'sequential' and 'expert-only' choose at random.",
    "Few-shot-prompted sequential SFT (the earlier proxy sweep's sixth method) is not run: the loop's students have no "
    "few-shot input format.",
    "Regime of a budget (per weak source and w, over all methods, by mean test kappa): quantity-dominant when the "
    "best cell is all weak (share 1), quality-dominant when it is all expert (share 0), mixed when an interior share "
    "beats both ends. Pareto frontier: cells sorted by actual cost; a cell joins when its mean kappa beats every "
    "strictly cheaper cell.",
    "Accuracy: the same model's predicted labels (at the loop's threshold) against gold on the test split.",
    "Aggregates: mean over seeds with a 95 % Student-t interval over seeds (mean +- t_{0.975, n-1} sd / sqrt(n)); "
    "no interval for one seed. 'beats' in the findings: the paired t-interval of the per-seed difference excludes 0.",
]


# ------------------------------------------------------------------------------------------------ allocation
def allocation(budget: float, share: float, price: float, pool_size: int) -> dict[str, Any]:
    """Labels bought by ``budget`` dollars with weak share ``share`` at ``price`` dollars per weak label.

    Args:
        budget: dollars (an expert label costs $1).
        share: weak share of the budget in [0, 1].
        price: dollars per weak label, > 0.
        pool_size: items that can receive labels (weak and expert counts are capped there).

    Returns:
        ``{"n_expert", "n_weak", "n_weak_wanted", "capped", "cost"}``: counts, whether the weak count was capped at
        the pool, and the dollars actually spent (the issue's formula: rounding ``n_expert`` half up can overspend
        by less than $0.50, e.g. $16.20 at B = 16, s = 0.2, w = 0.10; capping underspends).

    Raises:
        ValueError: ``share`` outside [0, 1] or ``price``/``budget`` not positive.
    """
    if not 0 <= share <= 1 or price <= 0 or budget <= 0:
        raise ValueError(f"need 0 <= share <= 1, price > 0, budget > 0; got {share}, {price}, {budget}")
    n_expert = min(int(math.floor((1 - share) * budget + 0.5 + 1e-9)), pool_size)
    wanted = int(math.floor(share * budget / price + 1e-9))
    n_weak = min(wanted, pool_size)
    return {"n_expert": n_expert, "n_weak": n_weak, "n_weak_wanted": wanted, "capped": wanted > pool_size,
            "cost": round(n_expert + n_weak * price, 6)}


# --------------------------------------------------------------------------------------------------- methods
def method_selection(method: str) -> Condition | None:
    """The query strategy that chooses a method's expert items, as a :class:`label_efficiency.Condition` (its
    ``strategy``, ``cold_start`` and ``defaults``); None for ``weak-only``.

    Raises:
        ValueError: an unknown method (the message lists the known ones).
    """
    if method == "weak-only":
        return None
    if method in ("expert-only", "sequential"):
        return Condition.parse("random")
    base = method.removeprefix("sequential+")
    if base == method or not base or "+" in base:
        raise ValueError(f"unknown methods/weak sources [{method!r}]; known: expert-only, weak-only, sequential, "
                         "sequential+STRATEGY[@COLD] (e.g. sequential+uncertainty, sequential+boundary-pairs), "
                         "sequential+default; weak sources: " + ", ".join(WEAK_SOURCES))
    return Condition.parse(base)


def check_grid(*, seeds: int, budgets: Sequence[float], shares: Sequence[float], prices: Sequence[float],
               weak_sources: Sequence[str], methods: Sequence[str], student: str) -> dict[str, tuple]:
    """Validate and normalise the sweep's grid (before anything is created).

    Returns:
        ``{"budgets", "shares", "prices", "weak_sources", "methods"}``: budgets and shares sorted ascending, prices
        descending, weak sources and methods without duplicates in the given order.

    Raises:
        ValueError: an unknown method or weak source, a share outside [0, 1], a non-positive budget or price, fewer
            than one seed, or a student other than proxy/finetune; one line each.
    """
    bad = [m for m in methods if not _known_method(m)] + [w for w in weak_sources if w not in WEAK_SOURCES]
    if bad or not methods or not weak_sources:
        raise ValueError(f"unknown methods/weak sources {bad}; known methods: expert-only, weak-only, sequential, "
                         "sequential+STRATEGY[@COLD] (e.g. sequential+uncertainty), sequential+default; weak sources: "
                         + ", ".join(WEAK_SOURCES))
    if any(not 0 <= x <= 1 for x in shares) or any(b <= 0 for b in budgets) or any(p <= 0 for p in prices) \
            or not shares or not budgets or not prices:
        raise ValueError("shares must lie in [0, 1]; budgets and prices must be positive (and none of them empty)")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if student not in ("proxy", "finetune"):
        raise ValueError(f"student {student!r}: use proxy or finetune")
    return {"budgets": tuple(sorted({int(b) if float(b).is_integer() else float(b) for b in budgets})),
            "shares": tuple(sorted({float(x) for x in shares})),
            "prices": tuple(sorted({float(p) for p in prices}, reverse=True)),
            "weak_sources": tuple(dict.fromkeys(weak_sources)), "methods": tuple(dict.fromkeys(methods))}


def _known_method(method: str) -> bool:
    try:
        method_selection(method)
    except ValueError:
        return False
    return True


def _method_shares(method: str, shares: Sequence[float]) -> list[float]:
    if method == "expert-only":
        return [0.0]
    if method == "weak-only":
        return [1.0]
    return list(shares)


def run_key(method: str, source: str, price: float, alloc: dict[str, Any]) -> str:
    """The name of the loop run a cell needs (cells with equal names share one run and project folder).

    ``WEAK_EXPERT``: ``WEAK`` is ``noweak`` or ``SOURCE-N_WEAK-wPRICE``; ``EXPERT`` is ``noexpert`` or
    ``STRATEGY-N_EXPERT`` (``STRATEGY`` the method's query strategy, ``@`` written as ``-at-``).
    """
    weak = f"{source}-{alloc['n_weak']}-w{price:g}" if alloc["n_weak"] else "noweak"
    cond = method_selection(method)
    if alloc["n_expert"] and cond is not None:
        expert = f"{cond.name.replace('@', '-at-')}-{alloc['n_expert']}"
    else:
        expert = "noexpert"
    return f"{weak}_{expert}"


def make_cells(methods: Sequence[str], sources: Sequence[str], prices: Sequence[float], budgets: Sequence[float],
               shares: Sequence[float], pool_size: int) -> list[dict[str, Any]]:
    """Every cell of the grid: ``{"method", "weak_source", "w", "budget", "share", **allocation, "run"}``
    (``expert-only`` at share 0 only, ``weak-only`` at share 1 only, the sequential methods at every share)."""
    cells = []
    for source in sources:
        for price in prices:
            for budget in budgets:
                for method in methods:
                    for share in _method_shares(method, shares):
                        a = allocation(budget, share, price, pool_size)
                        cells.append({"method": method, "weak_source": source, "w": price, "budget": budget,
                                      "share": share, **a, "run": run_key(method, source, price, a)})
    return cells


# ------------------------------------------------------------------------------------------------ one run
def _cell_config(base: ProjectConfig, cell: dict, *, seed: int, split_seed: int, student: str, precision: str,
                 expert_kappa: float, bootstrap: int) -> ProjectConfig:
    """The run project's settings for a cell (label_efficiency's run settings, then the weak items, one expert
    label per item and the prices)."""
    n_weak, n_expert, source = cell["n_weak"], cell["n_expert"], cell["weak_source"]
    sel = method_selection(cell["method"]) if n_expert else None
    weak = source if n_weak else "none"
    if sel is None:
        cond = Condition("weak-only", "random", "none", weak, rounds_override=0)
    else:
        cond = Condition(cell["method"], sel.strategy, sel.cold_start, weak, defaults=sel.defaults)
    cfg = _run_config(base, cond, seed=seed, split_seed=split_seed, rounds=1, round_size=max(n_expert, 1),
                      student=student, precision=precision, expert_kappa=expert_kappa, bootstrap=bootstrap)
    data = cfg.model_dump(mode="json")
    data["student"]["weak_items"] = n_weak or None
    data["oracle"].update(experts_per_item=1, ceiling_share=1.0)
    data["cost"]["expert_label"] = EXPERT_PRICE
    if n_weak:
        data["cost"]["crowd_label" if source == "crowd" else "scout_label"] = cell["w"]
    return ProjectConfig.model_validate(data)


def run_cell(template: Path, folder: Path, config: ProjectConfig, *, keep_models: bool = False,
             log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run (or resume) one cell's loop in ``folder`` and return what it measured; a finished run is read back from
    ``folder/cell.json``, not run again.

    Args:
        template: the template project (pool and embeddings are hard-linked from it).
        folder: the run project (created from ``config`` when missing).
        config: the run's settings (:func:`_cell_config`).
        keep_models: keep the run's saved students (default: deleted once measured).

    Returns:
        ``{"kappa", "kappa_low", "kappa_high", "auroc", "accuracy", "model", "expert_labels", "expert_items",
        "weak_labels", "weak_cost", "cost", "round0_kappa", "round0_model", "crowd_gold_kappa_test",
        "expert_gold_kappa", "stop_reason", "seconds"}``: test figures against gold of the final model (every
        expert label) or, without expert labels, of the round-0 model; labels bought and dollars spent, read from
        the run's database.

    Raises:
        CurateError: the folder holds a run with other settings, or the loop stopped waiting for labels.
    """
    from curate.agreement import cohen_kappa
    from curate.loop import Loop
    from curate.models.student import load_student
    from curate.project import Project

    folder = Path(folder)
    done = folder / CELL_FILE
    prepare_run(template, folder, config)  # an existing folder: refused when made with other settings
    if done.is_file():
        return json.loads(done.read_text(encoding="utf-8"))
    project = Project.open(folder)
    try:
        loop = Loop(project, progress=False, log=log)
        result = loop.run()
        if result.stop_reason is None:
            raise CurateError(f"{folder}: the loop stopped waiting for expert labels; the sweep needs the simulated "
                              "oracle")
        splits = project.store.splits()
        test_ids = sorted(i for i, s in splits.items() if s == "test")
        pos = np.array([project.position[i] for i in test_ids], dtype=np.int64)
        gold_col = np.array([loop.labels.index(loop.gold[i]) for i in test_ids])
        last = result.metrics[-1]
        if result.final:
            fig = result.final
            model = load_student(loop.final_dir / "model", loop.labels, loop.config.student,
                                 texts=project.texts, embeddings=loop.embeddings())
            proba = model.predict_proba(pos, progress=False)
        else:
            fig = last
            proba = loop.stored_scores(last["round"])[pos]
        pred = loop.predicted_index(proba, fig["threshold"])
        annotations = project.store.annotations()
        weak = next((r["info"] for r in project.store.step_records() if r["step"] == "weak"), None) or {}
        gold_of_labelled = [loop.gold[a["item_id"]] for a in annotations]
        out = {
            "kappa": fig["kappa_test"]["kappa"], "kappa_low": fig["kappa_test"].get("low"),
            "kappa_high": fig["kappa_test"].get("high"), "auroc": fig.get("auroc_test"),
            "accuracy": float(np.mean(pred == gold_col)) if pos.size else None,
            "model": "final" if result.final else f"round {last['round']}",
            "expert_labels": len(annotations), "expert_items": len({a["item_id"] for a in annotations}),
            "weak_labels": int(weak.get("weak_labels", 0)), "weak_cost": float(weak.get("cost", 0.0)),
            "cost": round(len(annotations) * config.cost.expert_label + float(weak.get("cost", 0.0)), 6),
            "round0_kappa": result.metrics[0]["kappa_test"]["kappa"], "round0_model": result.metrics[0]["model"],
            "crowd_gold_kappa_test": (result.metrics[0].get("crowd_gold_kappa_test") or {}).get("kappa"),
            "expert_gold_kappa": (cohen_kappa([a["label"] for a in annotations], gold_of_labelled)
                                  if annotations else None),
            "stop_reason": result.stop_reason,
            "seconds": float(sum(r["seconds"] for r in project.store.step_records())),
        }
    finally:
        project.store.close()
    out = _clean(out)
    tmp = done.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1, allow_nan=False), encoding="utf-8")
    tmp.replace(done)  # first: a run cut off while its models are deleted is still read back
    if not keep_models:
        for model_dir in (folder / "rounds").glob("*/model"):
            shutil.rmtree(model_dir, ignore_errors=True)
    return out


# ------------------------------------------------------------------------------------------------- analysis
def _group(cells: list[dict]) -> dict[tuple, list[dict]]:
    g: dict[tuple, list[dict]] = {}
    for c in cells:
        g.setdefault((c["weak_source"], c["w"], c["budget"]), []).append(c)
    return g


def _mean(c: dict, metric: str = "kappa") -> float:
    v = c["aggregate"][metric]["mean"]
    return -math.inf if v is None else v


def regimes(cells: list[dict], metric: str = "kappa") -> list[dict[str, Any]]:
    """Per (weak source, w, budget): the best cell and the regime (Mallen & Belrose 2024).

    quantity-dominant: the best mean ``metric`` is at share 1 (all weak); quality-dominant: at share 0 (all expert);
    mixed: an interior share beats both ends. Ties go to the end (the simpler purchase). A grid with neither
    share 0 nor share 1 has no regime (``"n/a (no share 0 or 1)"``).
    """
    rows = []
    for (source, w, budget), cs in _group(cells).items():
        ends = {side: max((_mean(c, metric) for c in cs if c["share"] == side), default=-math.inf) for side in (0, 1)}
        interior = [c for c in cs if 0 < c["share"] < 1]
        best_int = max(interior, key=lambda c: _mean(c, metric)) if interior else None
        best = max(cs, key=lambda c: (_mean(c, metric), c["share"] in (0, 1)))
        if max(ends.values()) == -math.inf:  # a grid without share 0 or 1: nothing to compare against
            regime = "n/a (no share 0 or 1)"
        elif best_int is not None and _mean(best_int, metric) > max(ends.values()):
            regime, best = "mixed", best_int
        else:
            regime = "quantity-dominant" if ends[1] >= ends[0] else "quality-dominant"
        rows.append({"weak_source": source, "w": w, "budget": budget, "metric": metric, "regime": regime,
                     "best": {k: best[k] for k in ("method", "share", "n_expert", "n_weak", "capped")}
                     | {metric: best["aggregate"][metric]},
                     "best_all_expert": ends[0], "best_all_weak": ends[1],
                     "best_interior": _mean(best_int, metric) if best_int else None})
    return rows


def pareto(cells: list[dict], metric: str = "kappa") -> list[dict]:
    """The cells on the Pareto frontier of mean ``metric`` against actual cost (log dollars).

    Cells are sorted by cost; a cell joins when its mean beats every strictly cheaper cell (among equal-cost cells,
    the best one). Cells that share a run count once.
    """
    seen, uniq = set(), []
    for c in sorted(cells, key=lambda c: (c["cost"], -_mean(c, metric))):
        if c["run"] not in seen:
            seen.add(c["run"])
            uniq.append(c)
    front, best = [], -math.inf
    i = 0
    while i < len(uniq):
        same = [c for c in uniq[i:] if c["cost"] == uniq[i]["cost"]]
        top = max(same, key=lambda c: _mean(c, metric))
        if _mean(top, metric) > best:
            front.append(top)
            best = _mean(top, metric)
        i += len(same)
    return front


# ------------------------------------------------------------------------------------------------ reporting
def _cell(a: dict | None, interval: bool = True) -> str:
    if not a or a.get("mean") is None:
        return "-"
    if interval and a.get("low") is not None:
        return f"{a['mean']:.2f} [{a['low']:.2f}, {a['high']:.2f}]"
    return f"{a['mean']:.2f}"


def _fmt_share(s: float) -> str:
    return f"{s:g}"


def _cap(c: dict) -> str:
    return f" (capped at {c['n_weak']:,})" if c["capped"] else ""


def _best_by_method(cs: list[dict], method: str, metric: str) -> dict | None:
    mine = [c for c in cs if c["method"] == method]
    return max(mine, key=lambda c: _mean(c, metric)) if mine else None


SEQUENTIAL_ONLY = ("expert-only", "weak-only", "sequential")  # the conservative regime: fewest comparisons


def _comparisons(methods: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs compared in the findings: each pair of query-strategy variants (later against earlier in the reversed
    list, so ``sequential+boundary-pairs`` against ``sequential+uncertainty``), then each variant against plain
    ``sequential``."""
    variants = [m for m in methods if m.startswith("sequential+")]
    pairs = [(a, b) for i, a in enumerate(reversed(variants)) for b in list(reversed(variants))[i + 1:]]
    return pairs + [(m, "sequential") for m in variants if "sequential" in methods]


def _compare(cells: list[dict], method: str, other: str) -> str | None:
    """One finding line: in how many interior cells ``method`` beats / ties / loses to ``other`` (paired kappa)."""
    idx = {(c["method"], c["weak_source"], c["w"], c["budget"], c["share"]): c for c in cells}
    tally: dict[str, list] = {"beats": [], "ties": [], "loses to": []}
    for c in cells:
        if c["method"] != method or not 0 < c["share"] < 1:
            continue
        o = idx.get((other, c["weak_source"], c["w"], c["budget"], c["share"]))
        if o is None or o["run"] == c["run"]:
            continue
        diff = _interval([x["kappa"] - y["kappa"] for x, y in zip(c["per_seed"], o["per_seed"])
                          if x["kappa"] is not None and y["kappa"] is not None])
        if diff["mean"] is None:
            continue
        lo, hi = (diff["mean"], diff["mean"]) if diff["low"] is None else (diff["low"], diff["high"])
        tally["beats" if lo > 0 else "loses to" if hi < 0 else "ties"].append((c, diff["mean"]))
    n = sum(len(v) for v in tally.values())
    if not n:
        return None
    mean = float(np.mean([m for v in tally.values() for _, m in v]))
    worst = sorted(tally["loses to"], key=lambda t: t[1])[:3]
    return (f"- {method} vs {other} (paired over seeds, same weak source, w, budget and interior share; kappa): "
            f"beats it in {len(tally['beats'])} of {n} cells, ties in {len(tally['ties'])}, loses in "
            f"{len(tally['loses to'])}; mean difference {mean:+.3f}"
            + (". Largest losses: " + "; ".join(
                f"{c['weak_source']} w=${c['w']:g} ${c['budget']} share {_fmt_share(c['share'])} ({m:+.3f})"
                for c, m in worst) if worst else "") + ".")


def _findings(res: dict) -> list[str]:
    """Plain findings: the regime and best method per weak source and price, then method comparisons."""
    s, cells = res["settings"], res["cells"]
    lines = []
    reg = {(r["weak_source"], r["w"], r["budget"]): r for r in res["regimes"]}
    for source in s["weak_sources"]:
        for w in s["prices"]:
            parts = [f"${b}: {reg[(source, w, b)]['regime']} (best {reg[(source, w, b)]['best']['method']} at share "
                     f"{_fmt_share(reg[(source, w, b)]['best']['share'])}, kappa "
                     f"{_cell(reg[(source, w, b)]['best']['kappa'], False)})" for b in s["budgets"]]
            lines.append(f"- weak source '{source}', w = ${w:g}: " + "; ".join(parts) + ".")
    lines.append("- Caveat: the regime over all methods takes the best of many interior cells against 2-3 end cells, "
                 "each a mean of few seeds, so it leans to 'mixed' (winner's curse); the 'sequential SFT only' column "
                 "(expert only, weak only, plain sequential) compares fewer cells.")
    for method, other in _comparisons(s["methods"]):
        line = _compare(cells, method, other)
        if line:
            lines.append(line)
    q = {k: v["mean"] for k, v in res["label_quality"].items() if v.get("mean") is not None}
    if q:
        lines.append("- For scale (test split, means over seeds): " + ", ".join(
            f"{k.replace('_', ' ')} {v:.2f}" for k, v in q.items()) + ".")
    return lines


def _write_md(res: dict, path: Path) -> None:
    s = res["settings"]
    cells = res["cells"]
    m = res["machine"]
    student = (f"the fine-tuned {s['config']['student']['model']}" if s["student"] == "finetune"
               else "the proxy student (logistic regression on the frozen embeddings)")
    lines = [
        f"# Cost sweep: label quantity versus quality ({res['title']})", "",
        f"Mallen & Belrose 2024 (METHOD.md section 2) through the real loop (curate.loop.Loop) with {student}. "
        f"{s['n_items']} items, fixed test split of {s['n_test']} (loop.split_seed {s['split_seed']}), pool "
        f"{s['n_pool']}; {s['seeds']} seed(s); expert label $1, weak label $w; precision {s['precision']}; "
        f"{'QUICK MODE; ' if s['quick'] else ''}written {res['date']}, {res['elapsed_s']:.0f} s.", "",
        f"Command: `{res['command']}`", "",
        f"Machine: {m['cpu_model']}, {m['cores_usable']} usable cores, load average at end "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_end'])}; torch {m['torch']}.", "",
        f"Settings: budgets {s['budgets']}, weak shares {s['shares']}, prices {s['prices']}, weak sources "
        f"{s['weak_sources']}, methods {s['methods']}, expert kappa {s['expert_kappa']}, bootstrap {s['bootstrap']}.",
        "",
        f"Runs: {len(cells)} cells from {res['timing']['distinct_runs']} distinct loop runs per seed "
        f"({res['timing']['runs_total']} in all, {res['timing']['runs_reused']} read back from finished run "
        f"projects); the runs' recorded steps took {res['timing']['run_seconds_total'] / 60:.1f} min.", "",
        "Label quality (test split, means over seeds): " + (", ".join(
            f"{k.replace('_', ' ')} {_cell(v, False)}" for k, v in res["label_quality"].items()) or "-") + ".", "",
        "Cells: mean test kappa against gold over seeds [95 % Student-t interval]; 'capped at N' marks a cell whose "
        "weak labels were capped at the pool.", "",
    ]
    reg = {(r["weak_source"], r["w"], r["budget"]): r for r in res["regimes"]}
    reg_acc = {(r["weak_source"], r["w"], r["budget"]): r for r in res["regimes_accuracy"]}
    reg_seq = {(r["weak_source"], r["w"], r["budget"]): r for r in res.get("regimes_sequential", [])}
    groups = _group(cells)
    for source in s["weak_sources"]:
        for w in s["prices"]:
            lines += [f"## Weak source '{source}', w = ${w:g}", "",
                      "| budget | regime (kappa) | best method | share | n_expert | n_weak | kappa | accuracy | AUROC |"
                      " regime (accuracy) | regime (sequential SFT only, kappa) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
            for b in s["budgets"]:
                r = reg[(source, w, b)]
                best = next(c for c in groups[(source, w, b)] if c["method"] == r["best"]["method"]
                            and c["share"] == r["best"]["share"])
                a = best["aggregate"]
                lines.append(f"| ${b} | {r['regime']} | {best['method']} | {_fmt_share(best['share'])} | "
                             f"{best['n_expert']} | {best['n_weak']:,}{_cap(best)} | {_cell(a['kappa'])} | "
                             f"{_cell(a['accuracy'], False)} | {_cell(a['auroc'], False)} | "
                             f"{reg_acc[(source, w, b)]['regime']} | "
                             f"{reg_seq[(source, w, b)]['regime'] if (source, w, b) in reg_seq else '-'} |")
            lines += ["", "Kappa by method and weak share (means; share 1 of the sequential methods = weak only):", "",
                      "| method | budget | " + " | ".join(_fmt_share(x) for x in s["shares"]) + " |",
                      "|---|---|" + "---|" * len(s["shares"])]
            for method in s["methods"]:
                for b in s["budgets"]:
                    by = {c["share"]: c for c in groups[(source, w, b)] if c["method"] == method}
                    if not by:
                        continue
                    lines.append(f"| {method} | ${b} | " + " | ".join(
                        (_cell(by[x]["aggregate"]["kappa"], False) + ("*" if by[x]["capped"] else ""))
                        if x in by else "" for x in s["shares"]) + " |")
            capped = sorted({c["n_weak"] for c in _groups_cells(groups, source, w) if c["capped"]})
            lines += ["", ("\\* capped at " + ", ".join(f"{n:,}" for n in capped) + " weak labels (the pool); "
                           "the budget would buy more.") if capped else "No cell was capped.", ""]
    main_w = 0.1 if 0.1 in s["prices"] else s["prices"][0]
    for source in s["weak_sources"]:
        lines += [f"## In the shape of METHOD.md's 'Numbers reported' table (w = ${main_w:g}, weak source '{source}')",
                  "", "Test accuracy of each method at its best share (by mean accuracy; the share in brackets, * = capped).", "",
                  "| method | " + " | ".join(f"${b}" for b in s["budgets"]) + " |", "|---|" + "---|" * len(s["budgets"])]
        for method in s["methods"]:
            row = []
            for b in s["budgets"]:
                c = _best_by_method(groups[(source, main_w, b)], method, "accuracy")
                row.append("-" if c is None else f"{_cell(c['aggregate']['accuracy'], False)} "
                           f"({_fmt_share(c['share'])}{'*' if c['capped'] else ''})")
            lines.append(f"| {method} | " + " | ".join(row) + " |")
        lines += ["", "Regimes (kappa): " + "; ".join(
            f"${b} {reg[(source, main_w, b)]['regime']}" for b in s["budgets"]) + ".", ""]
    lines += ["## Findings", ""] + res["findings"] + [""]
    lines += ["## Settings and rules", ""] + [f"- {n}" for n in res["notes"]]
    lines += ["", "Settings of the first run (the others differ in student.weak_labels, student.weak_items, "
              "selection.strategy, selection.cold_start, loop.rounds, loop.budget, loop.seed and cost):", "",
              "```json", json.dumps(s["config"], indent=1), "```", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _groups_cells(groups: dict, source: str, w: float) -> list[dict]:
    return [c for (s, ww, _), cs in groups.items() if s == source and ww == w for c in cs]


def _plot(res: dict, path: Path, metric: str = "kappa") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = res["settings"]
    sources, prices = s["weak_sources"], s["prices"]
    fig, axes = plt.subplots(len(sources), len(prices), figsize=(5.2 * len(prices) + 1.5, 4.2 * len(sources)),
                             squeeze=False, sharey=True)
    colors = dict(zip(s["methods"], plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for r, source in enumerate(sources):
        for c, w in enumerate(prices):
            ax = axes[r][c]
            cs = [x for x in res["cells"] if x["weak_source"] == source and x["w"] == w]
            for method in s["methods"]:
                mine = [x for x in cs if x["method"] == method]
                ax.scatter([x["cost"] for x in mine], [_mean(x, metric) for x in mine], s=12, alpha=0.55,
                           color=colors.get(method), label=method)
            front = pareto(cs, metric)
            ax.plot([x["cost"] for x in front], [_mean(x, metric) for x in front], "k-", lw=1.2, drawstyle="steps-post")
            ax.scatter([x["cost"] for x in front], [_mean(x, metric) for x in front], s=40, facecolors="none",
                       edgecolors="k", label="Pareto frontier")
            ax.set_xscale("log")
            ax.set(title=f"weak source '{source}', w = \\${w:g}", xlabel="dollars actually spent (log)",
                   ylabel=f"test {metric} vs gold" if c == 0 else None)
            ax.grid(alpha=0.3, which="both")
            if r == 0 and c == 0:
                ax.legend(fontsize=7)
    fig.suptitle(f"Cost sweep ({metric}), {s['student']} student through the loop; expert label \\$1, weak label "
                 "\\$w; Pareto frontier in black", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------- the entry
def run_cost_sweep(
    template: Path,
    out: Path,
    *,
    seeds: int = 3,
    budgets: Sequence[float] = BUDGETS,
    shares: Sequence[float] = SHARES,
    prices: Sequence[float] = PRICES,
    weak_sources: Sequence[str] = WEAK_SOURCES,
    methods: Sequence[str] = METHODS,
    student: str = "proxy",
    split_seed: int = 0,
    expert_kappa: float = 0.8,
    bootstrap: int = 200,
    work: Path | None = None,
    keep_models: bool = False,
    quick: bool = False,
    title: str | None = None,
    command: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda s: None,
    precision: str = "auto",
) -> dict:
    """Run every cell of the sweep through the loop on the template's pool and write the results.

    Args:
        template: a project made by ``curate init`` (its pool, task, scout, student and ``[selection]`` settings are
            used; its own rounds are not touched). Its embeddings are computed here once if missing.
        out: the results folder (``results.json``, ``results.md``, ``pareto_kappa.png``, ``pareto_accuracy.png``).
        seeds: seeds ``0 .. seeds - 1`` (the weak items, the crowd draw, the simulated experts, the selection and
            the training vary; the test split is fixed by ``split_seed``).
        budgets: dollars; an expert label costs $1.
        shares: weak shares of the budget, in [0, 1].
        prices: dollars per weak label.
        weak_sources: ``crowd`` (needs the template's crowd column) and/or ``scout``.
        methods: see the module docstring.
        student: ``"proxy"`` (seconds per run) or ``"finetune"``.
        work: where the run projects live (default ``out/runs``); a rerun takes every finished run from there.
        keep_models: keep every run's saved students (default: deleted once the run is measured).
        quick: only marks the results as a quick run (the command line's ``--quick`` picks the small grid,
            :data:`QUICK`).

    Returns:
        The results dict written to ``results.json``.

    Raises:
        CurateError: the template has no gold column, or a crowd weak source without a crowd column; a run folder
            made with other settings.
        ValueError: a grid :func:`check_grid` refuses.
    """
    t_start = time.perf_counter()
    grid = check_grid(seeds=seeds, budgets=budgets, shares=shares, prices=prices, weak_sources=weak_sources,
                      methods=methods, student=student)
    tpl, precision = open_template(
        template, progress=progress, log=log, precision=precision,
        crowd_needed_by="the weak source 'crowd'" if "crowd" in grid["weak_sources"] else None,
        crowd_alternative="give --weak-sources scout")
    base = tpl.config
    n_items = len(tpl.ids)
    n_test = int(round(base.loop.test_fraction * n_items))  # the loop's split_test
    pool_size = n_items - n_test
    tpl.store.close()
    out = Path(out)
    work = Path(work) if work else out / "runs"
    out.mkdir(parents=True, exist_ok=True)
    cells = make_cells(grid["methods"], grid["weak_sources"], grid["prices"], grid["budgets"], grid["shares"],
                       pool_size)
    runs = {c["run"]: c for c in cells}  # one representative cell per run
    config_of = {key: [_cell_config(base, c, seed=seed, split_seed=split_seed, student=student, precision=precision,
                                    expert_kappa=expert_kappa, bootstrap=bootstrap) for seed in range(seeds)]
                 for key, c in runs.items()}
    measured: dict[tuple[str, int], dict] = {}
    reused = 0
    with progress_callback("cost sweep", total=len(runs) * seeds, enabled=progress) as advance:
        for seed in range(seeds):
            for key in runs:
                folder = work / f"seed{seed}" / key
                was_done = (folder / CELL_FILE).is_file()
                r = run_cell(template, folder, config_of[key][seed], keep_models=keep_models)
                reused += was_done
                measured[key, seed] = r
                if not was_done:
                    log(f"[{key} seed {seed}] test kappa {r['kappa']:.3f} ({r['model']}); {r['expert_labels']} "
                        f"expert + {r['weak_labels']} weak labels, ${r['cost']:,.2f}; {r['seconds']:.1f} s")
                advance(1)
    for c in cells:
        c["per_seed"] = [{"seed": seed, **measured[c["run"], seed]} for seed in range(seeds)]
        c["aggregate"] = {k: _interval([r[k] for r in c["per_seed"]]) for k in ("kappa", "accuracy", "auroc")}
    quality: dict[str, list] = {"crowd_gold_kappa_test": [], "scout_gold_kappa_test": [], "expert_gold_kappa": []}
    for seed in range(seeds):
        rs = [measured[k, seed] for k in runs]
        crowd = [r["crowd_gold_kappa_test"] for r in rs if r["crowd_gold_kappa_test"] is not None]
        scout = [r["round0_kappa"] for r in rs if r["round0_model"] == "scout"]
        expert = [r["expert_gold_kappa"] for r in rs if r["expert_gold_kappa"] is not None]
        quality["crowd_gold_kappa_test"].append(crowd[0] if crowd else None)
        quality["scout_gold_kappa_test"].append(scout[0] if scout else None)
        quality["expert_gold_kappa"].append(float(np.mean(expert)) if expert else None)
    import sklearn

    first = next(iter(config_of.values()))[0]
    res = {
        "experiment": "cost_sweep",
        "title": title or f"{base.task.positive} vs rest, {Path(base.task.source).name}",
        "command": command or f"run_cost_sweep({str(template)!r}, {str(out)!r}, ...)",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**_machine(precision), "sklearn": sklearn.__version__},
        "elapsed_s": time.perf_counter() - t_start,
        "timing": {"distinct_runs": len(runs), "runs_total": len(measured), "runs_reused": int(reused),
                   "run_seconds_total": float(sum(r["seconds"] for r in measured.values()))},
        "settings": {"template": str(template), "pool": base.task.source, "n_items": n_items, "n_test": n_test,
                     "n_pool": pool_size, "labels": base.task.labels, "positive": base.task.positive,
                     "gold_field": base.task.gold_field, "crowd_field": base.task.crowd_field,
                     "split_seed": split_seed, "test_fraction": base.loop.test_fraction, "seeds": seeds,
                     "budgets": list(grid["budgets"]), "shares": list(grid["shares"]), "prices": list(grid["prices"]),
                     "weak_sources": list(grid["weak_sources"]), "methods": list(grid["methods"]),
                     "student": student, "quick": quick, "expert_kappa": expert_kappa, "experts_per_item": 1,
                     "expert_price": EXPERT_PRICE, "bootstrap": bootstrap, "precision": precision, "work": str(work),
                     "method_selection": {m: (None if method_selection(m) is None else
                                              {k: getattr(method_selection(m), k)
                                               for k in ("strategy", "cold_start", "defaults")})
                                          for m in grid["methods"]},
                     "config": first.model_dump(mode="json"),
                     "interval": "95 % Student-t over seeds"},
        "notes": NOTES,
        "label_quality": {k: _interval(v) for k, v in quality.items()},
        "cells": cells,
    }
    return write_report(_clean(res), out)


def write_report(res: dict, out: Path) -> dict:
    """Add the regimes, Pareto frontiers and findings to the results dict ``res`` (cells as in ``results.json``) and
    write ``results.json``, ``results.md``, ``pareto_kappa.png`` and ``pareto_accuracy.png`` into ``out``.

    ``write_report(json.loads((out / "results.json").read_text()), out)`` re-renders a finished run.

    Returns:
        ``res`` with ``regimes``, ``regimes_accuracy``, ``regimes_sequential``, ``pareto`` and ``findings``.
    """
    out = Path(out)
    res["regimes"] = _clean(regimes(res["cells"], "kappa"))
    res["regimes_accuracy"] = _clean(regimes(res["cells"], "accuracy"))
    res["regimes_sequential"] = _clean(regimes([c for c in res["cells"] if c["method"] in SEQUENTIAL_ONLY], "kappa"))
    res["pareto"] = {f"{src}/w={w:g}": [{k: c[k] for k in ("method", "share", "budget", "cost", "n_expert", "n_weak")}
                                         | {"kappa": c["aggregate"]["kappa"]["mean"]}
                                         for c in pareto([x for x in res["cells"] if x["weak_source"] == src
                                                          and x["w"] == w])]
                     for src in res["settings"]["weak_sources"] for w in res["settings"]["prices"]}
    res["findings"] = _findings(res)
    (out / "results.json").write_text(json.dumps(_clean(res), indent=1, allow_nan=False), encoding="utf-8")
    _write_md(res, out / "results.md")
    _plot(res, out / "pareto_kappa.png", "kappa")
    _plot(res, out / "pareto_accuracy.png", "accuracy")
    return res
