"""`curate experiment label-efficiency` end to end on a Webis slice: conditions run through the real loop (proxy
student), results written, a rerun resumes every finished run, bad input gets one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, webis_rows

N_ITEMS = 1500
ARGS = ["--labels", "no-clickbait,clickbait", "--positive", "clickbait", "--gold-field", "label",
        "--crowd-field", "judgments", "--prompt-file", str(REPO / "examples" / "webis" / "policy.txt"),
        "--seed-examples", str(REPO / "examples" / "webis" / "seed_examples.json"), "--prior", "0.25",
        "--conditions", "default,uncertainty,random,crowd-all,uncertainty+crowd", "--student", "proxy",
        "--seeds", "2", "--budgets", "40,80", "--round-size", "40", "--no-progress"]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("label_efficiency")
    pool = root / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in webis_rows(N_ITEMS)), encoding="utf-8")
    out = root / "out"
    proc = run_cli("experiment", "label-efficiency", "--pool", pool, "--out", out, *ARGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_every_condition_and_seed_ran_the_loop(experiment: Path):
    res = json.loads((experiment / "results.json").read_text())
    assert {"command", "date", "machine", "settings", "runs", "summary", "elapsed_s"} <= res.keys()
    s = res["settings"]
    assert s["student"] == "proxy" and s["budgets"] == [40, 80] and s["seeds"] == 2 and s["split_seed"] == 0
    assert s["precision"] in ("bf16", "fp32") and res["machine"]["precision"] == s["precision"]
    assert s["config"]["loop"]["stop_at_ceiling"] is False and s["config"]["selection"]["strategy"]
    for cond, seeds in res["runs"].items():
        assert [r["seed"] for r in seeds] == [0, 1], cond
        for run in seeds:
            labelled = [r["n_labelled"] for r in run["rounds"]]
            assert labelled == ([0] if cond == "crowd-all" else [0, 40, 80]), (cond, labelled)
            for r in run["rounds"]:
                assert r["kappa"] is not None and -1 <= r["kappa"] <= 1
            if cond != "crowd-all":
                assert run["final"]["items"] == 80 and -1 <= run["final"]["kappa"] <= 1
    # the weak stage is priced: one crowd label per pool item at $0.10; both crowd conditions share its model
    weak = res["runs"]["crowd-all"][0]["weak"]
    assert weak["source"] == "crowd" and weak["cost"] == pytest.approx(0.10 * weak["weak_labels"])
    assert 1000 < weak["weak_labels"] <= N_ITEMS * 0.8
    assert (res["runs"]["crowd-all"][0]["rounds"][0]["kappa"]
            == res["runs"]["uncertainty+crowd"][0]["rounds"][0]["kappa"])
    # the expert-only runs start from the scout, the same for every condition and seed (one test split)
    scouts = {run["rounds"][0]["kappa"] for c in ("default", "uncertainty", "random") for run in res["runs"][c]}
    assert len(scouts) == 1


def test_paired_verdicts_and_report(experiment: Path):
    res = json.loads((experiment / "results.json").read_text())
    paired = res["summary"]["paired"]["default"]["uncertainty"]
    for b in ("40", "80"):
        d = paired[b]
        assert d["n"] == 2 and d["verdict"] in ("above", "level", "below") and d["low"] <= d["mean"] <= d["high"]
        own = [next(r["kappa"] for r in run["rounds"] if r["n_labelled"] == int(b)) for run in res["runs"]["default"]]
        ref = [next(r["kappa"] for r in run["rounds"] if r["n_labelled"] == int(b)) for run in res["runs"]["uncertainty"]]
        assert math.isclose(d["mean"], sum(o - r for o, r in zip(own, ref)) / 2, abs_tol=1e-9)
    md = (experiment / "results.md").read_text()
    assert "| condition | 0 | 40 | 80 | final model (all labels) |" in md and "### Against `uncertainty`" in md
    assert "| crowd-all | " in md and "Weak labels and their price" in md and "Round 1 against round 0" in md
    png = (experiment / "learning_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_rerun_resumes_finished_runs_and_bad_input_is_one_line(experiment: Path, tmp_path: Path):
    before = json.loads((experiment / "results.json").read_text())
    pool = Path(before["settings"]["pool"])
    again = run_cli("experiment", "label-efficiency", "--pool", pool, "--out", experiment, *ARGS)
    assert again.returncode == 0, again.stderr[-2000:]
    after = json.loads((experiment / "results.json").read_text())
    assert after["runs"] == before["runs"]  # every run was already complete: nothing recomputed differently
    assert after["elapsed_s"] < before["elapsed_s"]

    bad = run_cli("experiment", "label-efficiency", "--pool", pool, "--out", tmp_path / "x",
                  *[a if a != "default,uncertainty,random,crowd-all,uncertainty+crowd" else "margn" for a in ARGS])
    assert bad.returncode == 2 and "unknown query strategy 'margn'" in bad.stderr and "Traceback" not in bad.stderr
    missing = run_cli("experiment", "label-efficiency", "--out", tmp_path / "y", "--student", "proxy")
    assert missing.returncode == 2 and "--project" in missing.stderr
    # the work folder keeps the precision its embeddings were made in
    recorded = before["settings"]["precision"]
    other = "fp32" if recorded == "bf16" else "bf16"
    clash = run_cli("experiment", "label-efficiency", "--pool", pool, "--out", experiment, *ARGS, "--precision", other)
    assert clash.returncode == 2 and len(clash.stderr.strip().splitlines()) == 1, clash.stderr[-2000:]
    assert f"its embeddings and runs were made in {recorded}; give --precision {recorded}" in clash.stderr
    assert json.loads((experiment / "results.json").read_text())["runs"] == before["runs"]
    # a run folder made with other settings is not resumed as if it had the new ones (here the simulated experts'
    # kappa; the same holds when a default changed since the folder was made)
    other = run_cli("experiment", "label-efficiency", "--pool", pool, "--out", experiment, *ARGS, "--no-reuse",
                    "--expert-kappa", "0.7")
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1, other.stderr[-2000:]
    assert "this run was made with oracle.expert_kappa=0.8, now 0.7; give another --work folder" in other.stderr
    assert json.loads((experiment / "results.json").read_text())["runs"] == before["runs"]


def test_more_seeds_reuse_the_recorded_runs(experiment: Path, tmp_path: Path):
    """`--seeds 3` after a 2-seed run takes seeds 0 and 1 from results.json (their run projects deleted) and runs
    seed 2 only; the results say which runs were reused and from which date."""
    import shutil

    before = json.loads((experiment / "results.json").read_text())
    out = tmp_path / "out"
    shutil.copytree(experiment, out, ignore=shutil.ignore_patterns("runs"))
    shutil.copytree(experiment / "runs" / "template", out / "runs" / "template")
    args = [a if a != "default,uncertainty,random,crowd-all,uncertainty+crowd" else "uncertainty,random" for a in ARGS]
    args[args.index("--seeds") + 1] = "3"
    proc = run_cli("experiment", "label-efficiency", "--pool", before["settings"]["pool"], "--out", out, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reusing 4 run(s)" in proc.stdout
    after = json.loads((out / "results.json").read_text())
    for cond in ("uncertainty", "random"):
        assert [r["seed"] for r in after["runs"][cond]] == [0, 1, 2]
        assert after["runs"][cond][:2] == before["runs"][cond]
        assert not (out / "runs" / cond / "seed0").exists() and (out / "runs" / cond / "seed2").is_dir()
    assert sorted((r["condition"], r["seed"]) for r in after["reused"]) == [
        ("random", 0), ("random", 1), ("uncertainty", 0), ("uncertainty", 1)]
    # each reused run carries the date of the results that ran it (an earlier rerun may have reused it already)
    ran = {(r["condition"], r["seed"]): r["date"] for r in before.get("reused") or []}
    dates = {(r["condition"], r["seed"]): r["date"] for r in after["reused"]}
    assert dates == {k: ran.get(k, before["date"]) for k in dates}
    assert all(f"from the results written {d}" in (out / "results.md").read_text() for d in set(dates.values()))


def test_reuse_refuses_other_settings(experiment: Path):
    from curate.experiments.label_efficiency import reusable_runs

    res = json.loads((experiment / "results.json").read_text())
    same, why, refused = reusable_runs(res, res["settings"])
    assert why is None and len(same) == 5 * 2 and refused == {}
    other = json.loads(json.dumps(res["settings"]))
    other["expert_kappa"] = 0.7
    assert reusable_runs(res, other) == ({}, "expert_kappa was 0.8, now 0.7", {})
    other = json.loads(json.dumps(res["settings"]))
    other["config"]["student"]["learning_rate"] = 1e-4
    runs, why, _ = reusable_runs(res, other)
    assert runs == {} and why.startswith("student.learning_rate was")
    # a condition defined differently under the same name is run again, the others are reused
    other = json.loads(json.dumps(res["settings"]))
    next(c for c in other["conditions"] if c["name"] == "random")["cold_start"] = "typiclust"
    runs, why, refused = reusable_runs(res, other)
    assert why is None and {c for c, _ in runs} == {"default", "uncertainty", "crowd-all", "uncertainty+crowd"}
    assert refused == {"random": "the condition is defined differently"}
    # a setting only a cold start reads (its share of round 1) runs the conditions with a cold start again
    other = json.loads(json.dumps(res["settings"]))
    other["selection_by_condition"]["default"]["cold_start_share"] = 0.25
    other["selection_by_condition"]["uncertainty"]["cold_start_share"] = 0.25
    runs, why, refused = reusable_runs(res, other)
    assert why is None and refused == {"default": "selection.cold_start_share was 0.5, now 0.25"}
    assert {c for c, _ in runs} == {"uncertainty", "random", "crowd-all", "uncertainty+crowd"}
    # results written before a condition field existed (here +self, self_training) stand for its default
    older = json.loads(json.dumps(res))
    for c in older["settings"]["conditions"]:
        del c["self_training"]
    runs, why, _ = reusable_runs(older, res["settings"])
    assert why is None and len(runs) == 5 * 2
    # a run the earlier results had reused themselves keeps the date of the results that ran it
    chained = json.loads(json.dumps(res))
    chained["reused"] = [{"condition": "random", "seed": 0, "date": "2026-01-01T00:00:00+00:00"}]
    runs, why, _ = reusable_runs(chained, res["settings"])
    assert why is None and runs["random", 0][1] == "2026-01-01T00:00:00+00:00" and runs["random", 1][1] == res["date"]


def test_condition_names_parse_weak_sources_and_self_training():
    from curate.experiments.label_efficiency import Condition

    c = Condition.parse("default+crowd+self")
    assert (c.weak, c.self_training, c.defaults) == ("crowd", True, True)
    c = Condition.parse("uncertainty+self")
    assert (c.strategy, c.weak, c.self_training) == ("uncertainty", "none", True)
    assert Condition.parse("uncertainty+scout").self_training is False
    for bad in ("default+self+self", "default+crowd+scout", "default+teacher"):
        with pytest.raises(ValueError, match="unknown weak source"):
            Condition.parse(bad)


def test_self_trained_final_models_get_their_own_table(experiment: Path, tmp_path: Path):
    """A +self run records its teacher's kappa; results.md pairs it with the self-trained model, run by run."""
    from curate.experiments.label_efficiency import write_markdown

    res = json.loads((experiment / "results.json").read_text())
    assert "Self-trained final models" not in (experiment / "results.md").read_text()
    for i, run in enumerate(res["runs"]["default"]):
        run["final"]["teacher_kappa"] = run["final"]["kappa"] - 0.01 * (i + 1)
    write_markdown(res, tmp_path / "results.md")
    text = (tmp_path / "results.md").read_text()
    table = text.split("### Self-trained final models", 1)[1]
    row = next(line for line in table.splitlines() if line.startswith("| default | "))
    assert row.endswith("(2/2) |")
    assert "+0.015 [" in row  # differences 0.01 and 0.02: mean +0.015, both seeds won


def test_mixed_final_models_get_their_own_table(experiment: Path, tmp_path: Path):
    """A +mix run records the sequential recipe's kappa; results.md pairs it with the mixed model, run by run."""
    from curate.experiments.label_efficiency import write_markdown

    res = json.loads((experiment / "results.json").read_text())
    assert "Mixed final models" not in (experiment / "results.md").read_text()
    for i, run in enumerate(res["runs"]["default"]):
        run["final"]["sequential_kappa"] = run["final"]["kappa"] + 0.02 * (i + 1)
    write_markdown(res, tmp_path / "results.md")
    table = (tmp_path / "results.md").read_text().split("### Mixed final models", 1)[1]
    row = next(line for line in table.splitlines() if line.startswith("| default | "))
    assert row.endswith("(0/2) |") and "-0.030 [" in row  # the sequential recipe ahead by 0.02 and 0.04
