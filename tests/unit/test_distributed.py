"""The Ray setting without a cluster (issue 15): nothing but the Ray path imports ray; a malformed address is refused
by the option that gave it; an address where no cluster listens fails in one line, within seconds."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.config import RuntimeConfig, TaskConfig, validate_config
from curate.errors import CurateError
from curate.project import init_project
from tests.conftest import run_cli


def test_curate_imports_ray_only_on_the_ray_path():
    code = ("import sys, curate.cli, curate.loop, curate.config, curate.distributed; "
            "print('ray' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False"]


def test_the_address_setting_is_checked_when_the_settings_are_read():
    task = {"labels": ["no", "yes"], "positive": "yes", "prompt": "p"}
    for good in ("auto", "127.0.0.1:6379", "head-node.example:6379", "ray://10.0.0.5:10001"):
        assert validate_config({"task": task, "runtime": {"ray_address": good}}, "x").runtime.ray_address == good
    for off in ("off", "none", ""):
        assert validate_config({"task": task, "runtime": {"ray_address": off}}, "x").runtime.ray_address is None
    with pytest.raises(CurateError) as err:
        validate_config({"task": task, "runtime": {"ray_address": "localhost"}}, "P/curate.toml",
                        {("runtime", "ray_address"): "--ray 'localhost'"})
    assert str(err.value) == ("--ray 'localhost': must be auto, HOST:PORT (what `ray start --head` prints, e.g. "
                              "127.0.0.1:6379) or ray://HOST:PORT")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_without_a_cluster_fails_in_one_line(monkeypatch):
    from curate.distributed import connect

    port = _closed_port()
    start = time.monotonic()
    with pytest.raises(CurateError) as err:
        connect(RuntimeConfig(ray_address=f"127.0.0.1:{port}"))
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"runtime.ray_address (--ray) = '127.0.0.1:{port}': no Ray "
                                                      "cluster answers there (")
    assert "`ray start --head`" in message and "--ray auto" in message
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")  # auto joins RAY_ADDRESS when it is set
    with pytest.raises(CurateError, match=r"= 'auto' and RAY_ADDRESS = '127\.0\.0\.1:\d+': no Ray cluster answers"):
        connect(RuntimeConfig(ray_address="auto"))


def test_curate_run_with_a_wrong_address_stops_before_any_work(tmp_path: Path):
    rows = [{"id": f"i{k}", "text": f"item number {k}", "label": ["no", "yes"][k % 3 == 0]} for k in range(12)]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    project = tmp_path / "p"
    init_project(project, pool, task=TaskConfig(labels=["no", "yes"], positive="yes", prompt="p", gold_field="label"))
    port = _closed_port()
    proc = run_cli("run", project, "--ray", f"127.0.0.1:{port}", "--quiet", timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: runtime.ray_address (--ray) = '127.0.0.1:{port}': no Ray")
    assert not (project / "embeddings.npy").exists() and "ray_address" not in (project / "curate.toml").read_text()
    bad = run_cli("run", project, "--ray", "my-laptop", "--quiet", timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: --ray 'my-laptop': must be auto, HOST:PORT (what `ray start --head` prints, e.g. 127.0.0.1:6379) or "
        "ray://HOST:PORT")
