"""`curate ... --help` as a user reads it: every option's text is shown whole, on/off flags take no value."""

import typer
from typer.testing import CliRunner

from curate.cli import app

WIDTH = 250  # wide enough that no option's help wraps


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": str(WIDTH)}, terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output


def _option_line(text: str, option: str) -> str:
    lines = [line for line in text.splitlines() if line.strip("│ *").startswith(f"{option} ")]
    assert lines, f"{option} not in the help:\n{text}"
    return lines[0]


def _commands(group, prefix: tuple[str, ...] = ()):
    """Every command and sub-command of a click group, as the words that call it."""
    for name, command in group.commands.items():
        yield prefix + (name,)
        if hasattr(command, "commands"):  # a group (typer may bring its own copy of click's classes)
            yield from _commands(command, prefix + (name,))


def test_no_command_shows_a_value_placeholder_for_an_on_off_flag():
    commands = list(_commands(typer.main.get_command(app)))
    assert {("run",), ("init",), ("annotators", "add"), ("experiment", "label-efficiency")} <= set(commands)
    for command in commands:
        text = _help(*command)
        assert "<bool>" not in text, f"curate {' '.join(command)} --help:\n{text}"
    quiet = _option_line(_help("run"), "--quiet")
    assert quiet.split("--quiet", 1)[1].strip().startswith("No progress:"), quiet
    assert "<str>" in _option_line(_help("run"), "--oracle")  # options that take a value keep their placeholder


def test_run_help_names_both_oracles():
    oracle = _option_line(_help("run"), "--oracle")
    assert "simulated" in oracle and "web" in oracle and "curate serve" in oracle


def test_init_help_shows_the_seed_examples_json_shape():
    line = _option_line(_help("init"), "--seed-examples")
    assert '{"LABEL": ["example text", ...], ...}' in line, line
