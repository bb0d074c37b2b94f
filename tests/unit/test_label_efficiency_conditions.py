"""The label-efficiency condition grammar: ``STRATEGY@COLD:SHARE`` names the first round's cold-start share."""

from __future__ import annotations

import pytest

from curate.config import ProjectConfig, SelectionConfig, TaskConfig
from curate.experiments.label_efficiency import Condition, _run_config


TASK = {"labels": ["no", "yes"], "positive": "yes", "prompt": "a yes item", "gold_field": "label"}


def _config(cond: Condition, base: ProjectConfig | None = None) -> ProjectConfig:
    base = base or ProjectConfig(task=TaskConfig(**TASK))
    return _run_config(base, cond, seed=0, split_seed=0, rounds=2, round_size=100, student="proxy",
                       precision="fp32", expert_kappa=0.8, bootstrap=10)


def test_share_suffix_sets_cold_start_share_only():
    d = SelectionConfig()
    c = Condition.parse("default@typiclust:0.5")
    assert (c.strategy, c.cold_start, c.defaults, c.cold_start_share) == (d.strategy, "typiclust", True, 0.5)
    assert Condition.parse("default:0.25") == Condition("default:0.25", d.strategy, d.cold_start, "none",
                                                        defaults=True, cold_start_share=0.25)
    c = Condition.parse("boundary-margin@typiclust:0.5+scout")
    assert (c.strategy, c.cold_start, c.weak, c.defaults, c.cold_start_share) == (
        "boundary-margin", "typiclust", "scout", False, 0.5)
    sel = _config(Condition.parse("default@typiclust:0.5")).selection
    assert sel.model_dump(exclude={"cold_start_share"}) == SelectionConfig().model_dump(exclude={"cold_start_share"})
    assert sel.cold_start_share == 0.5
    assert _config(Condition.parse("uncertainty@coreset:1")).selection.cold_start_share == 1.0


def test_names_without_share_mean_what_they_meant():
    assert Condition.parse("default").cold_start_share is None
    assert Condition.parse("uncertainty@typiclust").cold_start_share is None
    assert _config(Condition.parse("default")).selection == SelectionConfig()
    # without :SHARE a non-default condition keeps the template's share
    base = ProjectConfig.model_validate({"task": TASK, "selection": {"cold_start_share": 0.3}})
    assert _config(Condition.parse("uncertainty@typiclust"), base).selection.cold_start_share == 0.3
    assert _config(Condition.parse("default"), base).selection.cold_start_share == SelectionConfig().cold_start_share


@pytest.mark.parametrize("bad, match", [
    ("default@typiclust:0", "must be a number in"), ("default@typiclust:1.5", "must be a number in"),
    ("default@typiclust:-0.5", "must be a number in"), ("default@typiclust:half", "must be a number in"),
    ("default@typiclust:", "must be a number in"), ("default@typiclust:nan", "must be a number in"),
    ("uncertainty:0.5", "needs a cold start"), ("uncertainty@none:0.5", "needs a cold start"),
])
def test_bad_shares_give_one_line_errors(bad: str, match: str):
    with pytest.raises(ValueError, match=match) as err:
        Condition.parse(bad)
    assert "\n" not in str(err.value)


def test_mix_suffix_sets_the_mixed_final_recipe_and_needs_a_weak_source():
    c = Condition.parse("default+crowd+mix")
    assert (c.weak, c.mixed, c.self_training) == ("crowd", True, False)
    base = ProjectConfig(task=TaskConfig(**TASK, crowd_field="judgments"))
    cfg = _config(c, base)
    assert cfg.loop.final_recipe == "mixed" and cfg.student.weak_labels == "crowd"
    assert _config(Condition.parse("default+crowd"), base).loop.final_recipe == "sequential"
    with pytest.raises(ValueError, match=r"\+mix mixes weak labels into the final model: name a weak source"):
        Condition.parse("default+mix")
    with pytest.raises(ValueError, match="unknown weak source"):
        Condition.parse("default+crowd+mix+mix")


@pytest.mark.parametrize("student, reused", [("proxy", False), ("finetune", True)])
def test_results_recorded_before_proxy_expert_weight_are_reused_only_where_it_does_nothing(student, reused):
    """A results file written before student.proxy_expert_weight existed ran the proxy with the earlier rule (0): its
    proxy runs are not taken for runs at the new default (4); its fine-tuned runs are (the setting is the proxy's)."""
    import dataclasses

    from curate.experiments.label_efficiency import reusable_runs

    cond = Condition.parse("default+crowd")
    cfg = _run_config(ProjectConfig(task=TaskConfig(**TASK, crowd_field="votes")), cond, seed=0, split_seed=0,
                      rounds=2, round_size=100, student=student, precision="fp32", expert_kappa=0.8, bootstrap=10)
    settings = {"pool": "p", "n_items": 10, "labels": ["no", "yes"], "positive": "yes", "gold_field": "label",
                "crowd_field": "votes", "budgets": [100, 200], "round_size": 100, "rounds": 2, "student": student,
                "split_seed": 0, "expert_kappa": 0.8, "experts_per_item": 2, "bootstrap": 10, "precision": "fp32",
                "conditions": [dataclasses.asdict(cond)], "config": cfg.model_dump(mode="json"),
                "selection_by_condition": {cond.name: cfg.selection.model_dump(mode="json")}}
    old_config = cfg.model_dump(mode="json")
    del old_config["student"]["proxy_expert_weight"]  # as written before the setting existed
    previous = {"settings": {**settings, "config": old_config}, "date": "2026-12-06",
                "runs": {"default+crowd": [{"seed": 0, "kappa": [0.5]}]}}
    runs, why, _ = reusable_runs(previous, settings)
    assert (len(runs) == 1) == reused
    assert reused or why == "student.proxy_expert_weight was 0.0, now 4.0"


def test_results_recorded_before_each_condition_selection_rerun_only_the_cold_start_conditions():
    """Results written before ``selection_by_condition`` was recorded, when the default cold-start share was 1: after
    the default became 0.5, ``uncertainty`` (no cold start, the template's [selection]) is reused; ``default`` (its
    runs used curate's defaults of the day, not recorded) and ``uncertainty@typiclust`` (share 1, now 0.5) run again."""
    import dataclasses

    from curate.experiments.label_efficiency import reusable_runs

    conds = [Condition.parse(n) for n in ("uncertainty", "default", "uncertainty@typiclust")]
    base = ProjectConfig(task=TaskConfig(**TASK))

    def settings_for(share: float, record: bool) -> dict:
        cfg = base.model_copy(update={"selection": base.selection.model_copy(update={"cold_start_share": share})})
        run = {c.name: _run_config(cfg, c, seed=0, split_seed=0, rounds=2, round_size=100, student="finetune",
                                   precision="fp32", expert_kappa=0.8, bootstrap=10) for c in conds}
        out = {"pool": "p", "n_items": 10, "labels": ["no", "yes"], "positive": "yes", "gold_field": "label",
               "crowd_field": None, "budgets": [100, 200], "round_size": 100, "rounds": 2, "student": "finetune",
               "split_seed": 0, "expert_kappa": 0.8, "experts_per_item": 2, "bootstrap": 10, "precision": "fp32",
               "conditions": [dataclasses.asdict(c) for c in conds],
               "config": run["uncertainty"].model_dump(mode="json")}
        if record:
            out["selection_by_condition"] = {n: r.selection.model_dump(mode="json") for n, r in run.items()}
        return out

    previous = {"settings": settings_for(1.0, record=False), "date": "2026-12-06",
                "runs": {c.name: [{"seed": 0, "kappa": [0.5]}] for c in conds}}
    runs, why, refused = reusable_runs(previous, settings_for(0.5, record=True))
    assert why is None and set(runs) == {("uncertainty", 0)}
    assert refused == {"default": "the earlier results do not record this condition's [selection] settings",
                       "uncertainty@typiclust": "selection.cold_start_share was 1.0, now 0.5"}
    # recorded condition by condition, the same share is reused everywhere
    previous["settings"] = settings_for(0.5, record=True)
    runs, why, refused = reusable_runs(previous, settings_for(0.5, record=True))
    assert why is None and len(runs) == 3 and refused == {}
