"""The README's "Your own data with your experts" walkthrough, run as a user would.

The commands are read from the section's ``bash`` block in README.md, so the README and this test cannot drift, and
each runs as a real ``curate`` subprocess in a folder that holds ``headlines.csv``: 80 Webis Clickbait 2017 headlines
from ../shared/data with only their text (no id, no gold, no crowd column). ``curate serve`` runs as a real server on
127.0.0.1; the experts sign in and label in a real Chromium (Debian's, driven by Playwright) by keyboard. Three
settings differ from the block, to keep the test under a minute: ``--budget 10``, ``--student-kind proxy --quiet`` on
every ``curate run``, and a free port for ``curate serve``.

Checked: the first run pauses saying how many labels, why and who can sign in; the labels exported are exactly the
ones clicked; the run resumes and stops; the final model folder exists; the report shows the model-expert kappa, the
experts' kappa (equal to scikit-learn's kappa of the two experts' clicks) and no gold figure.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest

from tests.conftest import LABELS, REPO, webis_rows
from tests.integration.test_web_api import free_port
from tests.integration.test_web_browser import browser  # noqa: F401  (fixture: Debian's Chromium, or a skip)

SECTION = "## Your own data with your experts"
N_ITEMS = 80
BUDGET = "10"  # the block's --budget, made small
RUN_EXTRA = ["--student-kind", "proxy", "--quiet"]  # every `curate run`: seconds per round instead of minutes


def readme_commands(readme: Path = REPO / "README.md") -> list[list[str]]:
    """The ``curate`` commands of the README section's first ``bash`` block, as argument lists without ``curate``.

    Continuation lines (a trailing backslash) are joined; comments and blank lines are dropped.

    Raises:
        AssertionError: the section or its block is missing, or a line is not a ``curate`` command.
    """
    text = readme.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text[text.index(SECTION):]
    start = section.index("```bash\n") + len("```bash\n")
    block = section[start:section.index("\n```", start)]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            assert words[0] == "curate", f"README block line is not a curate command: {line!r}"
            commands.append(words[1:])
    return commands


def with_option(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with ``option``'s value replaced by ``value``."""
    out = list(args)
    out[out.index(option) + 1] = value
    return out


def curate(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``curate ARGS`` as a subprocess in ``cwd`` (the venv's script, or ``python -m curate.cli``); fails the test
    on a non-zero exit."""
    script = Path(sys.executable).with_name("curate")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "curate.cli"]
    proc = subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, f"curate {shlex.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def expert_label(text: str, expert: str, first: bool) -> str:
    """The label an expert gives: a fixed rule of the text, which bob breaks on the first item he sees (so the
    experts' kappa is neither 1 nor undefined)."""
    k = zlib.crc32(text.encode("utf-8")) % 2
    if expert == "bob" and first:
        k = 1 - k
    return LABELS[k]


def label_in_browser(browser, url: str, token: str, expert: str) -> list[tuple[str, str, str]]:  # noqa: F811
    """One expert signs in with their token and labels by keyboard until the app has nothing left for them.

    Returns:
        ``(item_id, annotator, label)`` of every label the app acknowledged (the next item was shown).
    """
    context = browser.new_context(viewport={"width": 1100, "height": 760})  # a browser of their own
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/")
    page.fill("#token", token)
    page.click("#signin")
    page.wait_for_url("**/label")
    given: list[tuple[str, str, str]] = []
    while True:
        page.wait_for_function("() => !!document.querySelector('#item').dataset.itemId "
                               "|| !document.querySelector('#empty').hidden")
        item = page.get_attribute("#item", "data-item-id")
        if not item:
            break
        label = expert_label(page.inner_text("#text"), expert, first=not given)
        page.keyboard.press(str(LABELS.index(label) + 1))
        page.wait_for_function("prev => document.querySelector('#item').dataset.itemId !== prev", arg=item)
        given.append((item, expert, label))
    assert page.is_visible("#empty"), page.content()  # "Nothing left to label."
    assert not errors, errors
    context.close()
    return given


def wait_until_serving(proc: subprocess.Popen, url: str, log: Path) -> None:
    """Wait until ``curate serve`` answers on ``url`` (60 s at most)."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"curate serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"curate serve did not answer within 60 s:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


@pytest.mark.slow
def test_readme_walkthrough_own_data_with_experts(tmp_path: Path, browser):  # noqa: F811
    commands = readme_commands()
    assert [c[0] if c[0] != "annotators" else " ".join(c[:2]) for c in commands] == [
        "init", "annotators add", "annotators add", "run", "serve", "run", "run", "export", "report"]
    with (tmp_path / "headlines.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text"])
        writer.writerows([r["text"]] for r in webis_rows(N_ITEMS))

    started = time.monotonic()
    tokens: dict[str, str] = {}
    clicked: list[tuple[str, str, str]] = []
    outputs: list[str] = []
    server, serve_log, project = None, tmp_path / "serve.log", None
    try:
        for args in commands:
            if args[0] == "init":
                project = tmp_path / args[1]
            if args[0] == "run":
                if "--budget" in args:
                    args = with_option(args, "--budget", BUDGET)
                args = [*args, *RUN_EXTRA]
            if args[0] == "serve":
                port = str(free_port())
                url = f"http://127.0.0.1:{port}"
                script = Path(sys.executable).with_name("curate")
                cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "curate.cli"]
                with serve_log.open("wb") as fh:
                    server = subprocess.Popen([*cmd, *with_option(args, "--port", port)], cwd=tmp_path,
                                              stdout=fh, stderr=subprocess.STDOUT)
                wait_until_serving(server, url, serve_log)
                assert f"labelling app on {url}/" in serve_log.read_text()
                # The comment lines that follow in the block: each expert labels in their own browser.
                for expert in ("alice", "bob"):
                    clicked += label_in_browser(browser, url, tokens[expert], expert)
                continue
            proc = curate(args, tmp_path)
            print(f"$ curate {shlex.join(args)}\n{proc.stdout}", end="")
            outputs.append(proc.stdout)
            if args[:2] == ["annotators", "add"]:
                tokens[args[3]] = proc.stdout.strip().splitlines()[-1]
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)  # Ctrl-C, as the app's banner says
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
    elapsed = time.monotonic() - started
    print(f"walkthrough: {elapsed:.1f} s")

    init_out, _, _, first_run, resumed, stopped, export_out, report_out = outputs
    assert f"with {N_ITEMS} items" in init_out
    assert set(tokens) == {"alice", "bob"} and all(len(t) >= 32 for t in tokens.values())
    # The pause says how many labels, why, and who can label.
    assert "round 0: waiting for 20 labels: 10 items x 2 experts each (oracle.experts_per_item = 2" in first_run
    assert "`curate serve projects/headlines`" in first_run and "can sign in now: alice, bob" in first_run
    assert "warning" not in first_run

    # Each expert labelled every item of round 0 in the browser: 10 items x 2 experts.
    assert len(clicked) == 20 and len({(i, a) for i, a, _ in clicked}) == 20
    assert {a for _, a, _ in clicked} == {"alice", "bob"}
    items = sorted({i for i, _, _ in clicked})
    assert len(items) == 10

    # The resumed run trained and evaluated round 1 and waits on round 1's items; `--rounds 1` stopped it there and
    # trained the final model.
    assert "round 1: 10 items labelled; kappa vs experts (eval, 4 items)" in resumed
    assert "round 1: waiting for 20 labels" in resumed and "final model" not in resumed
    assert "stopped: round limit: 1 rounds" in stopped and "final model: 10 expert-labelled items" in stopped

    # The export holds exactly the clicked labels.
    assert "wrote 20 records to labels.csv" in export_out
    with (tmp_path / "labels.csv").open(encoding="utf-8", newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert {(r["item_id"], r["annotator"], r["label"]) for r in exported} == set(clicked)
    assert {r["kind"] for r in exported} == {"annotation"} and {r["round"] for r in exported} == {"0"}

    # The final model is saved where the README says.
    final = project / "rounds" / "final"
    assert (final / "model").is_dir() and any((final / "model").iterdir())
    final_metrics = json.loads((final / "metrics.json").read_text())
    assert final_metrics["items"] == 10 and final_metrics["cv"]["folds"] == 5 and "kappa_test" not in final_metrics

    # The experts' kappa is the one of their clicks (scikit-learn's, an independent reference).
    from sklearn.metrics import cohen_kappa_score

    by = {(i, a): lab for i, a, lab in clicked}
    expected = cohen_kappa_score([by[i, "alice"] for i in items], [by[i, "bob"] for i in items])
    r1 = json.loads((project / "rounds" / "r001" / "metrics.json").read_text())
    assert r1["expert_expert_kappa"] == pytest.approx(expected)
    assert "kappa_test" not in r1 and r1["eval_items"] == 4

    # The report: model-expert kappa on the curated eval set, the experts' kappa (the ceiling), no gold figure.
    assert "wrote projects/headlines/report/report.md" in report_out
    report = (project / "report" / "report.md").read_text(encoding="utf-8")
    assert "kappa vs experts (eval)" in report and "expert-expert" in report
    assert f"| 1 | student M_1 | 10 | 6 / 4 | {r1['kappa_eval']['kappa']:.3f}" in report
    assert f"| {expected:.3f} |" in report
    assert "kappa vs gold" not in report and "AUROC" not in report and "test split" not in report
    assert "cross-validated kappa vs the experts" in report
    for png in ("kappa.png", "positive_share.png", "time_per_stage.png"):
        assert (project / "report" / png).stat().st_size > 10_000


def test_waiting_message_explains_the_need_and_warns_without_annotators():
    """The pause's lines for the cases the walkthrough does not reach: no annotator, too few, a ceiling sample."""
    from curate.config import OracleConfig
    from curate.loop import waiting_message

    web = OracleConfig(kind="web")
    lines = waiting_message(0, [2] * 10, 20, web, Path("p"), [], registered=0)
    assert lines[0].startswith("round 0: waiting for 20 labels: 10 items x 2 experts each "
                               "(oracle.experts_per_item = 2")
    assert "`curate serve p`" in lines[1] and "can sign in now: nobody" in lines[1]
    assert lines[2] == ("warning: no annotator is registered yet, so nobody can label in the app: add each expert with "
                        "`curate annotators add p NAME` (it prints their sign-in token once); an item needs 2 "
                        "different experts, so add at least 2")
    assert "revoked or expired" in waiting_message(0, [2], 2, web, Path("p"), [], registered=3)[-1]
    assert waiting_message(0, [2], 1, web, Path("p"), ["alice"])[-1].startswith(
        "warning: only 1 annotator can sign in but an item needs 2 different experts: add 1 more")
    mixed = waiting_message(3, [2] * 5 + [1] * 5, 12, OracleConfig(kind="web", ceiling_share=0.5), Path("p"),
                            ["a", "b"])
    assert mixed[0].startswith("round 3: waiting for 12 more labels (15 in all): 5 items x 2 experts each and "
                               "5 items x 1 expert each (oracle.experts_per_item = 2 on a 50% sample")
    assert len(mixed) == 2  # enough annotators: no warning
    one = waiting_message(0, [1] * 4, 4, OracleConfig(kind="web", experts_per_item=1), Path("p"), ["a"])
    assert "ceiling, is not measured" in one[0] and len(one) == 2
