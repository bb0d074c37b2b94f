"""The run's report: ``report.md`` and PNG plots, built from what the database and rounds/ recorded.

Plots: kappa per round against expert labels used (model vs experts on the curated evaluation
set with a 95 % bootstrap interval, the experts' own pairwise kappa as the ceiling, crowd vs gold,
and model vs gold on the held-out test split), the positive share of the curated set, and the time
spent per stage. Other projects (e.g. the same pool with ``--strategy random``) can be drawn on the
same axes with ``compare``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from curate.errors import CurateError  # noqa: E402
from curate.project import Project  # noqa: E402

STAGES = ["embed", "weak", "score", "evaluate", "select", "label", "split", "train", "final"]


def round_metrics(project: Project) -> list[dict]:
    """The ``evaluate`` step's metrics of every round, in round order."""
    return [r["info"] for r in sorted(project.store.step_records(), key=lambda r: r["round"]) if r["step"] == "evaluate"]


def final_metrics(project: Project) -> dict | None:
    """The ``final`` step's metrics (the model trained on every expert label), or None before it ran."""
    rec = [r["info"] for r in project.store.step_records() if r["step"] == "final"]
    return rec[-1] if rec else None


def weak_stage(project: Project) -> dict | None:
    """The ``weak`` step's record (source, number and cost of the weak labels), or None without a weak stage."""
    rec = [r["info"] for r in project.store.step_records() if r["step"] == "weak"]
    return rec[-1] if rec else None


def stage_seconds(project: Project) -> dict[int, dict[str, float]]:
    """``{round: {stage: seconds}}`` from the recorded steps (round -1 holds the one-off steps)."""
    out: dict[int, dict[str, float]] = {}
    for r in project.store.step_records():
        out.setdefault(r["round"], {})[r["step"]] = r["seconds"]
    return out


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _fmt_ci(k: dict | None) -> str:
    if not k or not math.isfinite(k.get("kappa", math.nan)):
        return "n/a"
    if not math.isfinite(k.get("low", math.nan)):
        return _fmt(k["kappa"])
    return f"{k['kappa']:.3f} [{k['low']:.3f}, {k['high']:.3f}]"


def _label(project: Project) -> str:
    return f"{project.config.selection.strategy} ({project.path.name})"


def plot_kappa(project: Project, metrics: list[dict], path: Path, compare: Sequence[Project] = ()) -> Figure:
    """Kappa against expert items labelled (the labels that trained each round's model); the legend beside the axes.

    Returns:
        The figure written to ``path`` (closed), for inspection.
    """
    fig, ax = plt.subplots(figsize=(10.5, 4.8))
    x = [m["items_labelled"] for m in metrics]
    ev = [(xi, m["kappa_eval"]) for xi, m in zip(x, metrics) if math.isfinite(m["kappa_eval"]["kappa"])]
    if ev:
        xs, ks = zip(*ev)
        ax.plot(xs, [k["kappa"] for k in ks], "o-", color="C0", label="model vs experts (curated eval set)")
        ax.fill_between(xs, [k["low"] for k in ks], [k["high"] for k in ks], color="C0", alpha=0.15)
    if any("kappa_test" in m for m in metrics):
        kt = [_served_test(m) for m in metrics]
        ax.plot(x, [k["kappa"] for k in kt], "s-", color="C1",
                label=f"served model vs gold (test split) - {_label(project)}")
        ax.fill_between(x, [k["low"] for k in kt], [k["high"] for k in kt], color="C1", alpha=0.15)
    for j, other in enumerate(compare):
        om = round_metrics(other)
        if om and "kappa_test" in om[0]:
            ax.plot([m["items_labelled"] for m in om], [_served_test(m)["kappa"] for m in om], "^--",
                    color=f"C{j + 4}", label=f"served model vs gold (test split) - {_label(other)}")
    final = final_metrics(project)
    if final and "kappa_test" in final:
        ax.plot([final["items"]], [final["kappa_test"]["kappa"]], "*", color="C1", markersize=13,
                label=f"final model, all {final['items']} labels, vs gold (test) {final['kappa_test']['kappa']:.2f}")
    cv = (final or {}).get("cv", {}).get("kappa") or {}
    finite = {k: isinstance(cv.get(k), (int, float)) and math.isfinite(cv[k]) for k in ("kappa", "low", "high")}
    if finite["kappa"]:  # the final model's agreement with the experts, cross-validated (the figure without gold)
        bars = [[cv["kappa"] - cv["low"]], [cv["high"] - cv["kappa"]]] if finite["low"] and finite["high"] else None
        ax.errorbar([final["items"]], [cv["kappa"]], yerr=bars, fmt="*", color="C9", markersize=13, capsize=4,
                    label=f"final model, all {final['items']} labels, vs experts ({final['cv']['folds']}-fold "
                          f"cross-validated) {cv['kappa']:.2f}")
    ceiling = metrics[-1].get("expert_expert_kappa", math.nan)
    if ceiling is not None and math.isfinite(ceiling):
        ax.axhline(ceiling, color="C2", ls="--", label=f"expert-expert kappa (ceiling) {ceiling:.2f}")
    crowd = metrics[-1].get("crowd_gold_kappa_test")
    if crowd and math.isfinite(crowd["kappa"]):
        ax.axhline(crowd["kappa"], color="C3", ls=":", label=f"crowd vs gold (one judgment) {crowd['kappa']:.2f}")
    ax.set_xlabel("expert-labelled items")
    ax.set_ylabel("Cohen's kappa")
    ax.set_title("Agreement per round (95 % bootstrap intervals)")
    ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: never over the points
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def _served_test(m: dict) -> dict:
    """The test kappa of the model a round served (its own student's where no earlier model was served)."""
    return (m.get("served") or {}).get("kappa_test") or m["kappa_test"]


def plot_positive_share(project: Project, metrics: list[dict], path: Path) -> Figure:
    """Positive share of the curated set and of the model's predictions, per round (whole-round ticks; the legend
    beside the axes).

    Returns:
        The figure written to ``path`` (closed), for inspection.
    """
    fig, ax = plt.subplots(figsize=(8.5, 4))
    rounds = [m["round"] for m in metrics]
    curated = [m["positive_share_curated"] for m in metrics]
    ax.plot(rounds, curated, "o-", label="curated set (expert votes)")
    ax.plot(rounds, [m["predicted_positive_share"] for m in metrics], "s--", label="pool predicted positive")
    gold = project.gold()
    if gold:
        share = sum(v == project.config.task.positive for v in gold.values()) / len(gold)
        ax.axhline(share, color="gray", ls=":", label=f"gold positive share {share:.2f}")
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole rounds only, and not crowded with many rounds
    ax.set_ylabel(f"share of '{project.config.task.positive}'")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: never over the points
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def plot_stage_times(seconds: dict[int, dict[str, float]], path: Path) -> Figure:
    """Stacked bars: seconds per stage per round (one-off steps at round -1); the legend beside the axes.

    Returns:
        The figure written to ``path`` (closed), for inspection.
    """
    rounds = sorted(seconds)
    fig, ax = plt.subplots(figsize=(7.5, 4))
    bottom = [0.0] * len(rounds)
    for j, stage in enumerate(STAGES):
        vals = [seconds[r].get(stage, 0.0) for r in rounds]
        if any(vals):
            ax.bar([str(r) if r >= 0 else "setup" for r in rounds], vals, bottom=bottom, label=stage, color=f"C{j}")
            bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xlabel("round")
    ax.set_ylabel("seconds")
    ax.set_title("Time per stage")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: never over the bars
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def write_report(project: Project, out: Path | None = None, compare: Sequence[Project] = ()) -> Path:
    """Write ``report.md`` and the plots; return the report's path.

    Raises:
        CurateError: the project has no evaluated round yet (run ``curate run`` first).
    """
    metrics = round_metrics(project)
    if not metrics:
        raise CurateError(f"{project.path}: no round has been evaluated yet; run `curate run {project.path}` first")
    out = Path(out) if out else project.path / "report"
    out.mkdir(parents=True, exist_ok=True)
    seconds = stage_seconds(project)
    plot_kappa(project, metrics, out / "kappa.png", compare)
    plot_positive_share(project, metrics, out / "positive_share.png")
    plot_stage_times(seconds, out / "time_per_stage.png")

    c = project.config
    lines = [
        f"# Curation report: {project.path.name}",
        "",
        f"- Task: `{c.task.positive}` vs {', '.join(f'`{x}`' for x in c.task.labels if x != c.task.positive)}; "
        f"pool `{c.task.source}`, {len(project.ids)} items.",
        f"- Query strategy `{c.selection.strategy}`; budget {c.loop.budget} items per round; "
        + (f"{c.oracle.experts_per_item} simulated experts per item (target expert-expert kappa {c.oracle.expert_kappa}); "
           if c.oracle.kind == "simulated" else
           f"{c.oracle.experts_per_item} experts per item in the labelling app ({c.oracle.kind} oracle); ")
        + f"fine-tune/eval split {1 - c.loop.eval_fraction:.0%}/{c.loop.eval_fraction:.0%}; seed {c.loop.seed}.",
        (f"- Student `{c.student.model}` ({c.student.presentations} example presentations per fine-tune, "
         f"lr {c.student.learning_rate})" if c.student.kind == "finetune" else
         "- Student: proxy (logistic regression on the frozen embeddings)")
        + f"; round-0 scout: `{c.scout.kind}` with prior {c.scout.prior}; decision threshold: "
        + (f"fixed at {c.loop.threshold}." if c.loop.threshold_rule == "fixed" else
           f"the score quantile that predicts the expected positive share {c.scout.prior} of the pool positive."),
        f"- Stopped: {project.store.get_meta('stop_reason') or 'not yet (run in progress or interrupted)'}.",
        "",
    ]
    weak = weak_stage(project)
    n_items = metrics[-1]["items_labelled"]
    cost = n_items * c.cost.expert_label + (weak["cost"] if weak else 0.0)
    lines.append(f"- Labels bought: {n_items} expert-labelled items at ${c.cost.expert_label:.2f}"
                 + (f" and {weak['weak_labels']} {weak['source']} weak labels at ${weak['price_per_label']:.2f} "
                    f"(the weak stage the students start from)" if weak else "")
                 + f": ${cost:,.2f} in all.")
    has_gold = any("kappa_test" in m for m in metrics)  # without a gold test split no gold column is shown
    lines += [
        "",
        "## Agreement per round",
        "",
        "Model M_t of round t was trained on the fine-tune share of the items labelled before round t "
        + ("(M_0: the weak-stage model). " if weak else "(M_0: the scout). ")
        + "Kappa vs experts pools every (item, expert) label of the accumulated evaluation set; "
        + ("kappa vs gold is on the held-out test split; " if has_gold else
           "the experts' pairwise kappa is the ceiling (no gold: every figure is against the experts); ")
        + "intervals are 95 % bootstrap. *Served*: the model the round "
        "hands back (an earlier one when it agrees with the experts surely better on the evaluation set, or when "
        "the new student predicts one class only).",
        "",
        "| round | model | items labelled | fine-tune / eval items | kappa vs experts (eval) | expert-expert | "
        + ("kappa vs gold (test) | AUROC (test) | " if has_gold else "")
        + "served | positive share (curated) |",
        "|---|---|---|---|---|---|---|---|" + ("---|---|" if has_gold else ""),
    ]
    for m in metrics:
        served = m.get("served_round", m["round"])
        note = f"M_{served}" if served == m["round"] else f"**M_{served}**"
        if m.get("one_class"):
            note += f" (M_{m['round']} predicts only '{m['one_class']}')"
        lines.append(
            f"| {m['round']} | {m['model']} | {m['items_labelled']} | {m['finetune_items']} / {m['eval_items']} | "
            f"{_fmt_ci(m['kappa_eval'])} | {_fmt(m['expert_expert_kappa'])} | "
            + (f"{_fmt_ci(m.get('kappa_test'))} | {_fmt(m.get('auroc_test'))} | " if has_gold else "")
            + f"{note} | {_fmt(m['positive_share_curated'], 2)} |"
        )
    one_class = [m["round"] for m in metrics if m.get("one_class")]
    if one_class:
        lines += ["", f"Warning: the student of round(s) {', '.join(map(str, one_class))} predicts a single class for "
                      "every pool item (too few labels of the other class); such rounds do not count towards a plateau."]
    stability = [(m["round"], m["prediction_kappa_previous"]) for m in metrics
                 if m.get("prediction_kappa_previous") is not None]
    if stability:
        lines += ["", "Stability (needs no labels): Cohen's kappa between the labels M_t and M_(t-1) predict for the "
                      "pool, " + ", ".join(f"round {r} {_fmt(k)}" for r, k in stability) + " (stabilising "
                      "predictions, Bloodgood & Vijay-Shanker 2009; `loop.stop_when_stable` stops once it averages "
                      "`loop.stable_kappa` over `loop.stable_window` rounds)."]
    final = final_metrics(project)
    if final:
        parts = [f"trained on all {final['items']} expert-labelled items (fine-tune and evaluation shares), "
                 "saved in `rounds/final/model`"]
        if "kappa_test" in final:
            parts.append(f"kappa vs gold on the test split {_fmt_ci(final['kappa_test'])}, AUROC "
                         f"{_fmt(final.get('auroc_test'))}")
        mixed = (final.get("fit") or {}).get("mixed")
        if mixed:
            parts.insert(1, f"mixed with {mixed['weak_labels']:,} weak labels in one training set "
                            f"(`loop.final_recipe = \"mixed\"`: the experts' votes replace the weak label on their "
                            f"items, each expert item presented {mixed['expert_weight']} times)")
        if "kappa_test" in (final.get("sequential") or {}):
            seq = final["sequential"]
            parts.append(f"the sequential recipe on the same labels (from the weak-stage model): kappa vs gold "
                         f"{_fmt_ci(seq['kappa_test'])}, AUROC {_fmt(seq.get('auroc_test'))}")
        teacher, st = final.get("teacher"), final.get("self_training") or {}
        if teacher:
            parts.insert(1, f"self-trained (`loop.final_self_training`: the model trained on the expert labels "
                            f"labelled {st.get('pool_items', 0):,} pool items, a new student learnt those labels, "
                            "then the expert labels; no label bought)")
            if "kappa_test" in teacher:
                parts.append(f"before self-training: kappa vs gold {_fmt_ci(teacher['kappa_test'])}, AUROC "
                             f"{_fmt(teacher.get('auroc_test'))}")
        if "cv" in final:
            recipe = f" ({final['cv']['recipe']})" if final["cv"].get("recipe") else ""
            parts.append(f"{final['cv']['folds']}-fold cross-validated kappa vs the experts "
                         f"{_fmt_ci(final['cv']['kappa'])} on {final['cv']['items']} items{recipe}")
        lines += ["", "## Final model", "", "The final model was " + "; ".join(parts) + "."]
    last = metrics[-1]
    if "crowd_gold_kappa_test" in last or "crowd_expert_kappa" in last:
        lines += [
            "",
            f"Crowd labels (one judgment per item): kappa vs gold on the test split {_fmt_ci(last.get('crowd_gold_kappa_test'))}; "
            f"vs the experts on the curated items {_fmt_ci(last.get('crowd_expert_kappa'))}.",
        ]
    compared = [(other, round_metrics(other)) for other in compare]
    compared = [(o, om) for o, om in compared if om]
    if compared:
        lines += ["", "## Compared runs", "", "Kappa vs gold (test) of each round's student:", ""]
        for other, om in compared:  # one line per round
            lines.append(f"- `{_label(other)}`:")
            lines += [f"  - {m['items_labelled']} items: {_fmt_ci(m.get('kappa_test'))}" for m in om]
    total = sum(sum(v.values()) for v in seconds.values())
    lines += [
        "",
        "![kappa per round](kappa.png)",
        "",
        "![positive share](positive_share.png)",
        "",
        "## Time per stage (seconds)",
        "",
        "| round | " + " | ".join(STAGES) + " |",
        "|---|" + "---|" * len(STAGES),
    ]
    for r in sorted(seconds):
        lines.append(f"| {r if r >= 0 else 'setup'} | " + " | ".join(_fmt(seconds[r].get(s), 1) if s in seconds[r] else "" for s in STAGES) + " |")
    lines += ["", f"Total recorded: {total:.0f} s.", "", "![time per stage](time_per_stage.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
