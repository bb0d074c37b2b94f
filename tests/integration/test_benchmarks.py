"""The benchmarks run end to end and report well-formed results: throughput.py --quick (real MiniLM, faiss, CLI),
soak.py --quick (kill -9 and resume) and web_load.py (the labelling app under 20 experts)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, WEBIS

pytestmark = pytest.mark.slow

SCRIPT = REPO / "benchmarks" / "throughput.py"
STAGES = {"score", "evaluate", "select", "label", "split", "train"}


def _numbers(x, path: str = "") -> list[tuple[str, float]]:
    """Every int/float in a JSON value, with its path."""
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return []
    if isinstance(x, (int, float)):
        return [(path, float(x))]
    items = x.items() if isinstance(x, dict) else enumerate(x)
    return [n for k, v in items for n in _numbers(v, f"{path}.{k}")]


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[dict, str, str]:
    """One ``--quick`` run into a temporary folder: (the JSON, the Markdown, stdout)."""
    if not WEBIS.is_file():
        pytest.skip(f"shared data not found at {WEBIS}")
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (json.loads((out / "throughput.json").read_text(encoding="utf-8")),
            (out / "throughput.md").read_text(encoding="utf-8"), proc.stdout)


def test_json_has_every_section_and_finite_positive_figures(quick):
    result, _, _ = quick
    for key in ("command", "date", "quick", "threads", "machine", "limits", "rates", "embedding_breakdown",
                "selection", "round", "targets", "load", "total_seconds"):
        assert key in result, key
    assert result["quick"] is True and "--quick" in result["command"]
    for key in ("cpu_model", "cores_usable", "memory_gib"):
        assert result["machine"][key]
    assert result["machine"]["memory_gib"] > 0

    bad = [(p, v) for p, v in _numbers(result) if not math.isfinite(v)]
    assert not bad, bad

    for limit in (result["limits"]["matmul"]["fp32"], result["limits"]["matmul"]["bf16"], result["limits"]["copy"]):
        assert limit["best"] == max(limit["start"]["best"], limit["end"]["best"]) > 0

    rates = {(r["stage"], r["precision"]): r for r in result["rates"]}
    assert set(rates) == {(s, p) for s in ("embedding", "scoring") for p in ("fp32", "bf16")}
    for r in rates.values():
        assert r["texts"] == 600
        assert r["items_per_s"] > 0 and r["gflop_per_s"] > 0 and r["fraction_of_peak"] > 0

    selection = {(r["strategy"], r["n_items"]): r for r in result["selection"]}
    assert set(selection) == {(s, 20_000) for s in ("boundary-margin", "typiclust", "boundary-pairs", "uncertainty", "random")}
    for r in selection.values():
        assert r["selected"] == 100 and r["seconds"] > 0
        assert r["peak_rss_bytes"] >= r["baseline_rss_bytes"] > 0
        assert r["bytes_floor"] > 0

    rnd = result["round"]
    assert rnd["pool_items"] == 600 and rnd["presentations"] == 32
    assert {s["step"] for s in rnd["stages"]} == STAGES
    assert all(s["seconds"] >= 0 for s in rnd["stages"]) and rnd["round_seconds"] > 0
    assert rnd["embedding"]["seconds"] > 0 and rnd["embedding"]["fraction_of_limit"] > 0
    assert "profile" in selection[("boundary-pairs", 20_000)]
    assert math.isclose(rnd["round_seconds"], sum(s["seconds"] for s in rnd["stages"]))

    assert len(result["targets"]) == 4
    for t in result["targets"]:
        assert {"target", "goal", "measured", "reached", "why"} <= set(t)
        if t["measured"] is None:  # the 1,000,000-item selection is not part of --quick
            assert t["reached"] is None and "1,000,000" in t["target"]
        else:
            assert t["measured"] > 0 and isinstance(t["reached"], bool)
            assert t["reached"] or t["why"]


def test_markdown_is_printed_and_has_the_tables(quick):
    result, markdown, stdout = quick
    assert markdown.strip() in stdout
    assert result["command"] in markdown and result["machine"]["cpu_model"] in markdown
    for heading in ("## Targets", "## Machine limits", "## Embedding and scoring rate", "## Selection",
                    "## One full round on Webis", "## How the estimates are made", "## Load from other processes"):
        assert heading in markdown
    assert "float16" in markdown and "dimension 384" in markdown
    blocks: list[list[str]] = [[]]
    for line in markdown.splitlines():
        if line.startswith("|"):
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    tables = [b for b in blocks if b]
    assert len(tables) >= 5
    for table in tables:  # a header, a separator, rows, all with the header's number of cells
        assert len(table) >= 3 and set(table[1]) <= set("|-")
        assert {line.count("|") for line in table} == {table[0].count("|")}


# -- benchmarks/soak.py and benchmarks/web_load.py -------------------------------------------------------------


def test_soak_quick_survives_kills_with_identical_results(tmp_path):
    """``soak.py --quick``: init and run killed with SIGKILL at random moments, then identical to the reference."""
    if not WEBIS.is_file():
        pytest.skip(f"shared data not found at {WEBIS}")
    out = tmp_path / "soak.md"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "soak.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    markdown = out.read_text(encoding="utf-8")
    assert markdown.strip() in proc.stdout
    summary = re.search(r"^\| (\d+) of `curate run` \(requested 3\) \+ (\d+) of `curate init` \(requested 2\) \| "
                        r"(\d+) \+ final model \| [^|]+ \| (\w+) \| \d+ \|$", markdown, re.M)
    assert summary, markdown
    run_kills, init_kills, rounds, same = summary.groups()
    assert int(run_kills) >= 1 and int(init_kills) >= 0 and int(rounds) == 3 and same == "yes"
    compared = markdown.split("## Compared")[1].split("##")[0]
    rows = [line for line in compared.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    for what in ("annotations", "selections", "splits", "completed steps", "round 0 metrics", "round 2 metrics",
                 "final model metrics", "scores and models", "embeddings", "killed inits cleaned up"):
        assert any(row.startswith(f"| {what} |") for row in rows), what
    assert all(row.endswith("| yes |") for row in rows), rows


def test_web_load_reports_requests_errors_and_latency(tmp_path):
    """``web_load.py`` on a small round: 20 experts, every request answered, the store exactly as acknowledged."""
    if not WEBIS.is_file():
        pytest.skip(f"shared data not found at {WEBIS}")
    figures = tmp_path / "web_load.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "web_load.py"), "--items", "24", "--double", "8",
                           "--json", str(figures)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(figures.read_text(encoding="utf-8"))
    assert result["experts"] == 20 and result["labels_needed"] == 32 == result["labels_stored"]
    assert result["requests"] == 2 * 32 + 20  # next + annotate per label, then one empty next per expert
    assert result["errors_4xx"] == result["errors_5xx"] == result["no_answer"] == 0
    assert result["acked_equals_stored"] and result["duplicate_pairs"] == result["items_over_need"] == 0
    assert 0 < result["routes"]["all"]["p50_ms"] <= result["routes"]["all"]["p95_ms"]
    assert "| requests | errors 4xx | errors 5xx |" in proc.stdout
