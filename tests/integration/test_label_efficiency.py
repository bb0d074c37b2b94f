"""The label-efficiency experiment's quick mode end to end (3,000 Webis items, one seed, budgets 100 and 200)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import WEBIS


def _kappas(obj, path=""):
    """Every ``(path, value)`` whose key names a kappa, anywhere in the results tree (aggregates: the mean)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if "kappa" in str(k) and not isinstance(v, (dict, list)):
                yield f"{path}/{k}", v
            elif "kappa" in str(k) and isinstance(v, dict) and "mean" in v:
                yield f"{path}/{k}/mean", v["mean"]
            else:
                yield from _kappas(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _kappas(v, f"{path}/{i}")


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    if not WEBIS.is_file():
        pytest.skip(f"shared data not found at {WEBIS}")
    from curate.experiments.label_efficiency import main

    out = tmp_path_factory.mktemp("label_efficiency")
    assert main(["--quick", "--no-progress", "--data", str(WEBIS), "--out", str(out)]) == 0
    return out


def test_quick_mode_writes_every_output(quick: Path):
    res = json.loads((quick / "results.json").read_text())
    assert {"command", "date", "machine", "settings", "notes", "classes", "elapsed_s"} <= res.keys()
    s = res["settings"]
    assert s["quick"] and s["seeds"] == 1 and s["budgets"] == [100, 200] and s["n_items"] == 3000
    assert s["n_test"] == 600 and s["test_split_seed"] == 0 and s["selection"]["clusters_per_label"] == 20
    assert set(res["classes"]) == {"majority", "rare"}
    for pos, c in res["classes"].items():
        assert {"scout", "crowd", "gold_ceiling"} <= c["baselines"].keys()
        assert set(c["strategies"]) == {"boundary-pairs", "random", "uncertainty", "coreset"}
        assert set(c["sequential"]) == {"boundary-pairs", "random"}
        for name, curve in c["strategies"].items():
            rounds = curve["per_seed"][0]
            assert [r["n_labelled"] for r in rounds] == [100, 200], (pos, name)
            assert set(curve["aggregate"]) == {"100", "200"}
            assert all(0 <= r["positive_share"] <= 1 and 0 <= r["auroc"] <= 1 for r in rounds)
        # a sanity relation that can fail: all gold labels are not clearly worse than one crowd label each
        gold, crowd = c["baselines"]["gold_ceiling"]["kappa"], c["baselines"]["crowd"]["aggregate"]["kappa"]["mean"]
        assert gold >= crowd - 0.1, (pos, gold, crowd)
    kappas = list(_kappas(res["classes"]))
    assert len(kappas) > 50
    for where, k in kappas:
        assert k is not None and math.isfinite(k) and -1 <= k <= 1, where
    assert (quick / "embeddings.npy").is_file()


def test_quick_mode_report_and_plot(quick: Path):
    md = (quick / "results.md").read_text()
    assert "| condition | 100 expert labels | 200 expert labels |" in md
    for row in ("| boundary-pairs |", "| coreset |", "| crowd baseline (", "| gold ceiling (", "| scout (round 0"):
        assert row in md
    assert "Where boundary-pairs does and does not beat a baseline" in md and "proxy" in md.lower()
    png = (quick / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
