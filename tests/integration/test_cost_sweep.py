"""`curate experiment cost-sweep --quick` end to end on a 600-item Webis slice: every cell a run of the real loop
(proxy student), labels bought as the allocation rule says (read from each run's project), results and plots
written, a finished run read back instead of run again, bad input one line (tests/integration/test_cli_errors.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, webis_rows

N_ITEMS = 600
POOL = 480  # 600 items minus the 20 % test split
ARGS = ["--labels", "no-clickbait,clickbait", "--positive", "clickbait", "--gold-field", "label",
        "--crowd-field", "judgments", "--prompt-file", str(REPO / "examples" / "webis" / "policy.txt"),
        "--seed-examples", str(REPO / "examples" / "webis" / "seed_examples.json"), "--prior", "0.25",
        "--quick", "--no-progress"]
METHODS = ("expert-only", "weak-only", "sequential", "sequential+uncertainty", "sequential+boundary-pairs")


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cost_sweep")
    pool = root / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in webis_rows(N_ITEMS)), encoding="utf-8")
    out = root / "out"
    proc = run_cli("experiment", "cost-sweep", "--pool", pool, "--out", out, *ARGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_allocation_rounding_and_cap():
    from curate.experiments.cost_sweep import allocation

    assert allocation(16, 0.95, 0.5, 15567) == {"n_expert": 1, "n_weak": 30, "n_weak_wanted": 30, "capped": False,
                                                "cost": 16.0}
    a = allocation(4096, 1.0, 0.01, 15567)
    assert a["capped"] and a["n_weak"] == 15567 and a["n_weak_wanted"] == 409600 and a["n_expert"] == 0
    assert a["cost"] == pytest.approx(155.67)
    assert allocation(64, 0.2, 0.1, 15567)["n_weak"] == 128  # guarded against 127.99999... in floating point
    assert allocation(16, 0.2, 0.1, 15567)["cost"] == pytest.approx(16.2)  # 13 expert (12.8 rounded up) + 32 weak
    with pytest.raises(ValueError):
        allocation(16, 1.5, 0.1, 100)


def _project_counts(folder: Path) -> tuple[int, int, float]:
    """Expert labels, weak labels and the weak labels' dollars, as the run's own database recorded them."""
    from curate.project import Project

    project = Project.open(folder)
    try:
        experts = len(project.store.annotations())
        weak = next((r["info"] for r in project.store.step_records() if r["step"] == "weak"), None) or {}
        return experts, int(weak.get("weak_labels", 0)), float(weak.get("cost", 0.0))
    finally:
        project.store.close()


def test_every_cell_is_a_loop_run_that_bought_what_the_rule_says(quick: Path):
    res = json.loads((quick / "results.json").read_text())
    assert {"command", "date", "machine", "settings", "notes", "cells", "regimes", "regimes_accuracy", "pareto",
            "findings", "timing", "label_quality", "elapsed_s"} <= res.keys()
    assert res["command"].startswith("curate experiment cost-sweep --pool") and res["machine"]["cores_usable"] >= 1
    s = res["settings"]
    assert s["quick"] and s["seeds"] == 1 and s["budgets"] == [16, 64] and s["shares"] == [0, 0.5, 1]
    assert s["prices"] == [0.1] and s["student"] == "proxy" and s["precision"] in ("bf16", "fp32")
    assert s["n_items"] == N_ITEMS and s["n_test"] == N_ITEMS - POOL and s["n_pool"] == POOL
    assert s["config"]["oracle"]["experts_per_item"] == 1 and s["config"]["loop"]["rounds"] in (0, 1)
    # every cell present, once
    want = set()
    for source in ("crowd", "scout"):
        for b in (16, 64):
            want |= {("expert-only", source, b, 0.0), ("weak-only", source, b, 1.0)}
            want |= {(m, source, b, x) for m in METHODS[2:] for x in (0.0, 0.5, 1.0)}
    got = [(c["method"], c["weak_source"], c["budget"], c["share"]) for c in res["cells"]]
    assert len(got) == len(set(got)) and set(got) == want
    cells = dict(zip(got, res["cells"]))
    work = Path(s["work"])
    for key, c in cells.items():
        _, _, b, x = key
        assert c["n_expert"] == math.floor((1 - x) * b + 0.5)
        assert c["n_weak"] == min(c["n_weak_wanted"], POOL) and c["capped"] == (c["n_weak_wanted"] > POOL)
        # the formula (round n_expert, floor n_weak) can overspend by < $0.50; capping underspends
        assert c["cost"] == pytest.approx(c["n_expert"] + 0.1 * c["n_weak"]) and c["cost"] < b + 0.5
        [r] = c["per_seed"]
        for metric in ("kappa", "accuracy", "auroc"):
            assert r[metric] is not None and math.isfinite(r[metric]), (key, metric)
            assert c["aggregate"][metric]["mean"] == r[metric] and c["aggregate"][metric]["n"] == 1
        assert -1 <= r["kappa"] <= 1 and 0 <= r["accuracy"] <= 1 and 0 <= r["auroc"] <= 1
        # what the run's own database says it bought
        experts, weak, weak_cost = _project_counts(work / "seed0" / c["run"])
        assert (experts, weak) == (c["n_expert"], c["n_weak"]) == (r["expert_labels"], r["weak_labels"]), key
        assert experts + weak_cost == pytest.approx(c["cost"]) and experts + weak_cost < b + 0.5
        assert r["model"] == ("final" if c["n_expert"] else "round 0")
    # weak only at share 1: n_weak weak labels, no expert label; $64 at w = $0.10 wants 640, capped at the pool
    for b, n in ((16, 160), (64, POOL)):
        c = cells[("weak-only", "crowd", b, 1.0)]
        assert c["n_weak"] == n and c["n_expert"] == 0 and c["capped"] == (b == 64)
        assert _project_counts(work / "seed0" / c["run"])[:2] == (0, n)
        assert c["per_seed"][0]["round0_model"] == "weak-stage model"
        assert c["per_seed"][0]["kappa"] == c["per_seed"][0]["round0_kappa"]  # the weak-stage model is scored
    # cells with the same run share it: share 1 of every sequential method is weak only; share 0 of random
    # sequential is expert only, the same for both weak sources (no weak stage)
    assert {cells[(m, "scout", 64, 1.0)]["run"] for m in METHODS[1:]} == {"scout-480-w0.1_noexpert"}
    assert cells[("sequential", "crowd", 16, 0.0)]["run"] == cells[("expert-only", "scout", 16, 0.0)]["run"] \
        == "noweak_random-16"
    assert cells[("sequential+uncertainty", "crowd", 16, 0.0)]["run"] == "noweak_uncertainty-16"
    assert cells[("sequential+boundary-pairs", "crowd", 64, 0.5)]["run"] == "crowd-320-w0.1_boundary-pairs-32"
    assert res["timing"]["distinct_runs"] == len({c["run"] for c in res["cells"]}) == 22
    # the weak items (student.weak_items): random pool items, nested across budgets, never a test item
    from curate.loop import Loop
    from curate.project import Project

    bought = {}
    for run in ("crowd-80-w0.1_random-8", "crowd-160-w0.1_noexpert"):
        project = Project.open(work / "seed0" / run)
        loop = Loop(project, progress=False, log=lambda line: None)
        positions, targets, source = loop.weak_targets()
        assert source == "crowd" and targets.shape == (positions.size, 2)
        test = {i for i, split in project.store.splits().items() if split == "test"}
        assert not {project.ids[p] for p in positions} & test
        bought[run] = set(positions.tolist())
        project.store.close()
    assert len(bought["crowd-80-w0.1_random-8"]) == 80 and len(bought["crowd-160-w0.1_noexpert"]) == 160
    assert bought["crowd-80-w0.1_random-8"] < bought["crowd-160-w0.1_noexpert"]
    # regimes: one per (source, w, budget), consistent with the best cell's share
    assert len(res["regimes"]) == 4
    for r in res["regimes"]:
        expect = {0: "quality-dominant", 1: "quantity-dominant"}.get(r["best"]["share"], "mixed")
        assert r["regime"] == expect, r
    # Pareto frontiers: cost strictly increasing, kappa strictly increasing
    assert set(res["pareto"]) == {"crowd/w=0.1", "scout/w=0.1"}
    for front in res["pareto"].values():
        assert front and all(a["cost"] < b["cost"] and a["kappa"] < b["kappa"] for a, b in zip(front, front[1:]))
    # label quality as documented for the corpus (one crowd judgment vs gold: kappa about 0.54)
    q = res["label_quality"]
    assert 0.3 < q["crowd_gold_kappa_test"]["mean"] < 0.75 and 0.75 < q["expert_gold_kappa"]["mean"] <= 1


def test_report_plots_and_a_finished_run_is_read_back(quick: Path):
    md = (quick / "results.md").read_text()
    for text in ("## Weak source 'crowd', w = $0.1", "## Weak source 'scout', w = $0.1", "| budget | regime (kappa) |",
                 "'Numbers reported' table", "## Findings", "sequential+boundary-pairs vs sequential+uncertainty",
                 "capped at 480", "Command: `curate experiment cost-sweep --pool", "Machine: ", "through the real loop",
                 "Few-shot-prompted sequential SFT", "```json"):
        assert text in md, text
    from matplotlib.image import imread

    for name in ("pareto_kappa.png", "pareto_accuracy.png"):
        png = (quick / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
        img = imread(quick / name)
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600
    # a finished run is read back from its project, not run again (its database untouched)
    from curate.config import load_config
    from curate.experiments.cost_sweep import run_cell

    res = json.loads((quick / "results.json").read_text())
    cell = next(c for c in res["cells"] if c["run"] == "crowd-80-w0.1_uncertainty-8")
    folder = Path(res["settings"]["work"]) / "seed0" / cell["run"]
    before = (folder / "curate.db").stat().st_mtime_ns
    again = run_cell(Path(res["settings"]["work"]) / "template", folder, load_config(folder))
    assert again == {k: v for k, v in cell["per_seed"][0].items() if k != "seed"}
    assert (folder / "curate.db").stat().st_mtime_ns == before
    assert not list((folder / "rounds").glob("*/model"))  # the students are deleted once measured
    # ... but not when the cell's settings changed since (its figures would stand for settings they were not made with)
    from curate.errors import CurateError

    other = load_config(folder).model_copy(deep=True)
    other.oracle.expert_kappa = 0.7
    with pytest.raises(CurateError, match="this run was made with oracle.expert_kappa=0.8, now 0.7; give another"):
        run_cell(Path(res["settings"]["work"]) / "template", folder, other)
    assert (folder / "curate.db").stat().st_mtime_ns == before
