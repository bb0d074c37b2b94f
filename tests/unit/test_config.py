import pytest

from curate.config import ProjectConfig, TaskConfig, load_config, option_text, save_config, validate_config
from curate.errors import CurateError


def _task(**kw):
    base = dict(labels=["no", "yes"], positive="yes", prompt="p")
    return TaskConfig(**{**base, **kw})


def test_round_trip_and_field_errors(tmp_path):
    cfg = ProjectConfig(task=_task())
    save_config(tmp_path, cfg)
    assert load_config(tmp_path) == cfg
    text = (tmp_path / "curate.toml").read_text().replace("budget = 100", "budget = -3")
    (tmp_path / "curate.toml").write_text(text)
    with pytest.raises(CurateError, match=r"curate.toml: field loop.budget: .*greater than or equal to 1"):
        load_config(tmp_path)
    (tmp_path / "curate.toml").write_text("[task\n")
    with pytest.raises(CurateError, match="not valid TOML"):
        load_config(tmp_path)
    with pytest.raises(CurateError, match="not found"):
        load_config(tmp_path / "nowhere")


def test_task_validation():
    with pytest.raises(ValueError, match="not one of the labels"):
        _task(positive="maybe")
    with pytest.raises(ValueError, match="distinct"):
        _task(labels=["yes", "yes"])
    with pytest.raises(ValueError, match="seed_examples"):
        ProjectConfig(task=_task(), scout={"seed_examples": {"other": ["x"]}})


def test_an_invalid_setting_from_an_option_is_named_by_the_option():
    data = ProjectConfig(task=_task()).model_dump(mode="json")
    data["scout"]["prior"] = 25.0
    typed = {("scout", "prior"): option_text("--prior", 25.0), ("loop", "rounds"): option_text("--rounds", 3)}
    with pytest.raises(CurateError) as err:
        validate_config(data, "p/curate.toml", typed)
    assert str(err.value) == "--prior 25: must be more than 0 and less than 1 (a share: 0.25 for 25 %)"
    # the same value from the settings file names the file's field and the file
    with pytest.raises(CurateError, match=r"^p/curate.toml: field scout.prior: .* \(fix it in curate.toml\)$"):
        validate_config(data, "p/curate.toml", {("loop", "rounds"): "--rounds 3"})
    data["scout"]["prior"], data["oracle"]["kind"] = 0.25, "simulate"
    with pytest.raises(CurateError) as err:
        validate_config(data, "p/curate.toml", {("oracle", "kind"): option_text("--oracle", "simulate")})
    assert str(err.value) == "--oracle 'simulate': must be 'simulated' or 'web'"


def test_option_text_is_the_option_as_typed():
    assert option_text("--prior", 0.25) == "--prior 0.25"
    assert option_text("--prior", 25.0) == "--prior 25"
    assert option_text("--rounds", -1) == "--rounds -1"
    assert option_text("--strategy", "boundary") == "--strategy 'boundary'"
    assert option_text("--quiet", True) == "--quiet"


def test_weak_labels_auto_resolves_by_the_crowd_column_and_is_saved_resolved(tmp_path):
    task = dict(labels=["ok", "bad"], positive="bad", prompt="p")
    assert ProjectConfig(task=TaskConfig(**task)).student.weak_labels == "none"
    crowd = ProjectConfig(task=TaskConfig(**task, crowd_field="votes"))
    assert crowd.student.weak_labels == "crowd"
    off = ProjectConfig.model_validate({"task": {**task, "crowd_field": "votes"}, "student": {"weak_labels": "none"}})
    assert off.student.weak_labels == "none"
    save_config(tmp_path, crowd)
    assert 'weak_labels = "crowd"' in (tmp_path / "curate.toml").read_text()
    assert load_config(tmp_path).student.weak_labels == "crowd"


def test_a_curate_toml_written_before_a_setting_existed_keeps_what_it_did(tmp_path):
    """LEGACY_DEFAULTS: a project saved before student.proxy_expert_weight existed resumes with the earlier rule (0),
    and before selection.cold_start_share existed with the cold start choosing the whole first round (1); a project
    saved now keeps the new defaults (4, 0.5) through a save and a load."""
    save_config(tmp_path, ProjectConfig(task=_task()))
    text = (tmp_path / "curate.toml").read_text()
    assert "proxy_expert_weight = 4.0" in text and load_config(tmp_path).student.proxy_expert_weight == 4.0
    (tmp_path / "curate.toml").write_text(text.replace("proxy_expert_weight = 4.0\n", ""))
    assert load_config(tmp_path).student.proxy_expert_weight == 0.0
    # the cold start's share of the first round: 0.5 now, the whole first round (1.0) before the setting existed
    assert "cold_start_share = 0.5\n" in text
    (tmp_path / "curate.toml").write_text(text.replace("cold_start_share = 0.5\n", ""))
    assert load_config(tmp_path).selection.cold_start_share == 1.0
    (tmp_path / "curate.toml").write_text(text)
    assert load_config(tmp_path).selection.cold_start_share == 0.5
