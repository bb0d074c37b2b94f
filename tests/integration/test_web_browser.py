"""A real browser (Debian's Chromium, driven by Playwright) signs in, labels 10 items by keyboard, undoes one,
and the database is checked. Screenshots of the labelling and admin pages are saved (and, with
CURATE_UPDATE_SCREENSHOTS=1, copied to docs/ where they are committed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from curate.project import Project
from tests.conftest import LABELS, REPO
from tests.integration.test_web_api import (  # noqa: F401  (fixtures)
    PROMPT,
    label_until_done,
    project,
    selected_ids,
    start_server,
    tokens,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _annotations(project: Path) -> list[dict]:
    store = Project.open(project).store
    try:
        return store.annotations()
    finally:
        store.close()


def test_sign_in_label_ten_by_keyboard_undo_one(project, start_server, browser, tmp_path):  # noqa: F811
    server = start_server(project)
    tok = tokens(project, "alice")["alice"]
    admin = tokens(project, "boss", admin=True)["boss"]
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(server.url + "/")
    page.fill("#token", tok)
    page.click("#signin")
    page.wait_for_url("**/label")
    # The page's markup carries data-item-id="" until the first /api/next answer is shown; wait for a real id.
    page.wait_for_function("() => !!document.querySelector('#item')?.dataset.itemId")
    assert PROMPT in page.inner_text("#prompt")

    given: list[tuple[str, str]] = []
    for k in range(10):
        item = page.get_attribute("#item", "data-item-id")
        key = "1" if k % 3 else "2"
        given.append((item, LABELS[int(key) - 1]))
        page.keyboard.press(key)
        page.wait_for_function(  # the next item is shown once the label was acknowledged
            "prev => document.querySelector('#item')?.dataset.itemId !== prev", arg=item
        )
    stored = {(a["item_id"], a["label"]) for a in _annotations(project) if a["annotator"] == "alice"}
    assert stored == set(given)

    page.keyboard.press("u")  # undo the last label: its item comes back
    page.wait_for_function("id => document.querySelector('#item')?.dataset.itemId === id", arg=given[-1][0])
    stored = {(a["item_id"], a["label"]) for a in _annotations(project) if a["annotator"] == "alice"}
    assert stored == set(given[:-1])
    assert set(selected_ids(project)) >= {i for i, _ in given}
    assert not errors, errors

    # A second expert labels the rest through the API, so the admin page has agreement and disagreements.
    import random

    acked: list = []
    with server.client(tokens(project, "bob")["bob"]) as bob:
        label_until_done(bob, random.Random(3), acked)
    assert acked

    shots = tmp_path / "shots"
    shots.mkdir()
    page.screenshot(path=str(shots / "labelling-page.png"))
    page.goto(server.url + "/")
    page.evaluate("() => localStorage.clear()")
    page.fill("#token", admin)
    page.click("#signin")
    page.wait_for_url("**/admin")
    page.wait_for_selector("#kappa-matrix")
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "admin-page.png"), full_page=True)
    for name in ("labelling-page.png", "admin-page.png"):
        assert (shots / name).stat().st_size > 10_000
        if os.environ.get("CURATE_UPDATE_SCREENSHOTS"):
            shutil.copy(shots / name, REPO / "docs" / name)
