"""Label efficiency on any pool: test kappa against expert labels per condition, through the real loop.

Every condition x seed is a project of its own, run by :class:`curate.loop.Loop` (the steps ``curate run`` takes,
resumable), from one template project made by ``curate init`` (or an existing one): the same pool, embeddings,
precision, test split (``loop.split_seed``), simulated experts and student. A condition names what differs:

- ``STRATEGY``: expert labels chosen by that query strategy (``uncertainty``, ``random``, ``cluster-margin``, ...)
  with the template's other ``[selection]`` settings; ``STRATEGY@COLD``: a cold-start strategy for the first round
  (``cluster-margin@typiclust``); ``default``: every ``[selection]`` setting at curate's default;
  ``STRATEGY@COLD:SHARE`` / ``default:SHARE`` / ``default@COLD:SHARE``: the cold start chooses only that share of the
  first round (``selection.cold_start_share``, 0 < SHARE <= 1), the strategy the rest (``default@typiclust:0.5``);
  without ``:SHARE`` the share is the template's (``default``: curate's default);
- ``...+crowd`` / ``...+scout``: a weak stage first (sequential SFT on one crowd judgment per pool item, or on the
  scout's own predictions, free), then the expert rounds from the weak-stage model;
- ``...+self``: the final model self-trained (``loop.final_self_training``: it labels the pool, a new student learns
  those labels, then the expert labels); the rounds are those of the condition without it, and the final model's
  figures before self-training are kept as ``teacher``;
- ``...+WEAK+mix``: the final model learns the weak and the expert labels in one set (``loop.final_recipe =
  "mixed"``); the rounds are those of ``...+WEAK``, and the sequential recipe's final model on the same labels is
  scored too, so the two are paired within each run;
- ``crowd-all`` / ``gold-all`` / ``scout-all``: the student trained on that label for every pool item, no expert
  label (the crowd baseline, the all-gold ceiling, the distilled scout) - round 0 of a weak-stage project.

The round-0 model of an expert-only condition is the scout (the "scout" baseline). Each round's figures are the
model the loop *serves* (``loop.keep_best``) and the round's new student; once a run stops, the final model trained
on every expert label is scored too.

Students: ``finetune`` (the fine-tuned transformer, as ``curate run``) or ``proxy`` (a logistic-regression head on the
frozen embeddings, seconds per round, for wide sweeps).

Results (``results.json``, ``results.md``, ``learning_curves.png``) record the command, date, machine, precision and
every setting; paired comparisons over seeds (Student-t intervals of per-seed differences) say where a condition is
above, level with or below ``uncertainty`` and ``random``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from curate.config import ProjectConfig, SelectionConfig, flatten_settings, save_config, setting_name
from curate.errors import CurateError
from curate.progress import progress_callback

WEAK_SOURCES = ("crowd", "scout", "gold")
ALL_LABEL_BASELINES = {"crowd-all": "crowd", "gold-all": "gold", "scout-all": "scout"}
REFERENCES = ("uncertainty", "random")


@dataclass(frozen=True)
class Condition:
    """One experimental condition (see the module docstring for the grammar of ``name``)."""

    name: str
    strategy: str
    cold_start: str
    weak: str  # "none" or a weak source
    rounds_override: int | None = None  # 0 for the all-label baselines
    defaults: bool = False  # "default": every [selection] setting at curate's default, not the template's
    self_training: bool = False  # "+self": the final model self-trained (loop.final_self_training)
    mixed: bool = False  # "+mix": the final model mixes weak and expert labels (loop.final_recipe = "mixed")
    cold_start_share: float | None = None  # ":SHARE": selection.cold_start_share; None: the template's (or default's)

    @classmethod
    def parse(cls, name: str) -> "Condition":
        """Parse ``STRATEGY[@COLD[:SHARE]][+WEAK][+mix][+self]``, ``default[@COLD][:SHARE][+WEAK][+mix][+self]`` or
        an all-label baseline.

        Raises:
            ValueError: an unknown strategy, cold start or weak source (the message lists the known ones), a
                share that is not a number in (0, 1] or comes without a cold start, or ``+mix`` without a weak source.
        """
        from curate.select import STRATEGIES

        if name in ALL_LABEL_BASELINES:
            return cls(name, "random", "none", ALL_LABEL_BASELINES[name], 0)
        base, *suffixes = name.split("+")
        self_training, mixed = "self" in suffixes, "mix" in suffixes
        weaks = [x for x in suffixes if x not in ("self", "mix")]
        weak = weaks[0] if weaks else "none"
        if (len(weaks) > 1 or weak not in ("none", *WEAK_SOURCES) or suffixes.count("self") > 1
                or suffixes.count("mix") > 1):
            raise ValueError(f"condition {name!r}: unknown weak source {'+'.join(weaks)!r}; known: "
                             f"{', '.join(WEAK_SOURCES)} (and +mix, the mixed final model; +self, the self-trained "
                             "final model)")
        if mixed and weak == "none":
            raise ValueError(f"condition {name!r}: +mix mixes weak labels into the final model: name a weak source "
                             f"first ({', '.join(f'+{w}+mix' for w in WEAK_SOURCES)})")
        base, colon, share_text = base.partition(":")
        strategy, _, cold = base.partition("@")
        share = None
        if colon:
            try:
                share = float(share_text)
            except ValueError:
                share = None
            if share is None or not 0 < share <= 1:
                raise ValueError(f"condition {name!r}: cold-start share {share_text!r} must be a number in (0, 1]")
        defaults = SelectionConfig()
        is_default = strategy == "default"
        if is_default:
            strategy, cold = defaults.strategy, cold or defaults.cold_start
        cold = cold or "none"
        known_cold = SelectionConfig.model_fields["cold_start"].annotation.__args__
        if strategy not in STRATEGIES:
            raise ValueError(f"condition {name!r}: unknown query strategy {strategy!r}; "
                             f"known: {', '.join(sorted(STRATEGIES))}, default")
        if cold not in known_cold:
            raise ValueError(f"condition {name!r}: unknown cold start {cold!r}; known: {', '.join(known_cold)}")
        if share is not None and cold == "none":
            raise ValueError(f"condition {name!r}: a cold-start share needs a cold start (STRATEGY@COLD:SHARE)")
        return cls(name, strategy, cold, weak, defaults=is_default, self_training=self_training,
                   cold_start_share=share, mixed=mixed)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _check_run_folder(folder: Path, config: ProjectConfig) -> None:
    """Refuse a run folder made with other settings (a rerun with other options, or after a default changed, into
    the same ``--work``): resuming it would report its old settings' figures under the new ones.

    Raises:
        CurateError: naming the folder, the first setting that differs (old and new value) and the fix.
    """
    from curate.config import load_config

    a, b = flatten_settings(load_config(folder)), flatten_settings(config)
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            raise CurateError(f"{folder}: this run was made with {setting_name(key)}={a.get(key)!r}, now "
                              f"{b.get(key)!r}; give another --work folder (or delete this one)")


def prepare_run(template: Path, folder: Path, config: ProjectConfig) -> Path:
    """Create a run project at ``folder`` sharing the template's pool and embeddings (hard links), with
    ``config``; an existing ``folder`` made with the same settings is left as it is (the run resumes).

    Raises:
        CurateError: the template has no pool or embeddings, or an existing ``folder`` was made with other settings
            (naming the first that differs, its old and new value, and the fix).
    """
    from curate.embed import EMBEDDINGS_NAME, META_NAME
    from curate.project import POOL_NAME
    from curate.store import Store

    folder = Path(folder)
    if (folder / "curate.toml").is_file():
        _check_run_folder(folder, config)
        return folder
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in (POOL_NAME, EMBEDDINGS_NAME, META_NAME):
        if not (Path(template) / name).is_file():
            raise CurateError(f"{template / name}: missing in the template project")
        _link_or_copy(Path(template) / name, tmp / name)
    save_config(tmp, config)
    store = Store(tmp)
    with store.transaction() as conn:
        store.set_meta(conn, "precision", config.student.precision)
    store.close()
    os.replace(tmp, folder)
    return folder


def _run_config(base: ProjectConfig, cond: Condition, *, seed: int, split_seed: int, rounds: int, round_size: int,
                student: str, precision: str, expert_kappa: float, bootstrap: int) -> ProjectConfig:
    data = base.model_dump(mode="json")
    data["database"] = None
    if cond.defaults:
        data["selection"] = SelectionConfig(embedding_model=base.selection.embedding_model).model_dump(mode="json")
    data["selection"].update(strategy=cond.strategy, cold_start=cond.cold_start)
    if cond.cold_start_share is not None:
        data["selection"].update(cold_start_share=cond.cold_start_share)
    data["student"].update(kind=student, weak_labels=cond.weak, precision=precision)
    r = rounds if cond.rounds_override is None else cond.rounds_override
    # no early stop: the curves need every budget; no cross-validation: the test split scores the final model
    data["loop"].update(seed=seed, split_seed=split_seed, rounds=r, budget=round_size, total_budget=None,
                        patience=max(r, 1), stop_at_ceiling=False, bootstrap=bootstrap, final_cv_folds=0,
                        final_self_training=cond.self_training,
                        final_recipe="mixed" if cond.mixed else "sequential")
    data["oracle"].update(kind="simulated", expert_kappa=expert_kappa)
    return ProjectConfig.model_validate(data)


def _round_row(m: dict) -> dict:
    served = m.get("served") or {}
    return {
        "round": m["round"], "n_labelled": m["items_labelled"],
        "kappa": (served.get("kappa_test") or m.get("kappa_test", {})).get("kappa"),
        "auroc": served.get("auroc_test", m.get("auroc_test")),
        "kappa_student": m.get("kappa_test", {}).get("kappa"), "auroc_student": m.get("auroc_test"),
        "served_round": m.get("served_round", m["round"]), "one_class": m.get("one_class"),
        "kappa_eval": m["kappa_eval"]["kappa"], "expert_expert_kappa": m.get("expert_expert_kappa"),
        "positive_share_curated": m.get("positive_share_curated"),
        "predicted_positive_share": m.get("predicted_positive_share"), "threshold": m.get("threshold"),
    }


def _finite_or_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _interval(values: Sequence[float | None]) -> dict:
    """Mean and 95 % Student-t interval over seeds (None bounds for fewer than 2 finite values)."""
    from scipy import stats

    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = float(v.mean())
    if v.size < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1}
    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(v.size)}


def _verdict(diff: dict) -> str:
    if diff["mean"] is None:
        return "n/a"
    if diff["low"] is None:
        return "above" if diff["mean"] > 0 else "below" if diff["mean"] < 0 else "level"
    return "above" if diff["low"] > 0 else "below" if diff["high"] < 0 else "level"


def summarise(runs: dict[str, list[dict]], budgets: Sequence[int]) -> dict:
    """Aggregate per condition and budget; paired differences against the reference conditions.

    Args:
        runs: ``{condition: [one result per seed: {"rounds": [round rows], "final": {...} | None, ...}]}``.
        budgets: the expert-label counts to report.

    Returns:
        ``{"curves": {cond: {budget: {metric: interval}}}, "final": {cond: interval}, "paired": {cond: {ref:
        {budget: {"mean", "low", "high", "n", "verdict", "wins"}}}}}``.
    """
    def at(run: dict, b: int, key: str = "kappa"):
        row = next((r for r in run["rounds"] if r["n_labelled"] == b), None)
        return None if row is None else row.get(key)

    curves: dict[str, dict] = {}
    for cond, seeds in runs.items():
        bs = [0] + list(budgets) if any(r["n_labelled"] == 0 for s in seeds for r in s["rounds"]) else list(budgets)
        curves[cond] = {b: {k: _interval([at(s, b, k) for s in seeds])
                            for k in ("kappa", "auroc", "kappa_student", "positive_share_curated")} for b in bs}
        curves[cond] = {b: v for b, v in curves[cond].items() if v["kappa"]["n"]}
    final = {cond: _interval([(s.get("final") or {}).get("kappa") for s in seeds]) for cond, seeds in runs.items()}
    paired: dict[str, dict] = {}
    for cond, seeds in runs.items():
        for ref in REFERENCES:
            if ref not in runs or ref == cond:
                continue
            by_seed = {s["seed"]: s for s in runs[ref]}
            out = {}
            for b in budgets:
                d = [at(s, b) - at(by_seed[s["seed"]], b) for s in seeds
                     if s["seed"] in by_seed and at(s, b) is not None and at(by_seed[s["seed"]], b) is not None]
                iv = _interval(d)
                out[b] = {**iv, "verdict": _verdict(iv), "wins": int(sum(x > 0 for x in d)),
                          "ties": int(sum(x == 0 for x in d))}
            paired.setdefault(cond, {})[ref] = out
    return {"curves": curves, "final": final, "paired": paired}


def _machine(precision: str) -> dict:
    import torch

    from curate.runtime import bf16_speedup, cpu_supports_bf16

    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu_model": cpu or platform.processor(), "cores_usable": len(os.sched_getaffinity(0)),
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "bf16_native": cpu_supports_bf16(), "bf16_speedup": round(bf16_speedup(torch.get_num_threads()), 2),
            "precision": precision, "load_average_at_end": list(os.getloadavg())}


def check_precision(precision: str) -> None:
    """Check an experiment's ``--precision``.

    Raises:
        CurateError: ``precision`` is not auto, bf16 or fp32.
    """
    if precision not in ("auto", "bf16", "fp32"):
        raise CurateError(f"--precision {precision!r}: use auto, bf16 or fp32")


def open_template(template: Path, *, progress: bool, log: Callable[[str], None],
                  crowd_needed_by: str | None = None, crowd_alternative: str | None = None,
                  precision: str = "auto") -> tuple[Any, str]:
    """Open an experiment's template project, pin its precision (``student.precision = "auto"`` decided once, for
    every run copied from it) and compute its embeddings once if missing.

    Args:
        crowd_needed_by: what needs the crowd column (for the error), or None when nothing does.
        crowd_alternative: the other fix the error offers (e.g. ``give --weak-sources scout``).
        precision: ``"auto"`` (the template's recorded choice, or bf16 against fp32 timed once), ``"bf16"`` or
            ``"fp32"``. fp32 makes the figures repeatable on another CPU: the same bf16 runs on an Intel Xeon (AMX)
            and an AMD EPYC (AVX512-BF16) moved margin-based conditions by up to 0.1 kappa, random sampling by 0.002.

    Returns:
        The open :class:`curate.project.Project` and the pinned precision (``"fp32"`` or ``"bf16"``).

    Raises:
        CurateError: the template has no gold column (the simulated experts and the test split need one),
            ``crowd_needed_by`` is given and it has no crowd column, or ``precision`` differs from the one its
            embeddings were made in.
    """
    from curate.loop import Loop
    from curate.project import Project

    tpl = Project.open(template)
    task = tpl.config.task
    if not task.gold_field:
        raise CurateError(f"{template}: the experiment needs a gold column (--gold-field) for the simulated experts "
                          "and the test split")
    if crowd_needed_by and not task.crowd_field:
        raise CurateError(f"{template}: {crowd_needed_by} needs a crowd column (--crowd-field)"
                          + (f"; or {crowd_alternative}" if crowd_alternative else ""))
    check_precision(precision)
    if precision != "auto":
        setting = tpl.config.student.precision
        recorded = setting if setting != "auto" else tpl.store.get_meta("precision")
        if recorded is not None and recorded != precision:
            raise CurateError(f"{template}: its embeddings and runs were made in {recorded}; give --precision "
                              f"{recorded}, or a new --work folder for {precision}")
        if recorded is None:
            with tpl.store.transaction() as conn:
                tpl.store.set_meta(conn, "precision", precision)
    loop0 = Loop(tpl, progress=progress, log=log)
    precision = loop0.pin_precision()
    loop0.embeddings()
    return tpl, precision


def run_label_efficiency(
    template: Path,
    out: Path,
    *,
    conditions: Sequence[str] = ("default", "uncertainty", "random"),
    seeds: int = 5,
    budgets: Sequence[int] = (100, 200, 300, 400, 500, 600),
    round_size: int = 100,
    student: str = "proxy",
    split_seed: int = 0,
    expert_kappa: float = 0.8,
    bootstrap: int = 200,
    work: Path | None = None,
    keep_models: bool = False,
    reuse: bool = True,
    title: str | None = None,
    command: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda s: None,
    precision: str = "auto",
) -> dict:
    """Run every condition x seed through the loop on the template's pool and write the results.

    Args:
        template: a project made by ``curate init`` (its pool, task, scout and student settings are used; its own
            rounds are not touched). Its embeddings are computed here once if missing.
        out: the results folder (``results.json``, ``results.md``, ``learning_curves.png``).
        conditions: see the module docstring.
        seeds: seeds ``0 .. seeds - 1`` (the simulated experts, the selection and the training vary; the test split
            is fixed by ``split_seed``).
        budgets: expert-labelled items at which to report, multiples of ``round_size``.
        round_size: items per round.
        student: ``"proxy"`` or ``"finetune"``.
        work: where the run projects live (default ``out/runs``); rerunning resumes each one where it stopped.
        keep_models: keep every round's saved student (default: a finished run keeps its final model only).
        reuse: take a (condition, seed) run already recorded in ``out/results.json`` instead of running it again,
            when that file was written with the same settings (see :func:`reusable_runs`); so ``seeds=5`` after a
            3-seed run only runs seeds 3 and 4, even where the run projects are gone. The results say which runs
            were reused and from which date.

    Returns:
        The results dict written to ``results.json``.

    Raises:
        CurateError: the template has no gold column (the simulated experts and the test split need one).
        ValueError: an unknown condition, a student other than proxy/finetune, or budgets that are not positive
            multiples of ``round_size``.
    """
    from curate.loop import Loop
    from curate.project import Project

    t_start = time.perf_counter()
    if student not in ("proxy", "finetune"):
        raise ValueError(f"student {student!r}: use proxy or finetune")
    budgets = tuple(sorted(int(b) for b in budgets))
    if round_size < 1 or not budgets or any(b < 1 or b % round_size for b in budgets):
        raise ValueError(f"budgets {budgets} must be positive multiples of the round size {round_size}")
    conds = [Condition.parse(c) for c in conditions]
    tpl, precision = open_template(
        template, progress=progress, log=log, precision=precision,
        crowd_needed_by="a '+crowd' or 'crowd-all' condition" if any(c.weak == "crowd" for c in conds) else None)
    base = tpl.config
    out, work = Path(out), Path(work) if work else Path(out) / "runs"
    out.mkdir(parents=True, exist_ok=True)
    rounds = max(budgets) // round_size
    runs: dict[str, list[dict]] = {c.name: [] for c in conds}
    timing: dict[str, list[float]] = {c.name: [] for c in conds}
    settings = _settings(base, tpl, template, conds, seeds=seeds, budgets=budgets, round_size=round_size,
                         rounds=rounds, student=student, split_seed=split_seed, expert_kappa=expert_kappa,
                         bootstrap=bootstrap, precision=precision)
    previous, reused = ({}, [])
    if reuse and (out / "results.json").is_file():
        previous, why, refused = reusable_runs(json.loads((out / "results.json").read_text(encoding="utf-8")),
                                               settings)
        log(f"reusing {len(previous)} run(s) recorded in {out / 'results.json'}" if not why
            else f"not reusing {out / 'results.json'}: {why}")
        for name, reason in refused.items():
            log(f"not reusing the {name} runs recorded in {out / 'results.json'}: {reason}")
    done: set[tuple[str, int]] = set()
    for cond in conds:  # the reused runs first, so every intermediate results.json holds them
        for seed in range(seeds):
            if (cond.name, seed) in previous:
                row, date = previous[cond.name, seed]
                runs[cond.name].append(row)
                reused.append({"condition": cond.name, "seed": seed, "date": date})
                if row.get("seconds") is not None:
                    timing[cond.name].append(row["seconds"])
                done.add((cond.name, seed))

    import sklearn

    def write() -> dict:  # after every run, so a run cut off keeps what it finished
        results = {
            "experiment": "label_efficiency",
            "title": title or f"{base.task.positive} vs rest, {Path(base.task.source).name}",
            "command": command or f"run_label_efficiency({str(template)!r}, {str(out)!r}, ...)",
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {**_machine(precision), "sklearn": sklearn.__version__},
            "elapsed_s": time.perf_counter() - t_start,
            "seconds_per_run": {c: _interval(v) for c, v in timing.items()},
            "run_seconds_total": float(sum(sum(v) for v in timing.values())),
            "settings": settings,
            "reused": reused,
            "runs": {c: sorted(rows, key=lambda r: r["seed"]) for c, rows in runs.items()},
            "summary": summarise(runs, budgets),
        }
        results = _clean(results)
        (out / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False), encoding="utf-8")
        write_markdown(results, out / "results.md")
        plot_curves(results, out / "learning_curves.png")
        return results

    with progress_callback("label efficiency", total=len(conds) * seeds, enabled=progress) as advance:
        advance(len(done))
        for cond in conds:
            for seed in range(seeds):
                if (cond.name, seed) in done:
                    continue
                cfg = _run_config(base, cond, seed=seed, split_seed=split_seed, rounds=rounds, round_size=round_size,
                                  student=student, precision=precision, expert_kappa=expert_kappa,
                                  bootstrap=bootstrap)
                folder = prepare_run(template, work / cond.name.replace("/", "_") / f"seed{seed}", cfg)
                project = Project.open(folder)
                result = Loop(project, progress=False, log=lambda s, c=cond.name, sd=seed: log(f"[{c} seed {sd}] {s}")).run()
                # the steps' own recorded seconds: right for a run resumed over several invocations too
                seconds = float(sum(r["seconds"] for r in project.store.step_records()))
                timing[cond.name].append(seconds)
                project.store.close()
                final = result.final or {}
                runs[cond.name].append({
                    "seed": seed, "stop_reason": result.stop_reason, "seconds": seconds,
                    "rounds": [_round_row(m) for m in result.metrics],
                    "final": {"kappa": final.get("kappa_test", {}).get("kappa"), "auroc": final.get("auroc_test"),
                              "items": final.get("items"),
                              **({"teacher_kappa": final["teacher"].get("kappa_test", {}).get("kappa"),
                                  "teacher_auroc": final["teacher"].get("auroc_test")}
                                 if final.get("teacher") else {}),
                              **({"sequential_kappa": final["sequential"].get("kappa_test", {}).get("kappa"),
                                  "sequential_auroc": final["sequential"].get("auroc_test")}
                                 if final.get("sequential") else {})} if final else None,
                    "weak": _weak_info(project),
                })
                if not keep_models:
                    for model in (folder / "rounds").glob("r*/model"):
                        shutil.rmtree(model, ignore_errors=True)
                advance(1)
                write()
    return write()


def _settings(base: ProjectConfig, tpl, template: Path, conds: Sequence[Condition], *, seeds: int,
              budgets: Sequence[int], round_size: int, rounds: int, student: str, split_seed: int,
              expert_kappa: float, bootstrap: int, precision: str) -> dict:
    return {
        "template": str(template), "pool": base.task.source, "n_items": len(tpl.ids),
        "labels": base.task.labels, "positive": base.task.positive, "gold_field": base.task.gold_field,
        "crowd_field": base.task.crowd_field, "conditions": [c.__dict__ for c in conds], "seeds": seeds,
        "budgets": list(budgets), "round_size": round_size, "rounds": rounds, "student": student,
        "split_seed": split_seed, "expert_kappa": expert_kappa, "experts_per_item": base.oracle.experts_per_item,
        "bootstrap": bootstrap, "precision": precision,
        # the template's cold_start_share, not a ":SHARE" override of the first condition (its name records that)
        "config": _run_config(base, dataclasses.replace(conds[0], cold_start_share=None), seed=0,
                              split_seed=split_seed, rounds=rounds, round_size=round_size, student=student,
                              precision=precision, expert_kappa=expert_kappa,
                              bootstrap=bootstrap).model_dump(mode="json"),
        # each condition's own [selection] (a "default" condition's is curate's defaults), for reuse
        "selection_by_condition": {
            c.name: _run_config(base, c, seed=0, split_seed=split_seed, rounds=rounds, round_size=round_size,
                                student=student, precision=precision, expert_kappa=expert_kappa,
                                bootstrap=bootstrap).selection.model_dump(mode="json") for c in conds},
    }


# what must be equal for a recorded run to stand for a new one (the seed count and the condition list may differ)
_SAME = ("pool", "n_items", "labels", "positive", "gold_field", "crowd_field", "budgets", "round_size", "rounds",
         "student", "split_seed", "expert_kappa", "experts_per_item", "bootstrap", "precision")


def reusable_runs(previous: dict, settings: dict
                  ) -> tuple[dict[tuple[str, int], tuple[dict, str]], str | None, dict[str, str]]:
    """The runs of an earlier ``results.json`` that stand for runs of the experiment described by ``settings``.

    A run is reused when every setting in ``_SAME`` is equal, the run configuration outside ``[selection]`` is equal
    setting by setting, its condition is defined the same way, and the ``[selection]`` settings *that condition's
    runs use* are equal: the top-level ones (``selection.cold_start_share`` only where the condition has a cold
    start) and the tables of its query strategy and cold start (either ``[selection]`` form:
    :func:`curate.config.flatten_settings`). So a changed default that only a cold start reads (the cold start's
    share of round 1) runs the ``default`` conditions again and keeps ``uncertainty`` and ``random``. The seed count
    and the list of conditions may differ.

    Args:
        previous: the dict an earlier run wrote to ``results.json``.
        settings: the new experiment's ``settings`` (as written to ``results.json``).

    Returns:
        ``(runs, why, refused)``: ``runs`` is ``{(condition, seed): (run row, date of the earlier results)}``; ``why``
        is None, or why no run at all is reused (the first differing setting, old and new value); ``refused`` is
        ``{condition: why}`` for conditions recorded in ``previous`` and wanted now whose runs are not reused.
    """
    from curate.config import with_legacy_defaults

    old = previous.get("settings") or {}
    for key in _SAME:
        if old.get(key) != settings.get(key):
            return {}, f"{key} was {old.get(key)!r}, now {settings.get(key)!r}", {}
    try:
        a = flatten_settings(ProjectConfig.model_validate(with_legacy_defaults(old["config"])))
    except Exception as exc:  # an unreadable earlier config: run everything again
        return {}, f"its run configuration does not load ({str(exc).splitlines()[0]})", {}
    b = flatten_settings(ProjectConfig.model_validate(settings["config"]))
    # the conditions' own choices are compared below, [selection] condition by condition
    ignore = {("student", "weak_labels"), ("loop", "seed"), ("loop", "final_self_training"), ("loop", "final_recipe")}
    if b.get(("student", "kind")) == "finetune":  # the proxy head's settings do nothing to a fine-tuned student
        ignore |= {("student", "proxy_c"), ("student", "proxy_expert_weight")}
    for key in sorted(set(a) | set(b)):
        if key[0] != "selection" and key not in ignore and a.get(key) != b.get(key):
            return {}, f"{setting_name(key)} was {a.get(key)!r}, now {b.get(key)!r}", {}
    # a condition recorded before a field existed has that field's default
    blank = {f.name: f.default for f in dataclasses.fields(Condition) if f.default is not dataclasses.MISSING}
    defined = {c["name"]: {**blank, **c} for c in old.get("conditions", [])}
    wanted = {c["name"]: c for c in settings["conditions"]}
    old_selection = _selection_by_condition(old, with_legacy_defaults(old["config"]), defined)
    new_selection = _selection_by_condition(settings, settings["config"], wanted)
    # a run the earlier results had themselves reused keeps the date of the results that ran it
    first = {(r["condition"], int(r["seed"])): r["date"] for r in previous.get("reused") or []}
    out: dict[tuple[str, int], tuple[dict, str]] = {}
    refused: dict[str, str] = {}
    for name, rows in (previous.get("runs") or {}).items():
        if name not in wanted:
            continue
        if defined.get(name) != wanted[name]:
            refused[name] = "the condition is defined differently"
            continue
        differs = _selection_difference(old_selection.get(name), new_selection[name], wanted[name],
                                        settings["config"])
        if differs:
            refused[name] = differs
            continue
        for row in rows:
            seed = int(row["seed"])
            out[name, seed] = (row, first.get((name, seed), previous.get("date", "?")))
    return out, None, refused


def _selection_by_condition(settings: dict, config: dict, conditions: dict[str, dict]) -> dict[str, dict | None]:
    """``{condition: its runs' [selection] settings (JSON)}`` from ``settings["selection_by_condition"]``, or, for
    results written before that was recorded, derived from the first condition's run configuration: a condition
    that reads the template's ``[selection]`` (not ``default``) gets the template's with its own strategy, cold start
    and share, where the first condition read the template's too; anything else is None (not known)."""
    recorded = settings.get("selection_by_condition")
    if recorded is not None:
        return {name: recorded.get(name) for name in conditions}
    listed = settings.get("conditions") or []
    first_default = bool(listed and listed[0].get("defaults"))
    out: dict[str, dict | None] = {}
    for name, c in conditions.items():
        if c.get("defaults") or first_default:  # which defaults made those runs is not recorded
            out[name] = None
            continue
        sel = {**config["selection"], "strategy": c["strategy"], "cold_start": c["cold_start"]}
        if c.get("cold_start_share") is not None:
            sel["cold_start_share"] = c["cold_start_share"]
        out[name] = sel
    return out


def _selection_difference(old: dict | None, new: dict, condition: dict, config: dict) -> str | None:
    """The first ``[selection]`` setting a condition's runs use whose value differs between ``old`` and ``new``
    (``"name was X, now Y"``), or None. ``old`` None: the earlier results do not say. ``config``: any valid run
    configuration (JSON), only to validate the two ``[selection]`` forms alike."""
    if old is None:
        return "the earlier results do not record this condition's [selection] settings"
    a = flatten_settings(ProjectConfig.model_validate({**config, "selection": old}))
    b = flatten_settings(ProjectConfig.model_validate({**config, "selection": new}))
    tables = {condition["strategy"], condition["cold_start"]}
    for key in sorted(k for k in set(a) | set(b) if k[0] == "selection"):
        table = key[1].split(".", 1)[0] if "." in key[1] else None
        if table is not None and table not in tables:
            continue
        if key == ("selection", "cold_start_share") and condition["cold_start"] == "none":
            continue  # read only with a cold start (Loop.select)
        if a.get(key) != b.get(key):
            return f"{setting_name(key)} was {a.get(key)!r}, now {b.get(key)!r}"
    return None


def _weak_info(project) -> dict | None:
    rec = [r for r in project.store.step_records() if r["step"] == "weak"]
    if not rec:
        return None
    info = rec[0]["info"]
    return {k: info.get(k) for k in ("source", "weak_labels", "price_per_label", "cost", "positive_share")}


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python, dict keys -> str."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# ---------------------------------------------------------------------------------------------- reporting
def _cell(a: dict | None, interval: bool = True, digits: int = 3) -> str:
    if not a or a.get("mean") is None:
        return "-"
    if interval and a.get("low") is not None:
        return f"{a['mean']:.{digits}f} [{a['low']:.{digits}f}, {a['high']:.{digits}f}]"
    return f"{a['mean']:.{digits}f}"


def _seed_counts(seeds: int, runs: dict[str, list]) -> str:
    short = {c: len(rows) for c, rows in runs.items() if len(rows) != seeds}
    return f"{seeds} seed(s)" + (" (" + ", ".join(f"{c}: {n} so far" for c, n in short.items()) + ")" if short else "")


def _reused_lines(reused: list[dict]) -> list[str]:
    if not reused:
        return []
    by_date: dict[str, dict[str, list[int]]] = {}
    for r in reused:
        by_date.setdefault(r["date"], {}).setdefault(r["condition"], []).append(r["seed"])
    parts = [f"from the results written {d}: " + "; ".join(f"{c} seed(s) {', '.join(map(str, sorted(v)))}"
                                                          for c, v in conds.items())
             for d, conds in by_date.items()]
    return ["Reused with the same settings (not run again, and timed only where that run recorded its time), "
            + "; ".join(parts) + ".", ""]


def _paired_final_table(results: dict, baseline: str, heading: str, intro: str, columns: tuple[str, str]) -> list[str]:
    """A Markdown table pairing each run's final-model test kappa with the ``baseline`` kappa the same run recorded
    in its ``final`` row (``teacher_kappa``: before self-training; ``sequential_kappa``: the sequential recipe), per
    condition: means over seeds [95 % t-interval] and the paired difference; no lines when no run recorded it."""
    paired = {c: [r for r in seeds if (r.get("final") or {}).get(baseline) is not None]
              for c, seeds in results["runs"].items()}
    paired = {c: rs for c, rs in paired.items() if rs}
    if not paired:
        return []
    lines = [f"### {heading}", "", f"{intro} Test kappa, mean over seeds [95 % t-interval]; the difference is paired "
             "within each run:", "", f"| condition | {columns[0]} | {columns[1]} | difference (seeds won) |",
             "|---|---|---|---|"]
    for c, rs in paired.items():
        diffs = [r["final"]["kappa"] - r["final"][baseline] for r in rs if r["final"]["kappa"] is not None]
        d = _interval(diffs)
        iv = f" [{d['low']:+.3f}, {d['high']:+.3f}]" if d.get("low") is not None else ""
        lines.append(f"| {c} | {_cell(_interval([r['final'][baseline] for r in rs]))} | "
                     f"{_cell(_interval([r['final']['kappa'] for r in rs]))} | {d['mean']:+.3f}{iv} "
                     f"({sum(x > 0 for x in diffs)}/{len(diffs)}) |")
    return lines + [""]


def write_markdown(results: dict, path: Path) -> None:
    """``results.md``: settings, the kappa table, paired verdicts against uncertainty and random, the final models."""
    s = results["settings"]
    summ = results["summary"]
    budgets = [str(b) for b in s["budgets"]]
    m = results["machine"]
    lines = [
        f"# Label efficiency: {results['title']}", "",
        f"Student: **{s['student']}** ({'fine-tuned ' + s['config']['student']['model'] if s['student'] == 'finetune' else 'logistic regression on frozen embeddings'}); "
        f"{s['n_items']} items, test split fixed by seed {s['split_seed']}; {_seed_counts(s['seeds'], results['runs'])}; rounds of "
        f"{s['round_size']}; {s['experts_per_item']} simulated experts per item (pairwise kappa {s['expert_kappa']}); "
        f"precision {s['precision']}.", "",
        f"Machine: {m['cpu_model']}, {m['cores_usable']} cores, torch {m['torch']}; written {results['date']}; the "
        f"runs' recorded steps took {results['run_seconds_total'] / 60:.1f} min in all (mean per run and condition: "
        + ", ".join(f"{c} {v['mean']:.0f} s" for c, v in results["seconds_per_run"].items() if v["mean"] is not None)
        + "; a rerun only resumes).", "",
        f"Command: `{results['command']}`", "",
        *_reused_lines(results.get("reused") or []),
        "Cells: test Cohen's kappa against gold of the model the loop serves after that many expert-labelled items, "
        "mean over seeds [95 % Student-t interval]. Column 0: the round-0 model (the scout, or the weak-stage model).",
        "",
        "| condition | " + " | ".join(["0"] + budgets) + " | final model (all labels) |",
        "|---|" + "---|" * (len(budgets) + 2),
    ]
    for cond, curve in summ["curves"].items():
        cells = [_cell(curve.get(b, {}).get("kappa")) for b in ["0"] + budgets]
        lines.append(f"| {cond} | " + " | ".join(cells) + f" | {_cell(summ['final'].get(cond))} |")
    lines += ["", "Paired over seeds (mean difference of test kappa [95 % t-interval], seeds won): **above** when the "
              "interval is above 0, **below** when under it, level otherwise.", ""]
    for ref in REFERENCES:
        rows = [(c, p[ref]) for c, p in summ["paired"].items() if ref in p]
        if not rows:
            continue
        lines += [f"### Against `{ref}`", "", "| condition | " + " | ".join(budgets) + " |",
                  "|---|" + "---|" * len(budgets)]
        for cond, per in rows:
            if all(not d or d["mean"] is None for d in per.values()):
                continue  # an all-label baseline: no expert budget to compare at
            cells = []
            for b in budgets:
                d = per.get(b)
                if not d or d["mean"] is None:
                    cells.append("-")
                    continue
                iv = f" [{d['low']:+.3f}, {d['high']:+.3f}]" if d["low"] is not None else ""
                cells.append(f"{d['verdict']} {d['mean']:+.3f}{iv} ({d['wins']}/{d['n']})")
            lines.append(f"| {cond} | " + " | ".join(cells) + " |")
        lines.append("")
    weak = {c: r[0]["weak"] for c, r in results["runs"].items() if r and r[0].get("weak")}
    if weak:
        lines += ["### Weak labels and their price", "", "| condition | source | weak labels | $ per label | cost |",
                  "|---|---|---|---|---|"]
        for c, w in weak.items():
            lines.append(f"| {c} | {w['source']} | {w['weak_labels']} | {w['price_per_label']:.2f} | "
                         f"${w['cost']:,.2f} |")
        lines.append("")
    lines += _paired_final_table(
        results, "teacher_kappa", "Self-trained final models",
        "The final model trained on every expert label (the teacher) labels the pool; a new student learns those "
        "labels, then the expert labels (`loop.final_self_training`).", ("teacher (expert labels only)", "self-trained"))
    lines += _paired_final_table(
        results, "sequential_kappa", "Mixed final models",
        "The final model learns every weak label with the experts' votes in their place, each expert item presented "
        "`loop.final_expert_weight` times, in one pass (`loop.final_recipe = \"mixed\"`), against the sequential "
        "recipe (the weak-stage model, then the expert labels) on the same labels.", ("sequential", "mixed"))
    lines += ["### Round 1 against round 0", "",
              "Seeds whose served round-1 model is below the round-0 model on the curated evaluation set (should be 0) "
              "and whose round-1 student predicts one class:", ""]
    for cond, seeds in results["runs"].items():
        r1 = [next((r for r in s["rounds"] if r["round"] == 1), None) for s in seeds]
        r1 = [r for r in r1 if r]
        if r1:
            one = sum(bool(r["one_class"]) for r in r1)
            served0 = sum(r["served_round"] == 0 for r in r1)
            lines.append(f"- {cond}: round-1 student predicts one class in {one} of {len(r1)} seeds; the round-0 "
                         f"model was served instead of it in {served0}.")
    lines += ["", "Settings of the first condition's runs (the others differ in selection.strategy, "
              "selection.cold_start, selection.cold_start_share where a name gives :SHARE, student.weak_labels and "
              "loop.seed):", "", "```json",
              json.dumps(s["config"], indent=1), "```", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def plot_curves(results: dict, path: Path) -> None:
    """Mean test kappa (with 95 % intervals) against expert labels, one line per condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for j, (cond, curve) in enumerate(results["summary"]["curves"].items()):
        xs = sorted(int(b) for b in curve)
        ks = [curve[str(b)]["kappa"] for b in xs]
        if len(xs) == 1:
            ax.axhline(ks[0]["mean"], color=f"C{j}", ls=":", label=f"{cond} ({ks[0]['mean']:.3f})")
            continue
        ax.plot(xs, [k["mean"] for k in ks], "o-", color=f"C{j}", label=cond)
        if all(k["low"] is not None for k in ks):
            ax.fill_between(xs, [k["low"] for k in ks], [k["high"] for k in ks], color=f"C{j}", alpha=0.12)
    ax.set_xlabel("expert-labelled items")
    ax.set_ylabel("Cohen's kappa vs gold (test split)")
    ax.set_title(results["title"], fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
