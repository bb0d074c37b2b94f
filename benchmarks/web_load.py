#!/usr/bin/env python
"""Load on the labelling app: 20 experts label one round at the same time against a real server (issue 12).

A project is made from the first Webis Clickbait 2017 tweets (in a temporary folder) and round 0's selection is
written into its store, as ``curate run --oracle web`` would: ``--items`` selected items, the first ``--double`` of
them needing two labels and the rest one. ``--experts`` annotators get personal access tokens, the app is served by
``python -m curate.web PROJECT`` on 127.0.0.1, and every expert, in its own thread with its own HTTP connection,
starts at the same moment and repeats ``POST /api/next`` then ``POST /api/annotations`` (a random label) until the
app has nothing left for them: the pattern of ``test_twenty_experts_concurrently`` in the tests.

Reported: requests sent, errors (4xx and 5xx apart, and requests that got no answer), latency per request (p50,
p95, p99, max; from sending to the whole answer read) for each route and in all, requests per second, and what the
store holds afterwards: labels stored against labels needed, items over their need, (item, expert) pairs labelled
twice, and whether every acknowledged label (201) is stored and nothing else.

    .venv/bin/python benchmarks/web_load.py                                   # 20 experts, 200 items, 300 labels
    .venv/bin/python benchmarks/web_load.py --out benchmarks/results/web_load.md

Exit status: 0 when nothing failed and the store is exactly what was acknowledged, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from _machine import machine_line  # benchmarks/_machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data")) / "webis-clickbait-17" / (
    "webis-clickbait-17.jsonl")
LABELS = ["no-clickbait", "clickbait"]
PROMPT = "Clickbait: a headline that withholds its point to make you click."


@dataclass
class Request:
    """One request an expert sent."""

    route: str
    status: int | None  # None: no answer (a transport error)
    seconds: float


@dataclass
class Expert:
    """One expert's thread: its requests and the labels acknowledged with 201."""

    name: str
    token: str
    requests: list[Request] = field(default_factory=list)
    acked: list[tuple[str, str]] = field(default_factory=list)
    stopped_by: str = ""


def build_project(folder: Path, items: int, double: int, experts: int) -> tuple[Path, dict[str, str]]:
    """A project of the first ``items + 10`` Webis tweets with round 0's selection stored, and the experts' tokens.

    Returns:
        (the project folder, ``{expert name: token}``).
    """
    from curate.config import TaskConfig
    from curate.project import Project, init_project
    from curate.web.auth import add_annotator

    pool = folder / "pool.jsonl"
    ids = []
    with DATA.open(encoding="utf-8") as src, pool.open("w", encoding="utf-8") as out:
        for k, line in enumerate(src):
            if k >= items + 10:
                break
            out.write(line)
            ids.append(str(json.loads(line)["id"]))
    project = folder / "project"
    init_project(project, pool, task=TaskConfig(labels=LABELS, positive="clickbait", prompt=PROMPT))
    store = Project.open(project).store
    try:
        rows = [{"item_id": i, "position": k, "group_id": k // 2, "strategy": "boundary-pairs", "score": 0.5,
                 "labels_needed": 2 if k < double else 1} for k, i in enumerate(ids[:items])]
        with store.transaction() as conn:
            store.add_selection(conn, 0, rows)
        tokens = {f"expert-{k:02d}": add_annotator(store, f"expert-{k:02d}") for k in range(experts)}
    finally:
        store.close()
    return project, tokens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(project: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``python -m curate.web PROJECT --port P`` on 127.0.0.1, once it answers ``GET /``.

    Returns:
        (the server process, its base URL).
    """
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "curate.web", str(project), "--port", str(port)], cwd=REPO,
                                stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server did not answer within 60 s:\n{log.read_text()[-3000:]}")


def label_until_done(url: str, expert: Expert, rng: random.Random, barrier: threading.Barrier) -> None:
    """``POST /api/next`` then ``POST /api/annotations`` until nothing is left (or a request fails)."""
    import httpx

    def send(client: httpx.Client, route: str, body: dict | None = None) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            r = client.post(route, json=body)
        except httpx.HTTPError as exc:
            expert.requests.append(Request(route, None, time.perf_counter() - t0))
            expert.stopped_by = f"{route}: {type(exc).__name__}"
            return None
        expert.requests.append(Request(route, r.status_code, time.perf_counter() - t0))
        return r

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {expert.token}"}, timeout=60) as client:
        barrier.wait()
        while True:
            r = send(client, "/api/next")
            if r is None or r.status_code != 200:
                expert.stopped_by = expert.stopped_by or f"/api/next: {r.status_code}"
                return
            item = r.json()["item"]
            if item is None:
                return
            label = rng.choice(LABELS)
            a = send(client, "/api/annotations", {"item_id": item["item_id"], "label": label})
            if a is None or a.status_code != 201:
                expert.stopped_by = expert.stopped_by or f"/api/annotations: {a.status_code}"
                return
            expert.acked.append((item["item_id"], label))


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values`` by linear interpolation; NaN when empty."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    """Build the project, serve it, let the experts label, and read back the store.

    Returns:
        The figures: requests, errors, latencies by route, wall seconds and the store's integrity.
    """
    from curate.project import Project

    folder = Path(tempfile.mkdtemp(prefix="curate-web-load-"))
    load = os.getloadavg()[0]
    proc = None
    try:
        project, tokens = build_project(folder, args.items, args.double, args.experts)
        proc, url = start_server(project, folder / "server.log")
        experts = [Expert(name, token) for name, token in tokens.items()]
        barrier = threading.Barrier(len(experts))
        threads = [threading.Thread(target=label_until_done, args=(url, e, random.Random(args.seed * 1000 + k),
                                                                   barrier)) for k, e in enumerate(experts)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.timeout)
        wall = time.perf_counter() - t0
        hung = sum(t.is_alive() for t in threads)
        server_alive = proc.poll() is None

        store = Project.open(project).store
        try:
            rows = store.annotations()
            need = {r["item_id"]: r["labels_needed"] for r in store.selection(0)}
        finally:
            store.close()
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(folder, ignore_errors=True)

    requests = [r for e in experts for r in e.requests]
    per_item = Counter(r["item_id"] for r in rows)
    pairs = Counter((r["item_id"], r["annotator"]) for r in rows)
    stored = sorted((r["item_id"], r["annotator"], r["label"]) for r in rows)
    acked = sorted((i, e.name, lab) for e in experts for i, lab in e.acked)
    routes = {}
    for route in ("/api/next", "/api/annotations", "all"):
        ms = [r.seconds * 1000 for r in requests if route in ("all", r.route)]
        routes[route] = {"requests": len(ms), "p50_ms": percentile(ms, 0.5), "p95_ms": percentile(ms, 0.95),
                         "p99_ms": percentile(ms, 0.99), "max_ms": max(ms, default=float("nan"))}
    return {
        "experts": len(experts),
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
        "items": args.items,
        "labels_needed": sum(need.values()),
        "requests": len(requests),
        "errors_4xx": sum(1 for r in requests if r.status is not None and 400 <= r.status < 500),
        "errors_5xx": sum(1 for r in requests if r.status is not None and r.status >= 500),
        "no_answer": sum(1 for r in requests if r.status is None),
        "routes": routes,
        "wall_seconds": wall,
        "requests_per_second": len(requests) / wall if wall > 0 else float("nan"),
        "experts_who_labelled": sum(1 for e in experts if e.acked),
        "stopped_by": sorted({e.stopped_by for e in experts if e.stopped_by}),
        "threads_hung": hung,
        "server_alive": server_alive,
        "labels_stored": len(rows),
        "items_over_need": sum(1 for i, n in per_item.items() if n > need.get(i, 0)),
        "items_under_need": sum(1 for i, n in need.items() if per_item.get(i, 0) < n),
        "duplicate_pairs": sum(1 for n in pairs.values() if n > 1),
        "acked_equals_stored": acked == stored,
    }


def passed(result: dict[str, Any]) -> bool:
    """No error, no hung expert, every label needed stored once, and the store is exactly what was acknowledged."""
    return (result["errors_4xx"] == result["errors_5xx"] == result["no_answer"] == result["threads_hung"] == 0
            and result["labels_stored"] == result["labels_needed"] and result["items_over_need"] == 0
            and result["items_under_need"] == 0 and result["duplicate_pairs"] == 0 and result["acked_equals_stored"]
            and result["server_alive"])


def markdown(result: dict[str, Any], command: str) -> str:
    """The figures as Markdown."""
    r = result
    lines = [
        "# Labelling app under load",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine_line()}; server and clients on the same machine (127.0.0.1), SQLite store; load average "
        f"(1 min) {r['load_average'][0]:.1f} at the start, {r['load_average'][1]:.1f} at the end",
        f"- command: `{command}`",
        f"- {r['experts']} experts at once, {r['items']} selected items, {r['labels_needed']} labels needed; each "
        "expert repeats `POST /api/next`, `POST /api/annotations` until nothing is left",
        "",
        "| requests | errors 4xx | errors 5xx | no answer | p50 ms | p95 ms | p99 ms | max ms | requests/s | "
        "wall s | store as acknowledged |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {r['requests']} | {r['errors_4xx']} | {r['errors_5xx']} | {r['no_answer']} | "
        f"{r['routes']['all']['p50_ms']:.1f} | {r['routes']['all']['p95_ms']:.1f} | {r['routes']['all']['p99_ms']:.1f} "
        f"| {r['routes']['all']['max_ms']:.1f} | {r['requests_per_second']:.0f} | {r['wall_seconds']:.1f} | "
        f"{'yes' if passed(r) else '**no**'} |",
        "",
        "| route | requests | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        *[f"| `{k}` | {v['requests']} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} | {v['p99_ms']:.1f} | {v['max_ms']:.1f} |"
          for k, v in r["routes"].items() if k != "all"],
        "",
        f"Store afterwards: {r['labels_stored']} labels stored of {r['labels_needed']} needed, "
        f"{r['items_over_need']} items over their need, {r['items_under_need']} under it, "
        f"{r['duplicate_pairs']} (item, expert) pairs labelled twice, acknowledged labels "
        f"{'identical to' if r['acked_equals_stored'] else '**not** identical to'} the stored ones; "
        f"{r['experts_who_labelled']} of {r['experts']} experts got work"
        + (f"; stopped by: {', '.join(r['stopped_by'])}" if r["stopped_by"] else "") + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the load, print (and write) the figures; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experts", type=int, default=20, help="experts labelling at once (default 20)")
    parser.add_argument("--items", type=int, default=200, help="selected items (default 200)")
    parser.add_argument("--double", type=int, default=100, help="of them, items that need two labels (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="the experts' label choices (default 0)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the experts (default 300)")
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown to this file")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"error: {DATA}: not found; put ../shared/data beside the repository or set CURATE_SHARED_DATA",
              file=sys.stderr)
        return 2
    if not 0 <= args.double <= args.items or args.experts < 2:
        parser.error("need 0 <= --double <= --items and at least 2 experts")
    command = " ".join(shlex.quote(x) for x in [".venv/bin/python", "benchmarks/web_load.py",
                                                *(sys.argv[1:] if argv is None else argv)])
    result = run_load(args)
    text = markdown(result, command)
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
