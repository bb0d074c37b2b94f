"""What a newcomer meets first: the README's first screen says how to call `curate` after the set-up and where the
quickstart's data comes from, and the quickstart honours the variable that moves it."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_first_screen_says_how_to_call_curate_and_where_the_data_is():
    first_screen = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:24])
    setup = first_screen.index("bash scripts/setup.sh")
    for needed in ("source .venv/bin/activate", ".venv/bin/curate", "CURATE_DATA"):
        assert first_screen.find(needed, setup) > setup, f"{needed!r} not after the set-up command on the first screen"


def test_quickstart_reads_its_data_from_curate_data(tmp_path):
    where = tmp_path / "data"  # empty: the quickstart stops before it creates anything, naming the path it read
    proc = subprocess.run(["bash", "examples/webis/quickstart.sh", str(tmp_path / "projects")], cwd=REPO,
                          env={"PATH": "/usr/bin:/bin", "CURATE_DATA": str(where)}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"error: {where}/webis-clickbait-17/webis-clickbait-17.jsonl not found" in proc.stderr
    assert not (tmp_path / "projects").exists()
