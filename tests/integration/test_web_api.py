"""The labelling app's HTTP API, against a real server subprocess (``python -m curate.web``) on 127.0.0.1.

The project is built in tmp_path from 30 Webis items, and round 0's selection is written straight into the
store (as ``curate run --oracle web`` would), so no model is needed: the first 8 selected items need 2
labels, the next 16 one, and the last 6 pool items are not selected.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from curate.config import TaskConfig
from curate.errors import CurateError
from curate.project import Project, init_project
from curate.store import adjudications, annotators, assignments
from curate.web.auth import add_annotator
from tests.conftest import LABELS, REPO, webis_rows

PROMPT = "Clickbait: a headline that withholds its point to make you click."
N_POOL, N_SELECTED, N_DOUBLE = 30, 24, 8
TOTAL = 2 * N_DOUBLE + (N_SELECTED - N_DOUBLE)  # 32 labels in all
ITEM_KEYS = {"item_id", "text", "prompt", "labels", "progress"}
ANSWER_KEYS = {"round", "item", "progress", "message"}


# -- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, store_url: str) -> Path:
    """The project, its database in SQLite (the default) or in PostgreSQL (``--db``): every test runs on both."""
    rows = webis_rows(N_POOL)
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = tmp_path / "proj"
    database = None if store_url.startswith("sqlite") else store_url
    init_project(path, pool, task=TaskConfig(labels=LABELS, positive="clickbait", prompt=PROMPT),
                 overrides={"database": database} if database else None)
    store = Project.open(path).store
    sel = [
        {"item_id": r["id"], "position": k, "group_id": k // 2, "strategy": "boundary-pairs",
         "score": 0.4 + k / 100, "labels_needed": 2 if k < N_DOUBLE else 1}
        for k, r in enumerate(rows[:N_SELECTED])
    ]
    with store.transaction() as conn:
        store.add_selection(conn, 0, sel)
    store.close()
    return path


def selected_ids(project: Path) -> list[str]:
    store = Project.open(project).store
    try:
        return [r["item_id"] for r in store.selection(0)]
    finally:
        store.close()


def tokens(project: Path, *names: str, admin: bool = False) -> dict[str, str]:
    store = Project.open(project).store
    try:
        return {n: add_annotator(store, n, admin=admin) for n in names}
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m curate.web PROJECT --port P [ARGS]`` in a subprocess, ready once it answers."""

    def __init__(self, project: Path, log: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "curate.web", str(project), "--port", str(self.port), *args],
                cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not answer within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def start_server(tmp_path: Path):
    servers: list[Server] = []

    def start(project: Path, *args: str) -> Server:
        servers.append(Server(project, tmp_path / f"server-{len(servers)}.log", *args))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def db_state(project: Path) -> dict:
    """Every row a request could change: annotations, assignments, adjudications."""
    store = Project.open(project).store
    try:
        with store.engine.connect() as conn:
            return {
                "annotations": [tuple(r.values()) for r in store.annotations()],
                "assignments": [tuple(r) for r in conn.execute(select(assignments).order_by(assignments.c.id))],
                "adjudications": [tuple(r) for r in conn.execute(select(adjudications))],
            }
    finally:
        store.close()


def label_until_done(client: httpx.Client, rng: random.Random, acked: list, *, stop: threading.Event | None = None) -> None:
    """next -> annotate until nothing is left; record each (item, label) acknowledged with 201."""
    while stop is None or not stop.is_set():
        r = client.post("/api/next")
        assert r.status_code == 200, r.text
        item = r.json()["item"]
        if item is None:
            return
        label = rng.choice(LABELS)
        a = client.post("/api/annotations", json={"item_id": item["item_id"], "label": label})
        assert a.status_code == 201, a.text
        acked.append((item["item_id"], label))


# -- tests ---------------------------------------------------------------------------------------------------


def test_tokens_roles_and_pages(project, start_server):
    admin = tokens(project, "admin", admin=True)["admin"]
    alice = tokens(project, "alice")["alice"]
    store = Project.open(project).store
    with pytest.raises(CurateError, match="already exists"):
        add_annotator(store, "alice")
    with store.engine.connect() as conn:
        rows = {r.name: r for r in conn.execute(select(annotators))}
    store.close()
    assert rows["alice"].token_hash == hashlib.sha256(alice.encode()).hexdigest()  # only the hash is stored
    assert all(alice not in str(tuple(r)) for r in rows.values())
    server = start_server(project)

    with server.client() as anon:
        for method, path in [("GET", "/api/me"), ("POST", "/api/next"), ("POST", "/api/undo"),
                             ("GET", "/api/admin/progress"), ("GET", "/api/admin/export")]:
            r = anon.request(method, path)
            assert r.status_code == 401 and isinstance(r.json()["detail"], str), (path, r.text)
        # authentication comes before the body is looked at
        r = anon.post("/api/annotations", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 401
        for bad in ["Bearer wrong-token", f"Basic {alice}", alice, "Bearer", f"Bearer {alice}x"]:
            r = anon.get("/api/me", headers={"Authorization": bad})
            assert r.status_code == 401 and "token" in r.json()["detail"], bad
        for page, marker in [("/", 'id="token"'), ("/label", 'id="text"'), ("/admin", 'id="kappa-matrix"')]:
            r = anon.get(page)
            assert r.status_code == 200 and "text/html" in r.headers["content-type"] and marker in r.text
        assert anon.get("/static/common.js").status_code == 200

    with server.client(alice) as expert, server.client(admin) as boss:
        assert expert.get("/api/me").json() == {"name": "alice", "is_admin": False}
        admin_routes = [("GET", "/api/admin/progress", None), ("GET", "/api/admin/agreement", None),
                        ("GET", "/api/admin/disagreements", None), ("GET", "/api/admin/export?format=csv", None),
                        ("POST", "/api/admin/adjudicate", {"item_id": selected_ids(project)[0], "label": LABELS[0]})]
        for method, path, body in admin_routes:
            r = expert.request(method, path, json=body)
            assert r.status_code == 403 and "admin" in r.json()["detail"], (path, r.text)
            if method == "GET":
                assert boss.get(path).status_code == 200, path
    assert db_state(project)["adjudications"] == []


def test_labelling_is_blind_and_counts_progress(project, start_server):
    toks = tokens(project, "alice", "bob")
    admin = tokens(project, "admin", admin=True)["admin"]
    ids = selected_ids(project)
    server = start_server(project)
    with server.client(toks["alice"]) as alice, server.client(toks["bob"]) as bob, server.client(admin) as boss:
        a = alice.post("/api/next").json()
        assert set(a) == ANSWER_KEYS and set(a["item"]) == ITEM_KEYS
        assert a["item"]["item_id"] == ids[0] and a["item"]["prompt"] == PROMPT and a["item"]["labels"] == LABELS
        assert a["progress"] == {"done": 0, "total": TOTAL, "mine": 0}
        assert alice.post("/api/next").json()["item"]["item_id"] == ids[0]  # the same open assignment again
        r = alice.post("/api/annotations", json={"item_id": ids[0], "label": "clickbait"})
        assert r.status_code == 201 and r.json()["progress"]["done"] == 1

        # Bob gets the item Alice labelled (it needs two) without Alice's label, name, the score or the group.
        b = bob.post("/api/next")
        body = b.json()
        assert set(body) == ANSWER_KEYS and set(body["item"]) == ITEM_KEYS and body["item"]["item_id"] == ids[0]
        flat = b.text.lower()
        for leak in ("score", "group", "alice", "annotator", "strategy", "boundary", "0.4"):
            assert leak not in flat, leak
        assert body["progress"] == {"done": 1, "total": TOTAL, "mine": 0}
        # Alice's item moved on, Bob cannot read labels through any route.
        assert alice.post("/api/next").json()["item"]["item_id"] == ids[1]
        for path in ("/api/admin/export?format=jsonl", "/api/admin/disagreements", "/api/admin/progress"):
            assert bob.get(path).status_code == 403
        assert "alice" in boss.get("/api/admin/export?format=jsonl").text


class TimedClient(httpx.Client):
    """An httpx client that records (path, status, seconds) of every request it sends into ``log``."""

    def __init__(self, log: list, **kwargs) -> None:
        super().__init__(**kwargs)
        self.log = log

    def send(self, request: httpx.Request, **kwargs) -> httpx.Response:
        t0 = time.perf_counter()
        try:
            response = super().send(request, **kwargs)
        except httpx.HTTPError:
            self.log.append((request.url.path, None, time.perf_counter() - t0))
            raise
        self.log.append((request.url.path, response.status_code, time.perf_counter() - t0))
        return response


def load_figures(log: list) -> dict:
    """Requests, errors (4xx/5xx/no answer) and p50/p95 latency in ms of a TimedClient log."""
    ms = sorted(s * 1000 for _, _, s in log)

    def quantile(q: float) -> float:
        return round(ms[min(len(ms) - 1, int(q * len(ms)))], 1) if ms else float("nan")

    return {"requests": len(log), "errors": sum(1 for _, st, _ in log if st is None or st >= 400),
            "errors_5xx": sum(1 for _, st, _ in log if st is not None and st >= 500),
            "p50_ms": quantile(0.5), "p95_ms": quantile(0.95)}


def test_twenty_experts_concurrently(project, start_server, record_property):
    names = [f"expert-{k:02d}" for k in range(20)]
    toks = tokens(project, *names)
    admin = tokens(project, "admin", admin=True)["admin"]
    server = start_server(project)
    acked: dict[str, list] = {n: [] for n in names}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names))
    log: list = []  # (path, status, seconds) of every request the experts sent

    def work(name: str, seed: int) -> None:
        try:
            with TimedClient(log, base_url=server.url, headers={"Authorization": f"Bearer {toks[name]}"},
                             timeout=60) as c:
                barrier.wait()
                label_until_done(c, random.Random(seed), acked[name])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, k)) for k, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    figures = load_figures(log)  # in the JUnit XML (--junitxml) and printed (-s, or -rP)
    for key, value in figures.items():
        record_property(key, value)
    print(f"20 experts: {figures['requests']} requests, {figures['errors']} errors ({figures['errors_5xx']} 5xx), "
          f"latency p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms")
    assert not errors, (figures, errors)
    assert figures["errors"] == 0 and figures["requests"] == 2 * TOTAL + len(names), figures
    assert not any(t.is_alive() for t in threads)

    store = Project.open(project).store
    rows = store.annotations()
    need = {r["item_id"]: r["labels_needed"] for r in store.selection(0)}
    store.close()
    assert len(rows) == TOTAL == sum(need.values())
    pairs = [(r["item_id"], r["annotator"]) for r in rows]
    assert len(set(pairs)) == len(pairs)  # no (item, annotator) twice
    per_item = Counter(r["item_id"] for r in rows)
    assert per_item == Counter(need)  # every item exactly as many labels as it needs
    # what was acknowledged is exactly what is stored; no expert labelled an item twice
    stored = {(r["item_id"], r["annotator"], r["label"]) for r in rows}
    assert stored == {(i, n, lab) for n, got in acked.items() for i, lab in got}
    for got in acked.values():
        assert len({i for i, _ in got}) == len(got)
    assert sum(1 for got in acked.values() if got) > 1  # the work really was shared

    with server.client(admin) as boss:
        prog = boss.get("/api/admin/progress").json()
        assert prog["rounds"] == [{"round": 0, "items": N_SELECTED, "labels_needed": TOTAL, "labels": TOTAL,
                                   "items_complete": N_SELECTED, "complete": False, "current": True}]
        assert sum(e["labelled"] for e in prog["experts"]) == TOTAL
        dis = boss.get("/api/admin/disagreements").json()["items"]
        by_item: dict[str, dict] = {}
        for r in rows:
            by_item.setdefault(r["item_id"], {})[r["annotator"]] = r["label"]
        assert {d["item_id"] for d in dis} == {i for i, v in by_item.items() if len(set(v.values())) > 1}
        assert all(d["labels"] == by_item[d["item_id"]] for d in dis)


def test_skip_and_undo(project, start_server):
    toks = tokens(project, "alice", "bob", "carol")
    ids = selected_ids(project)
    server = start_server(project)
    with server.client(toks["alice"]) as alice, server.client(toks["bob"]) as bob, server.client(toks["carol"]) as carol:
        assert alice.post("/api/next").json()["item"]["item_id"] == ids[0]
        r = alice.post("/api/skip", json={"item_id": ids[0]})
        assert r.status_code == 200 and r.json()["skipped"] is True
        assert alice.post("/api/skip", json={"item_id": ids[0]}).status_code == 409  # not open any more
        assert alice.post("/api/annotations", json={"item_id": ids[0], "label": LABELS[0]}).status_code == 409
        assert alice.post("/api/skip", json={"item_id": ids[5]}).status_code == 409  # never assigned to her
        assert bob.post("/api/next").json()["item"]["item_id"] == ids[0]  # others still get a skipped item

        # undo: the most recent label goes, its item comes back to her
        for i in (ids[1], ids[2]):
            assert alice.post("/api/next").json()["item"]["item_id"] == i
            assert alice.post("/api/annotations", json={"item_id": i, "label": "clickbait"}).status_code == 201
        assert bob.post("/api/annotations", json={"item_id": ids[0], "label": "clickbait"}).status_code == 201
        u = alice.post("/api/undo")
        assert u.status_code == 200 and u.json()["item"]["item_id"] == ids[2] and set(u.json()["item"]) == ITEM_KEYS
        u = alice.post("/api/undo")
        assert u.status_code == 200 and u.json()["item"]["item_id"] == ids[1]
        assert [(a[1], a[2]) for a in db_state(project)["annotations"]] == [(ids[0], "bob")]  # Bob's label stays
        assert carol.post("/api/undo").status_code == 409  # nothing to undo
        # her reopened items come back first, and she can label them differently
        assert alice.post("/api/next").json()["item"]["item_id"] == ids[1]
        assert alice.post("/api/annotations", json={"item_id": ids[1], "label": "no-clickbait"}).status_code == 201
        assert alice.post("/api/next").json()["item"]["item_id"] == ids[2]
        assert alice.post("/api/annotations", json={"item_id": ids[2], "label": "no-clickbait"}).status_code == 201

        # Alice labels everything left for her: the skipped item never comes back
        seen = []
        label_until_done(alice, random.Random(0), seen)
        assert ids[0] not in {i for i, _ in seen}
        assert alice.post("/api/next").json()["item"] is None

        # once the round's labelling is recorded complete there is nothing to label or undo
        store = Project.open(project).store
        with store.transaction() as conn:
            store.mark_step(conn, 0, "label", 1.0)
        store.close()
        before = db_state(project)
        assert alice.post("/api/undo").status_code == 409
        r = alice.post("/api/next").json()
        assert r["round"] is None and r["item"] is None and "nothing to label" in r["message"]
        assert db_state(project) == before


def test_sigkill_loses_no_acknowledged_label(project, start_server):
    names = ["alice", "bob", "carol", "dave"]
    toks = tokens(project, *names)
    server = start_server(project)
    acked: dict[str, list] = {n: [] for n in names}
    stop = threading.Event()

    def work(name: str, seed: int) -> None:
        try:
            with server.client(toks[name]) as c:
                label_until_done(c, random.Random(seed), acked[name], stop=stop)
        except (httpx.TransportError, AssertionError):
            pass  # the server died under it

    threads = [threading.Thread(target=work, args=(n, k)) for k, n in enumerate(names)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(map(len, acked.values())) < 12 and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(server.proc.pid, signal.SIGKILL)  # mid-session: the experts are still sending labels
    server.proc.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    acknowledged = {(i, n, lab) for n, got in acked.items() for i, lab in got}
    assert len(acknowledged) >= 12

    store = Project.open(project).store
    stored = {(r["item_id"], r["annotator"], r["label"]) for r in store.annotations()}
    store.close()
    assert acknowledged <= stored, acknowledged - stored

    # restart on the same database and finish the round
    server = start_server(project)
    for k, n in enumerate(names):
        with server.client(toks[n]) as c:
            label_until_done(c, random.Random(100 + k), acked[n])
    store = Project.open(project).store
    rows = store.annotations()
    store.close()
    assert len(rows) == TOTAL
    final = {(r["item_id"], r["annotator"], r["label"]) for r in rows}
    assert acknowledged <= final


def test_bad_requests_change_nothing(project, start_server):
    alice = tokens(project, "alice")["alice"]
    admin = tokens(project, "admin", admin=True)["admin"]
    ids = selected_ids(project)
    pool_only = webis_rows(N_POOL)[-1]["id"]  # in the pool, not selected
    server = start_server(project)
    with server.client(alice) as c, server.client(admin) as boss:
        assert c.post("/api/next").json()["item"]["item_id"] == ids[0]  # an open assignment the bad requests target
        before = db_state(project)
        big = json.dumps({"item_id": ids[0], "label": "x" * 70_000}).encode()

        def chunks():
            for k in range(0, len(big), 8192):
                yield big[k:k + 8192]

        json_header = {"Content-Type": "application/json"}
        cases = [
            (c.post("/api/annotations", json={"item_id": "no-such-item", "label": LABELS[0]}), 404, "no-such-item"),
            (c.post("/api/annotations", json={"item_id": ids[0], "label": "maybe"}), 422, "maybe"),
            (c.post("/api/annotations", json={"item_id": ids[0], "label": LABELS[0].upper()}), 422, "not one of"),
            (c.post("/api/annotations", content=b'{"item_id": "' + ids[0].encode(), headers=json_header), 422, "JSON"),
            (c.post("/api/annotations", content=b"", headers=json_header), 422, "JSON"),
            (c.post("/api/annotations", json=[ids[0], LABELS[0]]), 422, "invalid"),
            (c.post("/api/annotations", json={"item_id": ids[0]}), 422, "label"),
            (c.post("/api/annotations", json={"item_id": 5, "label": LABELS[0]}), 422, "item_id"),
            (c.post("/api/annotations", content=big, headers=json_header), 413, "too large"),
            (c.post("/api/annotations", content=chunks(), headers=json_header), 413, "too large"),  # chunked
            (c.post("/api/annotations", json={"item_id": pool_only, "label": LABELS[0]}), 409, "not assigned"),
            (c.post("/api/annotations", json={"item_id": ids[1], "label": LABELS[0]}), 409, "not assigned"),
            (c.post("/api/skip", json={"item_id": "no-such-item"}), 404, "unknown item"),
            (c.post("/api/skip", content=big, headers=json_header), 413, "too large"),
            (c.post("/api/skip", content=b"[", headers=json_header), 422, "JSON"),
            (c.post("/api/undo"), 409, "nothing to undo"),
            (boss.post("/api/admin/adjudicate", json={"item_id": "no-such-item", "label": LABELS[0]}), 404, "unknown"),
            (boss.post("/api/admin/adjudicate", json={"item_id": ids[0], "label": "maybe"}), 422, "maybe"),
            (boss.post("/api/admin/adjudicate", json={"item_id": ids[0], "label": LABELS[0]}), 409, "no expert label"),
            (boss.get("/api/admin/export?format=xml"), 422, "jsonl or csv"),
        ]
        for k, (r, status, words) in enumerate(cases):
            assert r.status_code == status, (k, r.status_code, r.text[:300])
            detail = r.json()["detail"]
            assert isinstance(detail, str) and words in detail, (k, detail)
        assert db_state(project) == before
        # the assignment survived every refusal
        assert c.post("/api/annotations", json={"item_id": ids[0], "label": LABELS[1]}).status_code == 201


def test_admin_agreement_adjudication_and_export(project, start_server):
    toks = tokens(project, "alice", "bob")
    admin = tokens(project, "admin", admin=True)["admin"]
    ids = selected_ids(project)
    server = start_server(project)
    with server.client(toks["alice"]) as alice, server.client(toks["bob"]) as bob, server.client(admin) as boss:
        # both label the doubly-labelled items: Alice says clickbait, Bob disagrees on the first two
        for k in range(N_DOUBLE):
            for c, label in ((alice, "clickbait"), (bob, "no-clickbait" if k < 2 else "clickbait")):
                item = c.post("/api/next").json()["item"]
                assert item["item_id"] == ids[k]
                assert c.post("/api/annotations", json={"item_id": ids[k], "label": label}).status_code == 201
        dis = boss.get("/api/admin/disagreements").json()
        assert [d["item_id"] for d in dis["items"]] == sorted(ids[:2])
        assert all(d["labels"] == {"alice": "clickbait", "bob": "no-clickbait"} and d["adjudication"] is None
                   for d in dis["items"])
        for label in ("clickbait", "no-clickbait"):  # an upsert: the second replaces the first
            r = boss.post("/api/admin/adjudicate", json={"item_id": ids[0], "label": label})
            assert r.status_code == 200 and r.json()["label"] == label
        dis = {d["item_id"]: d for d in boss.get("/api/admin/disagreements").json()["items"]}
        assert dis[ids[0]]["adjudication"]["label"] == "no-clickbait" and dis[ids[0]]["adjudication"]["admin"] == "admin"
        assert dis[ids[0]]["labels"] == {"alice": "clickbait", "bob": "no-clickbait"}  # beside, never over

        lines = [json.loads(x) for x in boss.get("/api/admin/export?format=jsonl").text.splitlines()]
        assert len(lines) == 2 * N_DOUBLE
        assert set(lines[0]) == {"item_id", "annotator", "label", "round", "created_at", "adjudication", "adjudicated_by"}
        assert {(x["annotator"], x["label"]) for x in lines if x["item_id"] == ids[0]} == {
            ("alice", "clickbait"), ("bob", "no-clickbait")}
        assert {x["adjudication"] for x in lines if x["item_id"] == ids[0]} == {"no-clickbait"}
        assert all(x["adjudication"] is None for x in lines if x["item_id"] != ids[0])
        csv_text = boss.get("/api/admin/export?format=csv")
        assert csv_text.headers["content-type"].startswith("text/csv")
        assert csv_text.text.splitlines()[0] == "item_id,annotator,label,round,created_at,adjudication,adjudicated_by"
        assert len(csv_text.text.splitlines()) == 1 + 2 * N_DOUBLE

        prog = boss.get("/api/admin/progress").json()
        experts = {e["name"]: e for e in prog["experts"]}
        assert experts["alice"]["labelled"] == experts["bob"]["labelled"] == N_DOUBLE
        assert prog["rounds"][0]["labels"] == 2 * N_DOUBLE and prog["current_round"] == 0

        r = boss.get("/api/admin/agreement")
        assert r.status_code == 200
        import curate.agreement as ag

        if all(hasattr(ag, f) for f in ("kappa_matrix", "fleiss_kappa", "krippendorff_alpha")):
            body = r.json()
            assert {"annotators", "matrix", "n", "fleiss_kappa", "krippendorff_alpha"} <= set(body)
            assert body["annotators"] == ["alice", "bob"] and len(body["matrix"]) == 2
