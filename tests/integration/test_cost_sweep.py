"""The cost sweep's quick mode end to end (3,000 Webis items, budgets 16/64/256, shares 0/.2/.6/1, two seeds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import WEBIS

POOL = 2400  # 3,000 items minus the 20 % test split


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    if not WEBIS.is_file():
        pytest.skip(f"shared data not found at {WEBIS}")
    from curate.experiments.cost_sweep import main

    out = tmp_path_factory.mktemp("cost_sweep")
    # two seeds (quick mode's default is one) so that the Student-t intervals exist and can be checked
    assert main(["--quick", "--seeds", "2", "--no-progress", "--data", str(WEBIS), "--out", str(out)]) == 0
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


def test_quick_mode_results_json(quick: Path):
    from curate.experiments.cost_sweep import METHODS

    res = json.loads((quick / "results.json").read_text())
    assert {"command", "date", "machine", "settings", "notes", "cells", "regimes", "regimes_accuracy", "pareto",
            "findings", "timing", "label_quality", "elapsed_s"} <= res.keys()
    assert res["machine"]["cpu_model"] and res["machine"]["cpus_usable"] >= 1
    s = res["settings"]
    assert s["quick"] and s["seeds"] == 2 and s["budgets"] == [16, 64, 256] and s["shares"] == [0, 0.2, 0.6, 1]
    assert s["n_items"] == 3000 and s["n_test"] == 600 and s["n_pool"] == POOL and s["test_split_seed"] == 0
    assert s["student"]["presentations_per_stage"] == 30000 and s["selection"]["clusters_per_label"] == 20
    # every cell present, once
    want = set()
    for source in ("crowd", "scout"):
        for w in (0.5, 0.1, 0.01):
            for b in (16, 64, 256):
                want |= {("expert-only", source, w, b, 0.0), ("weak-only", source, w, b, 1.0)}
                want |= {(m, source, w, b, x) for m in METHODS[2:] for x in (0.0, 0.2, 0.6, 1.0)}
    got = [(c["method"], c["weak_source"], c["w"], c["budget"], c["share"]) for c in res["cells"]]
    assert len(got) == len(set(got)) and set(got) == want
    cells = {k: c for k, c in zip(got, res["cells"])}
    for key, c in cells.items():
        _, _, w, b, x = key
        assert c["n_expert"] == math.floor((1 - x) * b + 0.5)
        assert c["n_weak"] == min(c["n_weak_wanted"], POOL) and c["capped"] == (c["n_weak_wanted"] > POOL)
        # the formula (round n_expert, floor n_weak) can overspend by < $0.50; capping underspends
        assert c["cost"] == pytest.approx(c["n_expert"] + w * c["n_weak"]) and c["cost"] < b + 0.5
        assert len(c["per_seed"]) == 2
        for r in c["per_seed"]:
            assert -1 <= r["kappa"] <= 1 and 0 <= r["accuracy"] <= 1 and 0 <= r["auroc"] <= 1, key
        for metric in ("kappa", "accuracy", "auroc"):
            a = c["aggregate"][metric]
            assert a["n"] == 2 and a["low"] <= a["mean"] <= a["high"], (key, metric)
    # a cell that must be capped ($64 at w = 0.01, share 0.6 wants 3,840 weak labels) and one that must not
    capped = cells[("sequential", "crowd", 0.01, 64, 0.6)]
    assert capped["capped"] and capped["n_weak"] == POOL and capped["n_weak_wanted"] == 3840
    assert capped["cost"] == pytest.approx(26 + 0.01 * POOL)
    assert not cells[("sequential", "crowd", 0.5, 256, 0.6)]["capped"]
    # share 0 is the same computation for every w and weak source, and differs for the few-shot inputs
    jobs = {cells[("expert-only", s_, w, 64, 0.0)]["job"] for s_ in ("crowd", "scout") for w in (0.5, 0.1, 0.01)}
    assert len(jobs) == 1 and cells[("sequential", "scout", 0.1, 64, 0.0)]["job"] in jobs
    assert cells[("few-shot sequential", "crowd", 0.1, 64, 0.0)]["job"] not in jobs
    # regimes: one per (source, w, budget), consistent with the best cell's share
    assert len(res["regimes"]) == 18
    for r in res["regimes"]:
        share = r["best"]["share"]
        expect = {0: "quality-dominant", 1: "quantity-dominant"}.get(share, "mixed")
        assert r["regime"] == expect, r
    # Pareto frontiers: cost strictly increasing, kappa strictly increasing
    assert len(res["pareto"]) == 6
    for front in res["pareto"].values():
        assert front
        assert all(a["cost"] < b["cost"] and a["kappa"] < b["kappa"] for a, b in zip(front, front[1:]))
    # label quality as documented for the corpus (one crowd judgment vs gold: kappa about 0.54)
    q = res["label_quality"]
    assert 0.35 < q["crowd_gold_kappa_pool"]["mean"] < 0.7 and 0.8 < q["expert_gold_kappa_pool"]["mean"] < 0.97
    assert (quick / "embeddings.npy").is_file() and (quick / "fewshot_seed1" / "embeddings.npy").is_file()


def test_quick_mode_report_and_plots(quick: Path):
    md = (quick / "results.md").read_text()
    for text in ("## Weak source 'crowd', w = $0.1", "## Weak source 'scout', w = $0.01", "| budget | regime (kappa) |",
                 "'Numbers reported' table", "## Findings", "sequential+boundary-pairs vs sequential+uncertainty",
                 "capped at 2,400", "Command: `python -m curate.experiments.cost_sweep --quick", "Machine: "):
        assert text in md, text
    from matplotlib.image import imread

    for name in ("pareto_kappa.png", "pareto_accuracy.png"):
        png = (quick / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
        img = imread(quick / name)
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 600
