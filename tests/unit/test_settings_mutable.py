"""Which settings may change mid-run, and which `curate run` options override which setting: declared once in
curate.config, and the resume check, its message and the command line derive from it (no model, no shared data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from curate.cli import app
from curate.config import (
    CLI_OPTIONS,
    MUTABLE,
    LoopConfig,
    ProjectConfig,
    TaskConfig,
    load_config,
    settings_change_error,
)
from curate.errors import CurateError
from curate.loop import RunResult, check_settings
from curate.project import Project, init_project

TASK = TaskConfig(labels=["no", "yes"], positive="yes", prompt="p")

# The settings that could change mid-run before the declaration moved into curate.config, plus the label-free stop.
BEFORE = {("loop", "rounds"), ("loop", "patience"), ("loop", "min_delta"), ("loop", "total_budget"),
          ("loop", "bootstrap"), ("student", "threads"), ("oracle", "seconds_per_label"), ("oracle", "kind"),
          ("oracle", "assignment_timeout_s"), ("student", "device"), ("scout", "device"), ("scout", "concurrency"),
          ("scout", "timeout_s"), ("scout", "api_key_env"), ("scout", "endpoint_url"), ("loop", "final_model"),
          ("loop", "final_cv_folds"), ("cost", "expert_label"), ("cost", "crowd_label"), ("cost", "scout_label")}
STABLE = {("loop", "stop_when_stable"), ("loop", "stable_kappa"), ("loop", "stable_window")}
# the final model's self-training (issue 11): a run may turn it on or off before its final step
FINAL = {("loop", "final_self_training"), ("loop", "self_training_items"), ("loop", "final_recipe"),
         ("loop", "final_expert_weight")}
BACKEND = {("student", "backend")}  # what scores with the student (issue 15); each round records which one did
# where the passes over every item run (issue 15, Ray Data): the same results either way
RUNTIME = {("runtime", "ray_address"), ("runtime", "ray_batch_size"), ("runtime", "ray_actors"),
           ("runtime", "ray_cpus_per_actor")}


def _with(config: ProjectConfig, section: str, **values) -> ProjectConfig:
    return config.model_copy(update={section: getattr(config, section).model_copy(update=values)})


def test_the_mutable_settings_are_the_declared_ones():
    assert MUTABLE == BEFORE | STABLE | BACKEND | RUNTIME | FINAL
    fields = {(s, name) for s, f in ProjectConfig.model_fields.items() if hasattr(f.annotation, "model_fields")
              for name in f.annotation.model_fields}
    assert MUTABLE <= fields


def test_change_of_a_mutable_setting_is_allowed_any_other_refused():
    old = ProjectConfig(task=TASK)
    assert settings_change_error(old, old) is None
    for section, key in sorted(MUTABLE):
        value = getattr(getattr(old, section), key)
        new_value = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v / 2,
                     str: lambda v: v + "x"}.get(type(value), lambda v: None)(value)
        if value is None:
            new_value = 3 if key in ("threads", "total_budget", "final_cv_folds", "ray_actors") else "x"
        if (section, key) == ("oracle", "kind"):
            new_value = "web"
        assert settings_change_error(old, _with(old, section, **{key: new_value})) is None, (section, key)
    message = settings_change_error(old, _with(old, "loop", seed=4))
    assert message.startswith("this run started with loop.seed=0, now 4; only ")
    assert message.endswith(" may change mid-run (start a new project to change it)")
    listed = message.split("; only ", 1)[1].removesuffix(" may change mid-run (start a new project to change it)")
    assert set(listed.split(", ")) == {f"{s}.{k}" for s, k in MUTABLE}
    # several changes: the first in sorted order is named; a top-level setting has no section
    both = _with(_with(old, "selection", strategy="random"), "loop", budget=5)
    assert settings_change_error(old, both).startswith("this run started with loop.budget=100, now 5;")
    db = old.model_copy(update={"database": "sqlite:///x.db"})
    assert settings_change_error(old, db).startswith("this run started with database=None, now 'sqlite:///x.db';")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    rows = [{"id": f"i{k}", "text": f"item number {k}", "label": ["no", "yes"][k % 3 == 0]} for k in range(12)]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    init_project(tmp_path / "p", pool, task=TASK.model_copy(update={"gold_field": "label"}))
    return Project.open(tmp_path / "p")


def _start(project: Project) -> None:
    """Record the settings as a started run does."""
    with project.store.transaction() as conn:
        project.store.set_meta(conn, "settings", project.config.model_dump(mode="json"))


def test_resume_check_on_a_project(project):
    check_settings(project)  # not started: anything goes
    _start(project)
    check_settings(Project(project.path, _with(project.config, "loop", rounds=9, stop_when_stable=True)))
    with pytest.raises(CurateError, match=r"/p: this run started with selection.strategy='boundary-margin', "
                                          r"now 'random'; only .*loop.rounds.* may change mid-run"):
        check_settings(Project(project.path, _with(project.config, "selection", strategy="random")))


def test_a_run_started_before_the_stable_settings_existed_resumes(project):
    """curate.toml files and stored settings written before `stop_when_stable` and friends still load and compare."""
    old = project.config.model_dump(mode="json")
    for key in ("stop_when_stable", "stable_kappa", "stable_window"):
        del old["loop"][key]
    with project.store.transaction() as conn:
        project.store.set_meta(conn, "settings", old)
    check_settings(project)
    text = (project.path / "curate.toml").read_text(encoding="utf-8")
    kept = [line for line in text.splitlines() if not line.startswith(("stop_when_stable", "stable_"))]
    (project.path / "curate.toml").write_text("\n".join(kept) + "\n", encoding="utf-8")
    loaded = load_config(project.path)
    assert loaded == project.config and loaded.loop.stop_when_stable is False


def test_a_run_started_before_proxy_expert_weight_existed_resumes_with_the_earlier_rule(project):
    """A project whose stored settings and curate.toml predate student.proxy_expert_weight resumes (both read as the
    earlier rule, LEGACY_DEFAULTS); one started at the new default may not switch to the earlier rule mid-run."""
    old = project.config.model_dump(mode="json")
    del old["student"]["proxy_expert_weight"]
    with project.store.transaction() as conn:
        project.store.set_meta(conn, "settings", old)
    text = (project.path / "curate.toml").read_text(encoding="utf-8")
    (project.path / "curate.toml").write_text(text.replace("proxy_expert_weight = 4.0\n", ""), encoding="utf-8")
    loaded = load_config(project.path)
    assert loaded.student.proxy_expert_weight == 0.0
    check_settings(Project(project.path, loaded))
    with project.store.transaction() as conn:
        project.store.set_meta(conn, "settings", project.config.model_dump(mode="json"))
    with pytest.raises(CurateError, match=r"student.proxy_expert_weight=4.0, now 0.0"):
        check_settings(Project(project.path, loaded))


def _run_command():
    return typer.main.get_command(app).commands["run"]


def test_every_declared_cli_option_is_an_option_of_run_and_back():
    options = {opt: p.name for p in _run_command().params for opt in p.opts if opt.startswith("--")}
    for option in CLI_OPTIONS:
        assert option in options, option
        assert options[option] == option.removeprefix("--").replace("-", "_")  # how `run` finds its value
    not_settings = {"--quiet"}
    assert set(options) - not_settings == set(CLI_OPTIONS)
    assert CLI_OPTIONS["--device"] == (("scout", "device"), ("student", "device"))
    assert CLI_OPTIONS["--rounds"] == (("loop", "rounds"),)


def test_run_applies_the_overrides_and_refuses_an_immutable_change(project, monkeypatch):
    import curate.loop

    seen: list[ProjectConfig] = []

    class FakeLoop:
        def __init__(self, proj, progress, log):
            seen.append(proj.config)

        def run(self):
            return RunResult(stop_reason="round limit: 9 rounds")

    monkeypatch.setattr(curate.loop, "Loop", FakeLoop)
    args = ["run", str(project.path), "--rounds", "9", "--device", "cuda:1", "--strategy", "random", "--seed", "5",
            "--student-kind", "proxy", "--total-budget", "40", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    config = seen[-1]
    assert (config.loop.rounds, config.scout.device, config.student.device) == (9, "cuda:1", "cuda:1")
    assert (config.selection.strategy, config.loop.seed, config.student.kind) == ("random", 5, "proxy")
    assert config.loop.total_budget == 40 and config.loop.budget == LoopConfig().budget  # not given: unchanged
    assert load_config(project.path) == config  # saved
    _start(Project.open(project.path))
    again = CliRunner().invoke(app, ["run", str(project.path), "--rounds", "10", "--device", "cpu", "--quiet"])
    assert again.exit_code == 0, again.output
    refused = CliRunner().invoke(app, ["run", str(project.path), "--seed", "6", "--quiet"])
    assert refused.exit_code == 2
    assert "this run started with loop.seed=5, now 6; only " in refused.output
