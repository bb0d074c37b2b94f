"""Trust in the labelling app (issue 12, findings 3-5), against a real server subprocess on 127.0.0.1:

* tokens can be listed, revoked, rotated and can expire, and a running server refuses them at once;
* wrong tokens from one client address are answered 429 with Retry-After, other addresses are not affected;
* every response carries the hardening headers, and a Host header that is not allowed gets 400.

The project is the one of ``test_web_api.py`` (30 Webis items, SQLite and PostgreSQL).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text, update
from typer.testing import CliRunner

from curate.cli import app as cli_app
from curate.project import Project
from curate.store import annotators
from curate.web.app import SigninLimiter
from curate.web.auth import add_annotator, authenticate, hash_token, list_annotators
from tests.conftest import run_cli
from tests.integration.test_web_api import free_port, project, start_server, tokens  # noqa: F401  (fixtures)

HARDENING = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def cli(*args: object) -> tuple[int, str, str]:
    """``curate ARGS`` in process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(cli_app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def one_line_error(result: tuple[int, str, str], *needles: str) -> None:
    """Exit status 2 and one line ``error: ...`` on stderr holding every needle."""
    code, _, err = result
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def status(server, token: str, **kwargs) -> int:
    with server.client(token) as c:
        return c.get("/api/me", **kwargs).status_code


# -- 3. token lifecycle --------------------------------------------------------------------------------------


def test_annotators_list_revoke_rotate_and_expiry_from_the_cli(project):
    code, alice, _ = cli("annotators", "add", project, "alice", "--expires-in", "30")
    assert code == 0
    code, boss, _ = cli("annotators", "add", project, "boss", "--admin", "--expires", "2099-01-31")
    assert code == 0
    carol = tokens(project, "carol")["carol"]
    alice, boss = alice.strip(), boss.strip()

    code, out, _ = cli("annotators", "list", project)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "role", "created", "expires", "revoked"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"alice", "boss", "carol"}
    assert "admin" in rows["boss"] and "2099-01-31 00:00 UTC" in rows["boss"]
    assert "expert" in rows["alice"] and time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400)) in rows["alice"]
    assert "never" in rows["carol"] and rows["carol"].rstrip().endswith("no")
    for secret in (alice, boss, carol):  # never a token or its hash
        assert secret not in out and hash_token(secret) not in out

    code, out, _ = cli("annotators", "revoke", project, "carol")
    assert code == 0 and "revoked" in out
    code, out, _ = cli("annotators", "revoke", project, "carol")
    assert code == 0 and "already revoked" in out
    code, new_alice, _ = cli("annotators", "rotate", project, "alice", "--expires-in", "7")
    new_alice = new_alice.strip()
    assert code == 0 and new_alice and new_alice != alice and len(new_alice.splitlines()) == 1

    store = Project.open(project).store
    try:
        assert authenticate(store, carol) is None  # revoked
        assert authenticate(store, alice) is None  # rotated away
        assert authenticate(store, new_alice)["name"] == "alice"
        assert authenticate(store, boss)["name"] == "boss"
        info = {r["name"]: r for r in list_annotators(store)}
        assert info["carol"]["revoked_at"] is not None and info["alice"]["revoked_at"] is None
        assert 6.9 * 86400 < info["alice"]["expires_at"] - time.time() < 7.1 * 86400
        with store.transaction() as conn:  # boss's token expired an hour ago
            conn.execute(update(annotators).where(annotators.c.name == "boss").values(expires_at=time.time() - 3600))
        assert authenticate(store, boss) is None
    finally:
        store.close()
    code, out, _ = cli("annotators", "list", project)
    assert "(expired)" in next(line for line in out.splitlines() if line.startswith("boss"))
    assert "UTC" in next(line for line in out.splitlines() if line.startswith("carol")).split("never")[-1]

    # rotating a revoked annotator re-admits them with the new token only
    code, new_carol, _ = cli("annotators", "rotate", project, "carol")
    store = Project.open(project).store
    try:
        assert authenticate(store, new_carol.strip())["name"] == "carol" and authenticate(store, carol) is None
    finally:
        store.close()

    one_line_error(cli("annotators", "revoke", project, "nobody"), "nobody", "annotators list")
    one_line_error(cli("annotators", "rotate", project, "nobody"), "nobody")
    one_line_error(cli("annotators", "add", project, "dan", "--expires", "2001-01-01"), "--expires", "later date")
    one_line_error(cli("annotators", "add", project, "dan", "--expires", "31/01/2099"), "--expires", "YYYY-MM-DD")
    one_line_error(cli("annotators", "add", project, "dan", "--expires-in", "0"), "--expires-in")
    one_line_error(cli("annotators", "add", project, "dan", "--expires-in", "3", "--expires", "2099-01-01"),
                   "--expires-in", "--expires")
    store = Project.open(project).store
    try:
        assert "dan" not in {r["name"] for r in list_annotators(store)}  # a refused add writes nothing
    finally:
        store.close()


def test_a_running_server_refuses_revoked_rotated_and_expired_tokens_at_once(project, start_server):
    toks = tokens(project, "alice", "bob", "erin")
    store = Project.open(project).store
    try:
        frank = add_annotator(store, "frank", expires_at=time.time() + 4)
    finally:
        store.close()
    server = start_server(project)
    for tok in [*toks.values(), frank]:
        assert status(server, tok) == 200

    assert run_cli("annotators", "revoke", project, "alice", check=True).returncode == 0  # another process
    proc = run_cli("annotators", "rotate", project, "bob", check=True)
    new_bob = proc.stdout.strip()
    assert status(server, toks["alice"]) == 401
    assert status(server, toks["bob"]) == 401
    with server.client(new_bob) as c:
        assert c.get("/api/me").json() == {"name": "bob", "is_admin": False}
        assert c.post("/api/next").status_code == 200
    with server.client(toks["alice"]) as c:  # every route, not only /api/me
        assert c.post("/api/next").status_code == 401
        assert "revoked" in c.get("/api/me").json()["detail"]
    assert status(server, toks["erin"]) == 200  # the others are untouched

    deadline = time.time() + 30
    while status(server, frank) == 200:  # frank's token expires 4 s after it was made
        assert time.time() < deadline, "an expired token was still accepted"
        time.sleep(0.5)
    assert status(server, frank) == 401


def test_an_older_project_database_gains_the_token_columns(project):
    """A database made before expiry and revocation existed (no such columns) opens, keeps its tokens working and
    can then revoke and expire them."""
    alice = tokens(project, "alice")["alice"]
    store = Project.open(project).store
    with store.transaction() as conn:
        conn.execute(text("ALTER TABLE annotators DROP COLUMN expires_at"))
        conn.execute(text("ALTER TABLE annotators DROP COLUMN revoked_at"))
    store.close()

    store = Project.open(project).store  # migrates
    try:
        assert authenticate(store, alice)["name"] == "alice"
        assert list_annotators(store)[0]["revoked_at"] is None
    finally:
        store.close()
    code, out, _ = cli("annotators", "revoke", project, "alice")
    assert code == 0
    store = Project.open(project).store
    try:
        assert authenticate(store, alice) is None
    finally:
        store.close()


# -- 4. sign-in rate limit -----------------------------------------------------------------------------------


def test_wrong_tokens_from_one_address_get_429_and_other_addresses_still_sign_in(project, start_server):
    good = tokens(project, "alice")["alice"]
    server = start_server(project)
    attacker = httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30)
    codes, retry = [], []
    with attacker:
        for k in range(300):
            r = attacker.get("/api/me", headers={"Authorization": f"Bearer wrong-token-{k}"})
            codes.append(r.status_code)
            if r.status_code == 429:
                retry.append(int(r.headers["retry-after"]))
        assert set(codes) == {401, 429}, set(codes)
        assert codes[:10] == [401] * 10 and codes[10:] == [429] * 290  # 10 per minute per address
        assert all(1 <= s <= 60 for s in retry)
        # while blocked, even a correct token from that address waits: guessing cannot go on
        assert attacker.get("/api/me", headers={"Authorization": f"Bearer {good}"}).status_code == 429
        assert attacker.get("/").status_code == 200  # the pages stay reachable
    assert status(server, good) == 200  # from 127.0.0.1: another address

    # behind a reverse proxy on this machine, the address is the forwarded one
    for k in range(12):
        status(server, f"wrong-{k}", headers={"X-Forwarded-For": "203.0.113.7"})
    assert status(server, good, headers={"X-Forwarded-For": "203.0.113.7"}) == 429
    assert status(server, good, headers={"X-Forwarded-For": "203.0.113.8"}) == 200


def test_the_signin_limiter_window_slides():
    limiter = SigninLimiter(limit=3, window_s=0.6)
    for _ in range(2):
        limiter.failed("a")
    assert limiter.retry_after("a") is None
    limiter.failed("a")
    assert limiter.retry_after("a") == 1 and limiter.retry_after("b") is None
    time.sleep(0.7)
    assert limiter.retry_after("a") is None
    assert SigninLimiter(limit=0).retry_after("a") is None  # 0: no limit
    small = SigninLimiter(limit=1, max_addresses=5)
    for k in range(50):
        small.failed(f"10.0.0.{k}")
    assert len(small._failures) == 5 and small.retry_after("10.0.0.49") is not None


# -- 5. security headers and allowed hosts -------------------------------------------------------------------


def test_every_response_carries_the_security_headers(project, start_server):
    good = tokens(project, "alice")["alice"]
    server = start_server(project)
    with server.client(good) as c:
        responses = {
            "sign-in page": c.get("/"), "label page": c.get("/label"), "admin page": c.get("/admin"),
            "script": c.get("/static/common.js"), "style": c.get("/static/style.css"), "api": c.get("/api/me"),
            "401": c.get("/api/me", headers={"Authorization": "Bearer nope"}), "404": c.get("/nothing-here"),
            "403": c.get("/api/admin/progress"), "413": c.post("/api/annotations", content=b"x" * 100_000),
            "400 host": c.get("/api/me", headers={"Host": "evil.example"}),
        }
        for what, r in responses.items():
            for name, value in HARDENING.items():
                assert r.headers.get(name) == value, (what, r.status_code, dict(r.headers))
            csp = r.headers.get("content-security-policy", "")
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp, (what, csp)
        for page in ("/", "/label", "/admin"):  # the CSP allows no inline script: the pages have none
            html = c.get(page).text
            assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], page
            assert not re.search(r"\son[a-z]+\s*=|style\s*=|javascript:", html), page
            for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
                assert c.get(src).status_code == 200, src


def test_host_header_must_be_an_allowed_host(project, start_server):
    good = tokens(project, "alice")["alice"]
    server = start_server(project)
    port = server.port
    for host in ["evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "localhost.evil.example", ""]:
        r = httpx.get(server.url + "/api/me", headers={"Host": host, "Authorization": f"Bearer {good}"})
        assert r.status_code == 400 and "--allowed-host" in r.json()["detail"], (host, r.status_code)
        assert httpx.get(server.url + "/", headers={"Host": host}).status_code == 400
    for host in [f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"]:
        assert status(server, good, headers={"Host": host}) == 200, host

    team = start_server(project, "--allowed-host", "labels.example.org", "--allowed-host", "*.team.example")
    for host, code in [("labels.example.org", 200), ("labels.example.org:443", 200), ("a.team.example", 200),
                       ("team.example", 400), ("evil.example", 400), ("labels.example.org.evil.example", 400),
                       (f"localhost:{team.port}", 200)]:
        assert status(team, good, headers={"Host": host}) == code, host


def test_serve_explains_what_to_set_for_a_non_local_host(project):
    port = str(free_port())
    proc = run_cli("serve", project, "--host", "0.0.0.0", "--port", port, timeout=30)
    one_line_error((proc.returncode, proc.stdout, proc.stderr), "--host 0.0.0.0", "--allowed-host")
    proc = run_cli("serve", project, "--allowed-host", "https://labels.example.org/", "--port", port, timeout=30)
    one_line_error((proc.returncode, proc.stdout, proc.stderr), "--allowed-host", "labels.example.org")
    proc = run_cli("serve", project, "--max-failed-signins", "-1", "--port", port, timeout=30)
    one_line_error((proc.returncode, proc.stdout, proc.stderr), "--max-failed-signins")
