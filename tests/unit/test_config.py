import pytest

from curate.config import ProjectConfig, TaskConfig, load_config, save_config
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
