"""What a run leaves for its users, after a tiny real run (proxy student, own small pool): strict JSON metrics, and a
report whose plots keep their legends off the points and count rounds in whole numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from curate.config import TaskConfig
from curate.loop import Loop
from curate.project import Project, init_project
from curate.report import (plot_kappa, plot_positive_share, plot_stage_times, round_metrics, stage_seconds,
                           write_report)

LABELS = ["benign", "positive"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    """Two rounds on a pool whose gold is all ``benign``: the test split has one class, so its AUROC is undefined
    (NaN) in every round."""
    tmp = tmp_path_factory.mktemp("outputs")
    rows = [{"id": f"i{k}", "text": f"item number {k}", "label": "benign"} for k in range(30)]
    pool = tmp / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    task = TaskConfig(labels=LABELS, positive="positive", prompt="a positive item", gold_field="label")
    init_project(tmp / "p", pool, task=task, overrides={"scout": {"prior": 0.2}, "student": {"kind": "proxy"},
                                                       "loop": {"rounds": 2, "budget": 4, "bootstrap": 10}})
    Loop(Project.open(tmp / "p"), progress=False, log=lambda s: None).run()
    return Project.open(tmp / "p")


def _refuse(name: str):
    raise ValueError(f"not strict JSON: {name}")


def test_metrics_json_is_strict_json(project):
    files = sorted((project.path / "rounds").rglob("metrics.json"))
    assert len(files) >= 3  # rounds 0..2 and the final model
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse)
        assert "auroc_test" in data and data["auroc_test"] is None  # undefined: null, not NaN


def test_compared_runs_are_a_list_one_line_per_round(project, tmp_path):
    report = write_report(project, tmp_path / "report", [project]).read_text(encoding="utf-8")
    section = report.split("## Compared runs", 1)[1].split("\n\n![", 1)[0].strip().splitlines()
    rounds = round_metrics(project)
    run = [line for line in section if line.startswith("- ")]
    assert run == [f"- `boundary-margin ({project.path.name})`:"]
    items = [line for line in section if line.startswith("  - ")]
    assert [line.split(":")[0] for line in items] == [f"  - {m['items_labelled']} items" for m in rounds]
    assert all(len(line) < 100 for line in section)


def _outside_axes(fig) -> None:
    """The legend lies right of the axes, inside the figure (as saved: the layout is fixed before saving)."""
    canvas = FigureCanvasAgg(fig)  # the closed figure gets a canvas again, to measure it
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    legend, frame = ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer)
    assert legend.x0 >= frame.x1, "the legend overlaps the axes (and may cover the last points)"
    assert legend.x1 <= fig.bbox.x1 + 1, "the legend is cut off by the figure's edge"


def test_legends_sit_beside_the_axes_and_rounds_are_whole(project, tmp_path):
    metrics = round_metrics(project)
    share = plot_positive_share(project, metrics, tmp_path / "share.png")
    _outside_axes(share)
    ax = share.axes[0]
    low, high = ax.get_xlim()
    shown = [x for x in ax.get_xticks() if low <= x <= high]
    assert shown and all(float(x).is_integer() for x in shown)
    _outside_axes(plot_kappa(project, metrics, tmp_path / "kappa.png", [project]))
    _outside_axes(plot_stage_times(stage_seconds(project), tmp_path / "time.png"))
    assert all(Path(tmp_path / name).stat().st_size > 0 for name in ("share.png", "kappa.png", "time.png"))
