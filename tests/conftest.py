"""Shared fixtures: paths to the real data sets in ../shared/data (never copied into the repo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data"))
WEBIS = SHARED_DATA / "webis-clickbait-17" / "webis-clickbait-17.jsonl"
RTE = SHARED_DATA / "snow-2008-rte" / "rte.standardized.csv"
LABELS = ["no-clickbait", "clickbait"]


def webis_rows(n: int | None = None) -> list[dict]:
    """The first ``n`` Webis rows (all when None)."""
    if not WEBIS.is_file():
        pytest.skip(f"shared data not found at {WEBIS}")
    rows = []
    with WEBIS.open(encoding="utf-8") as fh:
        for line in fh:
            rows.append(json.loads(line))
            if n is not None and len(rows) >= n:
                break
    return rows


@pytest.fixture
def webis_slice(tmp_path: Path):
    """Write the first ``n`` Webis lines to a JSONL file in tmp_path; returns its path."""

    def make(n: int, name: str = "pool.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in webis_rows(n)), encoding="utf-8")
        return path

    return make


def run_cli(*args: str, check: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m curate.cli ARGS`` in a real subprocess."""
    proc = subprocess.run(
        [sys.executable, "-m", "curate.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"curate {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh database URL: SQLite in tmp_path, or a new database on the test PostgreSQL server
    (``CURATE_TEST_PG_URL``, started by ``scripts/test-postgres.sh``; .ci/run sets it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'curate.db'}"
        return
    base = os.environ.get("CURATE_TEST_PG_URL")
    if not base:
        pytest.skip("CURATE_TEST_PG_URL is not set: start a server with `export CURATE_TEST_PG_URL=$(bash scripts/test-postgres.sh)`")
    import uuid

    from sqlalchemy import create_engine, text

    name = f"curate_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
