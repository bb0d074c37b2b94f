#!/usr/bin/env python
"""Crash-resume soak: `curate init` and `curate run` killed with SIGKILL at random moments, then compared with an
uninterrupted run of the same seed (issue 12).

Two projects are made from the same slice of Webis Clickbait 2017 (the first ``--pool`` tweets, written to a
temporary folder) with the same ``curate init`` options, the proxy student (a logistic-regression head on the frozen
MiniLM embeddings), the simulated experts and a fixed seed:

- ``reference``: ``curate init``, then ``curate run`` to completion without interruption; the completion times of
  its steps, from the launch of the run, are the timeline on which the kills are placed; then twice more (no-ops:
  the shorter is taken for the start-up of a resumed run);
- ``soak``: ``curate init`` started and killed ``--init-kills`` times (alternately 0-20 ms after its temporary folder
  appears, while it writes the project there, and at a random moment of 30-90 % of its expected time), then
  ``curate run`` started again and again in its own process group and killed (``kill -9`` of the group), ``--kills``
  times (or until ``--max-seconds``), then started once more and left to finish.

The kill moments are drawn from a seeded RNG over the run's expected length, stratified: the reference timeline is
cut into one segment per step (the first holds the start-up), each segment counted at least half the mean segment
length so that steps of milliseconds are aimed at too (with the proxy student, scoring, evaluation, selection,
splitting and training take under a second); the kills are planned one in each of ``--kills`` equal slices of that
timeline (up to 90 % of it), drawn uniformly, and when the resumed runs get ahead of the plan, the kills left are
planned again over what is left after the point the project has reached. A moment inside
embedding, labelling (the simulated experts take ``--seconds-per-label`` each) or the start-up becomes a delay after
the launch of the resumed run (which reaches the point the project has reached after its start-up, taken as the
shorter no-op rerun of the reference); a moment inside
a short step is hit by waiting until the step before it is recorded, then its share of the step's time. A kill
counts only when it interrupted a running process (exit status -9). Where it landed is read from the project
afterwards: ``start-up`` when the process had not touched its database yet, else the first step the soak project
has not completed.

At the end the two projects are compared through the project API (``curate.project.Project``, its ``Store``) and
their files: annotations, selections, splits, completed steps and their recorded results, the project's pinned
settings, every round's ``metrics.json`` and the final model's, every round's scores and model, and the
embeddings. Nothing may differ. No temporary folder of a killed ``init`` may be left beside the project.

    .venv/bin/python benchmarks/soak.py                       # 20 kills, 1,000 tweets, 4 rounds of 50
    .venv/bin/python benchmarks/soak.py --out benchmarks/results/soak.md
    .venv/bin/python benchmarks/soak.py --quick               # 3 kills, 300 tweets, 2 rounds of 20 (the test)

Exit status: 0 when everything is identical, 1 when something differs or a run failed by itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from _machine import machine_line  # benchmarks/_machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data")) / "webis-clickbait-17" / (
    "webis-clickbait-17.jsonl")
CLI = [sys.executable, "-m", "curate.cli"]
INIT = ["--labels", "no-clickbait,clickbait", "--positive", "clickbait", "--prompt",
        "A post is clickbait when it teases or withholds information to lure a click.",
        "--gold-field", "label", "--crowd-field", "judgments", "--prior", "0.3", "--weak-labels", "none"]
DB_FILES = ("curate.db", "curate.db-wal", "curate.db-journal")
SHORT_STEPS = ("score", "evaluate", "select", "split", "train", "final")  # with the proxy student: under a second


@dataclass
class Attempt:
    """One start of ``curate init`` or ``curate run`` in the soak project."""

    command: str  # "init" or "run"
    delay: float | None  # seconds before the kill; None: left to finish
    killed: bool = False  # the kill interrupted a running process
    exit_status: int | None = None
    seconds: float = 0.0
    landed: str = ""  # where the kill landed
    aim: str = "random moment"  # the step the kill aimed at
    labels: int = 0  # annotations stored after the attempt


@dataclass
class Check:
    """One comparison of the soak project with the reference."""

    what: str
    detail: str
    identical: bool


@dataclass
class Soak:
    """Everything the report shows."""

    args: argparse.Namespace
    command: str
    precision: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    reference_seconds: dict[str, float] = field(default_factory=dict)
    load: tuple[float, float] = (0.0, 0.0)  # the 1-minute load average at the start and at the end
    wall_seconds: float = 0.0
    rounds_compared: int = 0


# -- running the CLI -------------------------------------------------------------------------------------------


def _start(args: list[str], log: Path) -> subprocess.Popen:
    """``python -m curate.cli ARGS`` in its own process group (so a kill reaches every process it started)."""
    with log.open("ab") as fh:
        return subprocess.Popen([*CLI, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=fh, start_new_session=True)


def _run_to_end(args: list[str], log: Path) -> float:
    """Run ``curate ARGS`` uninterrupted; returns its wall seconds. Raises SystemExit when it fails."""
    t0 = time.perf_counter()
    proc = _start(args, log)
    status = proc.wait()
    if status != 0:
        raise SystemExit(f"curate {' '.join(args)} failed ({status}):\n{_tail(log)}")
    return time.perf_counter() - t0


def _tail(log: Path, n: int = 3000) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")[-n:]
    except OSError:
        return ""


def _kill_after(proc: subprocess.Popen, delay: float | None) -> tuple[bool, int]:
    """Wait ``delay`` seconds (None: until it ends), then SIGKILL the process group.

    Returns:
        (whether the kill interrupted the process, its exit status).
    """
    try:
        return False, proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended between the timeout and the kill
            pass
        status = proc.wait()
        return status == -signal.SIGKILL, status


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], extra: float, timeout: float) -> tuple[bool, int]:
    """Wait until ``ready()`` is true (polled every 5 ms), then ``extra`` seconds more, then SIGKILL the process
    group; gives up waiting for ``ready`` after ``timeout`` seconds and lets the process finish.

    Returns:
        (whether the kill interrupted the process, its exit status).
    """
    end = time.perf_counter() + timeout
    while proc.poll() is None and not ready() and time.perf_counter() < end:
        time.sleep(0.005)
    if proc.poll() is not None or not ready():
        return False, proc.wait()
    time.sleep(extra)
    return _kill_after(proc, 0)


def _step_recorded(project: Path, round_index: int, step: str) -> bool:
    """Whether the project's SQLite database records (round, step) as completed (read-only; False while unreadable)."""
    try:
        con = sqlite3.connect(f"file:{project / 'curate.db'}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("select 1 from steps where round = ? and step = ?", (round_index, step)).fetchone() \
                is not None
        finally:
            con.close()
    except sqlite3.Error:
        return False


@dataclass
class Step:
    """A step of the reference run, placed on its timeline (seconds from the launch of its ``curate run``)."""

    round: int
    step: str
    seconds: float
    end: float  # when it was recorded as completed
    labels: int = 0  # a labelling step: the labels it stored

    @property
    def name(self) -> str:
        """``step``, or ``step (round N)``."""
        return self.step if self.round < 0 else f"{self.step} (round {self.round})"


def _timeline(reference: Path, launched: float) -> list[Step]:
    """The reference run's completed steps in order, each with its completion time from ``launched``."""
    from curate.project import Project

    store = Project.open(reference).store
    try:
        return [Step(r["round"], r["step"], r["seconds"], r["completed_at"] - launched,
                     int(r["info"].get("labels", 0)) if r["step"] == "label" else 0) for r in store.step_records()]
    finally:
        store.close()


def _position(timeline: list[Step], done: set[tuple[int, str]], labels: int) -> tuple[int, float]:
    """Where a project stands on the reference timeline.

    Returns:
        The index of the first step not completed (``len(timeline)`` when all are), and the time on the reference
        timeline the project has reached: the end of the last completed step, plus the labels a labelling step under
        way already stored (``labels`` is the project's number of annotations).
    """
    first = next((k for k, st in enumerate(timeline) if (st.round, st.step) not in done), len(timeline))
    if first == 0:
        return 0, 0.0
    if first == len(timeline):
        return first, timeline[-1].end
    at = timeline[first - 1].end
    step = timeline[first]
    if step.step == "label" and step.labels:
        stored = labels - sum(st.labels for st in timeline if st.step == "label" and (st.round, st.step) in done)
        at += step.seconds * min(1.0, max(0, stored) / step.labels)
    return first, at


class Warp:
    """The reference timeline with every step's segment counted at least half the mean segment length.

    The timeline is cut into one segment per step, from the end of the step before (so the gaps count; the first
    segment holds the start-up). Stretching the short segments lets a uniform draw aim at steps of a few
    milliseconds too (with the proxy student, scoring, evaluation, selection, splitting and training take under a
    second), not only at embedding and labelling.
    """

    def __init__(self, timeline: list[Step]) -> None:
        self.ends = [st.end for st in timeline]
        self.starts = [0.0, *self.ends[:-1]]
        self.lengths = [max(0.0, e - s) for s, e in zip(self.starts, self.ends)]
        floor = sum(self.lengths) / (2 * len(self.lengths)) if self.lengths else 0.0
        self.warped = [max(x, floor) for x in self.lengths]
        self.total = sum(self.warped)

    def to_warped(self, t: float) -> float:
        """A time on the reference timeline, on the warped one."""
        before = 0.0
        for s, x, w in zip(self.starts, self.lengths, self.warped):
            if t <= s + x:
                return before + (w * max(0.0, t - s) / x if x > 0 else 0.0)
            before += w
        return self.total

    def to_real(self, m: float) -> tuple[int, float]:
        """A time on the warped timeline: the index of its step, and the time on the reference timeline."""
        before = 0.0
        for k, w in enumerate(self.warped):
            if m <= before + w or k == len(self.warped) - 1:
                share = min(1.0, max(0.0, (m - before) / w)) if w > 0 else 0.0
                return k, self.starts[k] + share * self.lengths[k]
            before += w
        return 0, 0.0


def _touched_since(project: Path, start_ns: int) -> bool:
    """Whether the project's database files changed after ``start_ns`` (the run got past its start-up)."""
    for name in DB_FILES:
        try:
            if (project / name).stat().st_mtime_ns >= start_ns:
                return True
        except OSError:
            continue
    return False


# -- reading a project -----------------------------------------------------------------------------------------


def _done_steps(project: Path) -> tuple[set[tuple[int, str]], int]:
    """The completed (round, step) pairs of a project and its number of annotations."""
    from curate.project import Project

    store = Project.open(project).store
    try:
        return {(r["round"], r["step"]) for r in store.step_records()}, store.count_annotations()
    finally:
        store.close()


def _normalize(value: Any, project: Path) -> Any:
    """``value`` with the project's path replaced by ``PROJECT`` in every string (the two projects differ there)."""
    if isinstance(value, dict):
        return {k: _normalize(v, project) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize(v, project) for v in value]
    if isinstance(value, str):
        return value.replace(str(project.resolve()), "PROJECT").replace(str(project), "PROJECT")
    return value


def _canonical(value: Any) -> str:
    """A JSON text that compares NaN equal to NaN and ignores key order."""
    return json.dumps(value, sort_keys=True, default=str)


def project_state(project: Path) -> dict[str, Any]:
    """What a finished project holds in its database, through the project API.

    Returns:
        ``{"annotations", "selections", "splits", "steps", "meta", "rounds"}``: annotations as sorted
        (item, annotator, label, round) tuples; each round's selection rows in order; ``{item: split}``; every
        completed step's result (``info``, the project's path replaced); the pinned precision, stop reason and
        settings; the rounds that have a ``metrics.json``.
    """
    from curate.project import Project

    store = Project.open(project).store
    try:
        records = store.step_records()
        rounds_selected = sorted({r["round"] for r in records if r["step"] == "select"})
        return {
            "annotations": sorted((a["item_id"], a["annotator"], a["label"], a["round"]) for a in store.annotations()),
            "selections": {t: store.selection(t) for t in rounds_selected},
            "splits": store.splits(),
            "steps": {(r["round"], r["step"]): _canonical(_normalize(r["info"], project)) for r in records},
            "meta": {k: _canonical(_normalize(store.get_meta(k), project)) for k in ("precision", "stop_reason",
                                                                                     "settings")},
            "rounds": sorted(int(p.parent.name[1:]) for p in (project / "rounds").glob("r[0-9]*/metrics.json")),
        }
    finally:
        store.close()


def _is_temporary(path: Path) -> bool:
    return ".tmp" in path.name


def _files(project: Path, under: str) -> dict[str, Path]:
    """Every file under ``project/under`` by relative path (temporary files a kill left are not results)."""
    root = project / under
    return {str(p.relative_to(project)): p for p in sorted(root.rglob("*")) if p.is_file() and not _is_temporary(p)}


def same_file(a: Path, b: Path, project_a: Path, project_b: Path) -> bool:
    """Whether two result files hold the same content: JSON parsed (paths normalized), Parquet tables, NumPy arrays,
    anything else byte for byte (an ``.npz`` archive's zip timestamps do not count)."""
    import numpy as np

    if a.suffix == ".json":
        return _canonical(_normalize(json.loads(a.read_text(encoding="utf-8")), project_a)) == _canonical(
            _normalize(json.loads(b.read_text(encoding="utf-8")), project_b))
    if a.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(a).equals(pq.read_table(b))
    if a.suffix in (".npy", ".npz"):
        x, y = np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)
        if a.suffix == ".npy":
            return x.shape == y.shape and x.dtype == y.dtype and bool(np.array_equal(x, y, equal_nan=True))
        return sorted(x.files) == sorted(y.files) and all(
            x[k].shape == y[k].shape and x[k].dtype == y[k].dtype
            and bool(np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind in "fc")) for k in x.files)
    return a.read_bytes() == b.read_bytes()


def compare(reference: Path, soak: Path) -> tuple[list[Check], int]:
    """Compare a soak project with the reference.

    Returns:
        The checks, and the number of rounds whose ``metrics.json`` was compared.
    """
    ref, got = project_state(reference), project_state(soak)
    checks = [
        Check("annotations", f"{len(ref['annotations'])} labels: item, expert, label, round",
              ref["annotations"] == got["annotations"]),
        Check("selections", f"rounds {_span(list(ref['selections']))}: "
                            f"{sum(len(v) for v in ref['selections'].values())} rows: item, position, group, "
                            "strategy, score, labels needed",
              _canonical({str(k): v for k, v in ref["selections"].items()})
              == _canonical({str(k): v for k, v in got["selections"].items()})),
        Check("splits", f"{len(ref['splits'])} items: " + ", ".join(
            f"{n} {s}" for s, n in sorted(Counter(ref["splits"].values()).items())), ref["splits"] == got["splits"]),
        Check("completed steps", f"{len(ref['steps'])} (round, step) records and their results",
              ref["steps"] == got["steps"]),
        Check("pinned settings", "precision, stop reason, settings", ref["meta"] == got["meta"]),
    ]
    rounds = sorted(set(ref["rounds"]) | set(got["rounds"]))
    for t in rounds:
        a, b = reference / "rounds" / f"r{t:03d}" / "metrics.json", soak / "rounds" / f"r{t:03d}" / "metrics.json"
        ok = a.is_file() and b.is_file() and same_file(a, b, reference, soak)
        checks.append(Check(f"round {t} metrics", "rounds/" + f"r{t:03d}/metrics.json: every figure", ok))
    final_a, final_b = reference / "rounds" / "final" / "metrics.json", soak / "rounds" / "final" / "metrics.json"
    if final_a.is_file() or final_b.is_file():
        checks.append(Check("final model metrics", "rounds/final/metrics.json: every figure",
                            final_a.is_file() and final_b.is_file() and same_file(final_a, final_b, reference, soak)))
    files_a, files_b = _files(reference, "rounds"), _files(soak, "rounds")
    others = [k for k in files_a if not k.endswith("metrics.json")]
    differ = [k for k in others if k not in files_b or not same_file(files_a[k], files_b[k], reference, soak)]
    extra = [k for k in files_b if k not in files_a]
    n_scores = sum(k.endswith("scores.parquet") for k in others)
    checks.append(Check("scores and models", f"{n_scores} scores.parquet, {len(others) - n_scores} model files"
                        + (f"; differ: {', '.join((differ + extra)[:5])}" if differ or extra else ""),
                        not differ and not extra))
    emb = [n for n in ("embeddings.npy", "embeddings.json") if (reference / n).is_file() or (soak / n).is_file()]
    checks.append(Check("embeddings", ", ".join(emb), all(
        (reference / n).is_file() and (soak / n).is_file() and same_file(reference / n, soak / n, reference, soak)
        for n in emb)))
    return checks, len(rounds)


def _span(rounds: list[int]) -> str:
    return f"{rounds[0]}-{rounds[-1]}" if len(rounds) > 1 else ", ".join(map(str, rounds)) or "none"


def _stale_init_folders(project: Path) -> list[Path]:
    return sorted(p for p in project.parent.glob(f".{project.name}.*") if p.is_dir())


def _stray_temporary_files(project: Path) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file() and _is_temporary(p))


# -- the soak --------------------------------------------------------------------------------------------------


def _settle(project: Path, precision: str, seconds_per_label: float) -> None:
    """Write the same explicit precision and labelling pace into a new project's ``curate.toml`` (before its first
    run): ``auto`` would time bf16 against fp32 once per project, and two projects on a busy machine could choose
    differently, which is not what this benchmark measures."""
    from curate.config import load_config, save_config

    config = load_config(project)
    config = config.model_copy(update={
        "student": config.student.model_copy(update={"precision": precision}),
        "oracle": config.oracle.model_copy(update={"seconds_per_label": seconds_per_label}),
    })
    save_config(project, config)


def run_soak(args: argparse.Namespace, command: str) -> Soak:
    """Build both projects, kill the soak project's init and run repeatedly, and compare the results."""
    from curate.runtime import pick_precision

    report = Soak(args, command)
    report.load = (os.getloadavg()[0], 0.0)
    rng = random.Random(args.seed)
    t_start = time.perf_counter()
    report.precision = pick_precision(args.precision)
    work = Path(tempfile.mkdtemp(prefix="curate-soak-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    log = work / "curate.log"
    try:
        pool = work / "pool.jsonl"
        with DATA.open(encoding="utf-8") as src, pool.open("w", encoding="utf-8") as out:
            for k, line in enumerate(src):
                if k >= args.pool:
                    break
                out.write(line)
        reference, soak = work / "reference", work / "soak"
        run_args = ["--oracle", "simulated", "--rounds", str(args.rounds), "--budget", str(args.budget),
                    "--student-kind", "proxy", "--seed", str(args.seed), "--quiet"]

        # The reference: uninterrupted; the completion times of its steps, from its launch, are the timeline on
        # which the kills are placed.
        report.reference_seconds["init"] = _run_to_end(["init", str(reference), "--pool", str(pool), *INIT], log)
        _settle(reference, report.precision, args.seconds_per_label)
        launched = time.time()
        report.reference_seconds["run"] = _run_to_end(["run", str(reference), *run_args], log)
        timeline = _timeline(reference, launched)
        # a resumed run reaches the point its project has reached after about the time of a rerun with nothing
        # left to do (imports, opening the project, the embeddings and the stored scores; and exiting): the shorter
        # of two such reruns of the reference
        report.reference_seconds["resumed start-up"] = startup = min(
            _run_to_end(["run", str(reference), *run_args], log) for _ in range(2))

        # init, killed --init-kills times, then left to finish (unless a killed one got past its rename). Kills
        # alternate between a random moment 0-20 ms after its temporary folder appears (while it writes the project
        # there) and a random moment of its expected time (mostly its start-up: Python and imports).
        init_args = ["init", str(soak), "--pool", str(pool), *INIT]
        t_init = report.reference_seconds["init"]
        kills = tries = 0
        while not (soak / "curate.toml").is_file():
            killing = kills < args.init_kills and tries < 4 * max(1, args.init_kills)
            at_folder = killing and kills % 2 == 0
            delay = rng.uniform(0.3 * t_init, 0.9 * t_init) if killing and not at_folder else None
            extra = rng.uniform(0.0, 0.02) if at_folder else 0.0
            a = Attempt("init", delay)
            t0 = time.perf_counter()
            before = set(_stale_init_folders(soak))  # left by the last kill; this init deletes them first
            proc = _start(init_args, log)
            if at_folder:
                a.aim = "its temporary folder"
                a.killed, a.exit_status = _kill_when(proc, lambda: bool(set(_stale_init_folders(soak)) - before),
                                                     extra, timeout=30)
                a.delay = time.perf_counter() - t0
            else:
                a.killed, a.exit_status = _kill_after(proc, delay)
            a.seconds = time.perf_counter() - t0
            tries += 1
            kills += a.killed
            if not a.killed and a.exit_status != 0:
                report.failures.append(f"curate init exited with {a.exit_status} by itself:\n{_tail(log)}")
                report.attempts.append(a)
                return report
            a.landed = ("complete" if (soak / "curate.toml").is_file() else
                        "temporary folder written" if _stale_init_folders(soak) else "start-up")
            report.attempts.append(a)
        stale = _stale_init_folders(soak)
        report.checks.append(Check("killed inits cleaned up", "no .soak.XXXXXXXX folder left beside the project"
                                   + (f"; left: {', '.join(p.name for p in stale)}" if stale else ""), not stale))
        _settle(soak, report.precision, args.seconds_per_label)

        # run, killed --kills times (or until --max-seconds), then left to finish. The kills are planned in equal
        # slices of the warped timeline (up to 90 % of it), one moment drawn uniformly in each; when the project has
        # got past the next planned moment (the resumed runs went faster than the reference), the kills left are
        # planned again over what is left. See the module's docstring for how a moment becomes a kill.
        warp = Warp(timeline)
        w_end = 0.9 * warp.total
        kills, plan_lo, plan_n, plan_i = 0, 0.0, max(1, args.kills), 0
        while True:
            done, labels = _done_steps(soak)
            first, at = _position(timeline, done, labels)
            limit_hit = time.perf_counter() - t_start > args.max_seconds
            # no kill once every step is recorded: a rerun with nothing left to do is not a resume
            killing = kills < args.kills and not limit_hit and first < len(timeline)
            target, delay, aim, share = None, None, "", 0.0
            if killing:
                w_at = warp.to_warped(at)
                width = (w_end - plan_lo) / plan_n
                m = plan_lo + rng.uniform(plan_i * width, (plan_i + 1) * width)
                if m <= w_at:  # ahead of the plan: plan the kills left over what is left
                    plan_lo, plan_n, plan_i = w_at, args.kills - kills, 0
                    width = max(0.0, w_end - plan_lo) / plan_n
                    m = plan_lo + rng.uniform(0.0, width)
                plan_i += 1
                k, moment = warp.to_real(m)
                aim = "start-up" if k == 0 else timeline[k].name
                if timeline[k].step in SHORT_STEPS and k > first:
                    target, share = k, moment - warp.starts[k]  # once the step before it is recorded, then this
                else:
                    moment = max(moment, at)
                    delay = moment if first == 0 else startup + (moment - at)
            a = Attempt("run", delay, aim=aim)
            start_ns = time.time_ns()
            t0 = time.perf_counter()
            proc = _start(["run", str(soak), *run_args], log)
            if target is None:
                a.killed, a.exit_status = _kill_after(proc, delay)
            else:
                before = timeline[target - 1]
                a.killed, a.exit_status = _kill_when(proc, lambda: _step_recorded(soak, before.round, before.step),
                                                     share,
                                                     timeout=2 * (startup + timeline[-1].end - at) + 60)
                a.delay = time.perf_counter() - t0
            a.seconds = time.perf_counter() - t0
            done_after, a.labels = _done_steps(soak)
            report.attempts.append(a)
            if a.killed:
                kills += 1
                if not _touched_since(soak, start_ns):
                    a.landed = "start-up"
                else:
                    nxt = next((st for st in timeline if (st.round, st.step) not in done_after), None)
                    a.landed = "exit (every step recorded)" if nxt is None else nxt.name
                continue
            if a.exit_status != 0:
                report.failures.append(f"curate run exited with {a.exit_status} by itself:\n{_tail(log)}")
                return report
            a.landed = "finished"
            break
        checks, report.rounds_compared = compare(reference, soak)
        report.checks.extend(checks)
        stray = _stray_temporary_files(soak)
        if stray:  # not a result: the next write of the same file replaces it; reported for the record
            report.failures.append(f"note: temporary files left by kills (not results): {', '.join(stray[:10])}")
    finally:
        report.wall_seconds = time.perf_counter() - t_start
        report.load = (report.load[0], os.getloadavg()[0])
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return report


# -- the report ------------------------------------------------------------------------------------------------


def identical(report: Soak) -> bool:
    """Whether every check passed and no run failed by itself."""
    return bool(report.checks) and all(c.identical for c in report.checks) and not [
        f for f in report.failures if not f.startswith("note:")]


def markdown(report: Soak) -> str:
    """The report as Markdown: the summary, the comparisons, every kill."""
    a = report.args
    runs = [x for x in report.attempts if x.command == "run"]
    inits = [x for x in report.attempts if x.command == "init"]
    run_kills = sum(x.killed for x in runs)
    init_kills = sum(x.killed for x in inits)
    where = Counter(x.landed.split(" (")[0] for x in runs if x.killed)
    ok = identical(report)
    lines = [
        "# Crash-resume soak",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine_line()}; load average (1 min) {report.load[0]:.1f} at the start, {report.load[1]:.1f} at "
        "the end",
        f"- command: `{report.command}`",
        f"- project: the first {a.pool:,} tweets of Webis Clickbait 2017, `curate run --oracle simulated --rounds "
        f"{a.rounds} --budget {a.budget} --student-kind proxy --seed {a.seed}`, precision {report.precision}, "
        f"simulated experts {a.seconds_per_label} s per label",
        f"- reference (uninterrupted): init {report.reference_seconds.get('init', 0):.1f} s, run "
        f"{report.reference_seconds.get('run', 0):.1f} s; a rerun with nothing left to do "
        f"{report.reference_seconds.get('resumed start-up', 0):.1f} s",
        "",
        "| kills survived | rounds compared | compared | identical | wall seconds |",
        "|---|---|---|---|---|",
        f"| {run_kills} of `curate run` (requested {a.kills}) + {init_kills} of `curate init` (requested "
        f"{a.init_kills}) | "
        f"{report.rounds_compared} + final model | annotations, selections, splits, steps, settings, every round's "
        f"metrics, scores, models, embeddings | {'yes' if ok else '**no**'} | {report.wall_seconds:.0f} |",
        "",
        "Where the kills of `curate run` landed: " + (", ".join(f"{k} {n}" for k, n in where.most_common()) or "none")
        + f"; {len(runs)} starts in all, the last one left to finish.",
        "",
        "## Compared",
        "",
        "| what | detail | identical |",
        "|---|---|---|",
        *[f"| {c.what} | {c.detail} | {'yes' if c.identical else '**no**'} |" for c in report.checks],
        "",
        "## Every start of the soak project",
        "",
        "| # | command | kill after (s) | aimed at | ran (s) | interrupted | landed in | labels stored |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {k} | {x.command} | {'-' if x.delay is None else f'{x.delay:.1f}'} | "
          f"{'-' if x.delay is None else x.aim} | {x.seconds:.1f} | "
          f"{'yes' if x.killed else f'no (exit {x.exit_status})'} | {x.landed} | "
          f"{x.labels if x.command == 'run' else '-'} |" for k, x in enumerate(report.attempts, 1)],
    ]
    if report.failures:
        lines += ["", "## Failures and notes", "", *[f"- {f}" for f in report.failures]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the soak, print (and write) the report; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=None, help="kills of `curate run` (default 20; --quick 3)")
    parser.add_argument("--init-kills", type=int, default=None, help="kills of `curate init` (default 3; --quick 2)")
    parser.add_argument("--max-seconds", type=float, default=540.0,
                        help="stop killing after this many seconds of the whole benchmark, then let the run finish "
                             "(default 540)")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed and the kill delays' (default 0)")
    parser.add_argument("--pool", type=int, default=None, help="the first N Webis tweets (default 1000; --quick 300)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 4; --quick 2)")
    parser.add_argument("--budget", type=int, default=None, help="items per round (default 50; --quick 20)")
    parser.add_argument("--seconds-per-label", type=float, default=0.03,
                        help="the simulated experts' time per label, so that kills land in labelling (default 0.03)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="resolved once here and written into both projects (default auto)")
    parser.add_argument("--quick", action="store_true", help="3 kills, 300 tweets, 2 rounds of 20 (the test)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown report to this file")
    parser.add_argument("--keep", type=Path, default=None, help="build the projects here and keep them")
    args = parser.parse_args(argv)
    quick = {"kills": 3, "init_kills": 2, "pool": 300, "rounds": 2, "budget": 20}
    full = {"kills": 20, "init_kills": 3, "pool": 1000, "rounds": 4, "budget": 50}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not DATA.is_file():
        print(f"error: {DATA}: not found; put ../shared/data beside the repository or set CURATE_SHARED_DATA",
              file=sys.stderr)
        return 2
    command = " ".join(shlex.quote(x) for x in [".venv/bin/python", "benchmarks/soak.py",
                                                *(sys.argv[1:] if argv is None else argv)])
    report = run_soak(args, command)
    text = markdown(report)
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0 if identical(report) else 1


if __name__ == "__main__":
    sys.exit(main())
