"""Each query strategy declares its own settings, registered beside it (issue 14): ``[selection.NAME]`` tables
validated by the strategy's model, the flat ``[selection]`` of earlier versions still loads, and a run started
with the flat form resumes (no model, no shared data)."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import tomli_w
from pydantic import Field

import curate.select
from curate.config import ProjectConfig, SelectionConfig, TaskConfig, load_config, settings_change_error
from curate.errors import CurateError
from curate.loop import check_settings
from curate.project import Project, init_project
from curate.select import STRATEGIES, Registered, Selection, StrategySettings, make_strategy

TASK = {"labels": ["no", "yes"], "positive": "yes", "prompt": "p"}

# [selection] as curate wrote it before the per-strategy tables (every flat key at its default).
OLD_FLAT = {"strategy": "boundary-margin", "cold_start": "typiclust", "cold_start_share": 1.0,
            "embedding_model": "bundled:all-MiniLM-L6-v2", "clusters": 50, "candidate_factor": 10.0,
            "cluster_seed": 0, "neighbours": 10, "min_mix": 0.1, "spread": "none", "typiclust_neighbours": 20,
            "min_cluster_size": 5, "by_label": True, "clusters_per_label": 20, "radius_quantile": 0.9,
            "overlap_scale": 1.0, "near_duplicate_distance": 0.05, "coverage": "size", "kmeans_iterations": 20}


def _write(folder, selection: dict) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "curate.toml").write_text(tomli_w.dumps({"task": TASK, "selection": selection}), encoding="utf-8")


def test_every_strategy_registers_a_settings_model_of_its_constructor_parameters():
    for name, (cls, settings) in STRATEGIES.items():
        assert cls.name == name and issubclass(settings, StrategySettings)
        params = inspect.signature(cls).parameters
        for field, info in settings.model_fields.items():
            assert field in params, (name, field)
            assert params[field].default == info.default, (name, field)  # the same defaults as the constructor


def test_flat_old_selection_loads_and_equals_the_tables(tmp_path):
    _write(tmp_path / "old", {**OLD_FLAT, "clusters": 7, "typiclust_neighbours": 3, "kmeans_iterations": 9})
    _write(tmp_path / "new", {"strategy": "boundary-margin",
                              "boundary-margin": {"clusters": 7, "kmeans_iterations": 9},
                              "cluster-margin": {"clusters": 7, "kmeans_iterations": 9},
                              "boundary-pairs": {"kmeans_iterations": 9},
                              "typiclust": {"typiclust_neighbours": 3, "kmeans_iterations": 9}})
    old, new = load_config(tmp_path / "old"), load_config(tmp_path / "new")
    assert old == new
    assert old.selection.params("boundary-margin")["clusters"] == 7
    assert old.selection.params("typiclust") == {"typiclust_neighbours": 3, "min_cluster_size": 5, "by_label": True,
                                                 "kmeans_iterations": 9}
    # the old defaults are the new ones, but for the cold start's share of the first round (1 then, 0.5 now)
    assert SelectionConfig.model_validate(OLD_FLAT) == SelectionConfig(cold_start_share=1.0)
    # A table entry wins over a flat key; the dump is the table form and reads back the same.
    both = SelectionConfig.model_validate({"clusters": 4, "cluster-margin": {"clusters": 6}})
    assert (both.params("boundary-margin")["clusters"], both.params("cluster-margin")["clusters"]) == (4, 6)
    dumped = both.model_dump(mode="json")
    assert "clusters" not in dumped and dumped["cluster-margin"]["clusters"] == 6
    assert SelectionConfig.model_validate(dumped) == both


def test_unknown_strategy_is_a_one_line_error_naming_the_field_and_the_known_names(tmp_path):
    _write(tmp_path, {"strategy": "entropy"})
    with pytest.raises(CurateError) as err:
        load_config(tmp_path)
    message = str(err.value)
    assert "\n" not in message and "field selection.strategy" in message and "'entropy'" in message
    assert all(name in message for name in STRATEGIES)


@pytest.mark.parametrize("selection, where", [
    ({"typiclust": {"neighbours": 3}}, "selection.typiclust.neighbours"),
    ({"boundary-margin": {"min_mix": 2}}, "selection.boundary-margin.min_mix"),
    ({"random": {"clusters": 3}}, "selection.random.clusters"),
    ({"no_such_key": 1}, "selection.no_such_key"),
])
def test_a_bad_key_in_a_strategy_table_is_a_one_line_error(tmp_path, selection, where):
    _write(tmp_path, selection)
    with pytest.raises(CurateError) as err:
        load_config(tmp_path)
    assert "\n" not in str(err.value) and f"field {where}:" in str(err.value)


class ToyStrategy:
    """The first ``budget`` unlabelled items, ``step`` apart."""

    name = "toy"

    def __init__(self, *, step: int = 1) -> None:
        self.step = step

    def query(self, *, scores, embeddings, labelled, budget, rng, threshold=0.5, expert_positive=None) -> Selection:
        free = np.flatnonzero(~labelled)[:: self.step][:budget]
        return Selection(free, np.arange(free.size), {"step": self.step})


class ToySettings(StrategySettings):
    step: int = Field(default=1, ge=1)


def test_a_registered_toy_strategy_is_selectable_and_its_settings_load(tmp_path, monkeypatch):
    monkeypatch.setitem(STRATEGIES, "toy", Registered(ToyStrategy, ToySettings))  # the one registry line
    _write(tmp_path, {"strategy": "toy", "toy": {"step": 3}})
    config = load_config(tmp_path)
    assert config.selection.strategy == "toy" and config.selection.params("toy") == {"step": 3}
    strategy = make_strategy("toy", **config.selection.params("toy"))
    chosen = strategy.query(scores=np.zeros(10), embeddings=np.zeros((10, 2)), labelled=np.zeros(10, dtype=bool),
                            budget=2, rng=np.random.default_rng(0))
    assert chosen.indices.tolist() == [0, 3]
    assert SelectionConfig.model_validate({"strategy": "toy", "step": 2}).params("toy") == {"step": 2}  # flat form
    _write(tmp_path / "bad", {"toy": {"step": 0}})
    with pytest.raises(CurateError, match="field selection.toy.step: Input should be greater than or equal to 1"):
        load_config(tmp_path / "bad")
    # (the file, written without cold_start_share, gets its LEGACY_DEFAULTS value; the change keeps it)
    changed = ProjectConfig.model_validate({"task": TASK, "selection": {"strategy": "toy", "toy": {"step": 4},
                                                                        "cold_start_share": 1.0}})
    assert settings_change_error(config, changed).startswith("this run started with selection.toy.step=3, now 4;")
    monkeypatch.delitem(STRATEGIES, "toy")
    assert "toy" not in curate.select.STRATEGIES
    with pytest.raises(ValueError, match="unknown query strategy 'toy'"):
        SelectionConfig(strategy="toy")


def _old_form(config: ProjectConfig) -> dict:
    """Settings as a run started before the tables stored them: every strategy's settings flat under selection."""
    data = config.model_dump(mode="json")
    flat = {k: v for k, v in data["selection"].items() if k not in STRATEGIES}
    for name in STRATEGIES:
        flat.update(data["selection"].get(name, {}))
    data["selection"] = {k: v for k, v in flat.items() if k in OLD_FLAT}
    assert set(data["selection"]) == set(OLD_FLAT)
    return data


def test_a_run_started_with_flat_settings_resumes(tmp_path):
    rows = [{"id": f"i{k}", "text": f"item number {k}", "label": ["no", "yes"][k % 3 == 0]} for k in range(12)]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    init_project(tmp_path / "p", pool, task=TaskConfig(**TASK, gold_field="label"))
    project = Project.open(tmp_path / "p")
    stored = _old_form(project.config)
    with project.store.transaction() as conn:
        project.store.set_meta(conn, "settings", stored)
    check_settings(project)  # the same settings in the old form: no change
    assert settings_change_error(ProjectConfig.model_validate(stored), project.config) is None
    # An old flat curate.toml of the same run loads to the same settings.
    def no_none(d):  # TOML has no null
        return {k: no_none(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}

    (project.path / "curate.toml").write_text(tomli_w.dumps(no_none(stored)), encoding="utf-8")
    assert load_config(project.path) == project.config
    # A real change of a strategy setting is still refused, by its table's name.
    selection = project.config.selection.model_copy(
        update={"tables": {**project.config.selection.tables,
                           "typiclust": project.config.selection.settings("typiclust").model_copy(
                               update={"min_cluster_size": 2})}})
    with pytest.raises(CurateError, match=r"selection.typiclust.min_cluster_size=5, now 2"):
        check_settings(Project(project.path, project.config.model_copy(update={"selection": selection})))
