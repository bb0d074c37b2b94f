"""The labelling app: a FastAPI application over one project, served by uvicorn.

Routes (every ``/api`` route needs ``Authorization: Bearer TOKEN``; 401 without a valid one, 403 for an
expert on an admin route; errors are JSON ``{"detail": "message"}``):

* ``GET /api/me`` -> ``{"name", "is_admin"}``.
* ``POST /api/next`` -> ``{"round", "item": {"item_id", "text", "prompt", "labels", "progress"} | null,
  "progress": {"done", "total", "mine"}, "message"}``. Blind: never a score, group or anyone's label.
* ``POST /api/annotations {"item_id", "label"}`` -> 201 ``{"round", "item_id", "label", "progress"}`` after commit.
* ``POST /api/skip {"item_id"}`` -> ``{"round", "item_id", "skipped": true}``.
* ``POST /api/undo`` -> the reopened item, shaped as ``/api/next``'s answer.
* Admin: ``GET /api/admin/progress``, ``GET /api/admin/agreement``, ``GET /api/admin/disagreements``,
  ``POST /api/admin/adjudicate {"item_id", "label"}``, ``GET /api/admin/export?format=jsonl|csv`` (one record
  per expert annotation: ``item_id, annotator, label, round, created_at`` plus the item's adjudication in
  ``adjudication, adjudicated_by``, empty when none).
* Pages: ``GET /`` (sign in), ``GET /label``, ``GET /admin``; assets under ``/static``.

Status codes: 404 unknown item, 409 state conflict (not assigned, already labelled, nothing to undo), 413 body
over 64 KiB, 422 malformed JSON, a missing field or a label not in the task. A refused request changes nothing.

Hardening: every response carries a Content-Security-Policy (the app's own scripts and styles only), X-Frame-Options
DENY, X-Content-Type-Options nosniff and Referrer-Policy no-referrer; a request whose Host header is not an allowed
host (127.0.0.1, localhost and ::1, with any port, plus ``allowed_hosts``) gets 400, which closes DNS rebinding; a
client address that sent ``max_failed_signins`` wrong tokens within a minute gets 429 with Retry-After on every
request that carries a token until the oldest of them is a minute old. Tokens are checked against the database on
every request, so a revoked, rotated or expired token is refused at once.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from curate.errors import CurateError
from curate.project import Project
from curate.web import assign
from curate.web.auth import authenticate

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024
DRAIN_LIMIT = 4 * 1024 * 1024  # a refused body up to this size is read (and dropped) before the 413
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")  # always allowed in the Host header, with any port
MAX_FAILED_SIGNINS = 10  # wrong tokens per client address per SIGNIN_WINDOW_S before 429
SIGNIN_WINDOW_S = 60.0
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
log = logging.getLogger("curate.web")


def host_name(value: str) -> str:
    """The host of a Host header or ``--allowed-host`` value, lower case, without port, brackets or final dot:
    ``"[::1]:8000"`` -> ``"::1"``, ``"Labels.Example.org:443"`` -> ``"labels.example.org"``."""
    value = value.strip().lower()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def check_serve_options(host: str, port: int, allowed_hosts: Iterable[str] = (),
                        max_failed_signins: int = MAX_FAILED_SIGNINS) -> list[str]:
    """Check ``curate serve``'s options before anything starts; returns the allowed host patterns (normalised).

    Raises:
        CurateError: a port out of range, an allowed host that is not a bare host name, a negative sign-in limit,
            or a non-local ``--host`` without ``--allowed-host`` (the app would refuse every request but local ones).
    """
    if not 0 <= int(port) <= 65535:
        raise CurateError(f"--port {port}: must be between 0 and 65535")
    if max_failed_signins < 0:
        raise CurateError(f"--max-failed-signins {max_failed_signins}: give 0 (no limit) or a positive number")
    patterns = []
    for value in allowed_hosts:
        name = host_name(value)
        bare = name.removeprefix("*.")
        if any(c in value.strip() for c in "/@?#\\ \t") or not bare or (name != "*" and "*" in bare):
            raise CurateError(f"--allowed-host {value!r}: give a host name as typed in the browser, without scheme or "
                              "path, e.g. --allowed-host labels.example.org (or *.example.org)")
        patterns.append(name)
    if host_name(host) not in LOCAL_HOSTS and not patterns:
        raise CurateError(f"--host {host} accepts other machines, but without --allowed-host only requests addressed to "
                          "127.0.0.1 or localhost are answered: add --allowed-host NAME for each name the experts use "
                          "(e.g. --allowed-host labels.example.org), ideally behind an HTTPS reverse proxy with "
                          "--host 127.0.0.1 (README: serving the app to a team)")
    return patterns


class HostCheck:
    """ASGI middleware: answer 400 to a request whose Host header is not an allowed host (any port): the local
    names, exact names, ``*.domain`` (its subdomains) or ``*`` (any host). Closes DNS rebinding."""

    def __init__(self, app: Callable, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        names = {host_name(h) for h in allowed_hosts} | set(LOCAL_HOSTS)
        self.any = "*" in names
        self.exact = {n for n in names if not n.startswith("*")}
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))

    def allowed(self, host: str) -> bool:
        """Whether a Host header's value names an allowed host."""
        name = host_name(host)
        return self.any or name in self.exact or (bool(name) and name.endswith(self.suffixes) and bool(self.suffixes))

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":  # the app has no websocket route; lifespan passes
            return await self.app(scope, receive, send)
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        if self.allowed(host):
            return await self.app(scope, receive, send)
        detail = (f"host {host_name(host)[:100]!r} is not allowed: the server answers only to the names given with "
                  "`curate serve --allowed-host NAME` (and 127.0.0.1, localhost)")
        await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: the hardening headers (:data:`SECURITY_HEADERS`) on every HTTP response."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower().decode("latin-1") not in SECURITY_HEADERS]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SigninLimiter:
    """Failed sign-ins (wrong tokens) per client address in a sliding window, thread-safe and in process.

    An address with ``limit`` failures in the last ``window_s`` seconds is blocked until the oldest of them is
    ``window_s`` old; ``limit`` 0 blocks nobody. At most ``max_addresses`` addresses are tracked (the oldest go
    first), so a flood of addresses cannot exhaust memory.
    """

    def __init__(self, limit: int = MAX_FAILED_SIGNINS, window_s: float = SIGNIN_WINDOW_S,
                 max_addresses: int = 100_000) -> None:
        self.limit, self.window_s, self.max_addresses = int(limit), float(window_s), int(max_addresses)
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again, or None if it is not blocked."""
        if self.limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return None
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if not times:
                del self._failures[address]
                return None
            if len(times) < self.limit:
                return None
            return max(1, math.ceil(times[0] + self.window_s - now))

    def failed(self, address: str) -> None:
        """Record a wrong token from ``address``."""
        if self.limit <= 0:
            return
        with self._lock:
            times = self._failures.pop(address, None)
            if times is None:
                times = deque(maxlen=self.limit)
                while len(self._failures) >= self.max_addresses:
                    del self._failures[next(iter(self._failures))]
            times.append(time.monotonic())
            self._failures[address] = times  # re-inserted: the dict stays ordered by last failure


class LabelBody(BaseModel):
    item_id: str = Field(min_length=1, max_length=256)
    label: str = Field(min_length=1, max_length=256)


class ItemBody(BaseModel):
    item_id: str = Field(min_length=1, max_length=256)


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes with 413, by its Content-Length and by the
    bytes actually received (a chunked body has no Content-Length), before the app sees any of it."""

    def __init__(self, app: Callable, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._refuse(scope, receive, send, more=True)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await self._refuse(scope, receive, send, more=message.get("more_body", False))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict, receive: Callable, send: Callable, more: bool) -> None:
        # Read and drop the rest of a moderately large body before answering: closing a socket with unread
        # data resets the connection, and the client might never see the 413.
        drained = 0
        while more and drained <= DRAIN_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        detail = f"request body too large: at most {self.limit} bytes ({self.limit // 1024} KiB)"
        headers = {"Connection": "close"} if more else None
        await JSONResponse({"detail": detail}, status_code=413, headers=headers)(scope, receive, send)


def _finite(x: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars and arrays -> Python numbers and lists."""
    if hasattr(x, "tolist"):
        x = x.tolist()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def parse_body(model: type[BaseModel], raw: bytes) -> BaseModel:
    """Validate a JSON request body (read after authentication, so a bad token is 401 whatever the body).

    Raises:
        RequestValidationError: not JSON, not an object, or a field missing or invalid (answered with 422).
    """
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False, include_context=False)) from None


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return f"request body is not valid JSON: {err.get('msg', '').removeprefix('Invalid JSON: ')}"
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "invalid request: " + "; ".join(parts)


def create_app(project: Project, *, allowed_hosts: Iterable[str] = (), max_failed_signins: int = MAX_FAILED_SIGNINS,
               signin_window_s: float = SIGNIN_WINDOW_S) -> FastAPI:
    """The labelling app over an opened project (the pool is loaded now, so a broken pool fails here).

    The app holds the project in ``app.state.project`` and a lock that serialises this process's writers (the
    database's exclusive transactions still serialise writers across processes).

    Args:
        allowed_hosts: host names answered besides 127.0.0.1, localhost and ::1 (``*.domain``, ``*`` for any).
        max_failed_signins: wrong tokens per client address within ``signin_window_s`` before 429 (0: no limit).
    """
    store, task = project.store, project.config.task
    known = project.position
    texts = project.texts
    timeout_s = project.config.oracle.assignment_timeout_s
    app = FastAPI(title="curate labelling", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.project = project
    lock = threading.Lock()
    limiter = SigninLimiter(max_failed_signins, signin_window_s)
    app.state.signin_limiter = limiter
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    app.add_middleware(HostCheck, allowed_hosts=list(allowed_hosts))
    app.add_middleware(SecurityHeaders)  # added last: the outermost, so the 400s and 413s carry the headers too
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(CurateError)
    async def _curate_error(_request: Request, exc: CurateError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=getattr(exc, "status", 400))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc), "errors": jsonable_encoder(exc.errors())}, status_code=422)

    def user(request: Request) -> dict:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "missing token: send 'Authorization: Bearer TOKEN' (from `curate annotators add`)",
                                headers={"WWW-Authenticate": "Bearer"})
        address = request.client.host if request.client else "unknown"
        wait = limiter.retry_after(address)
        if wait is not None:
            raise HTTPException(429, f"too many wrong tokens from this address: try again in {wait} s",
                                headers={"Retry-After": str(wait)})
        row = authenticate(store, token.strip())
        if row is None:
            limiter.failed(address)
            raise HTTPException(401, "invalid, revoked or expired token: ask an admin for a new one "
                                     "(`curate annotators rotate PROJECT NAME`)", headers={"WWW-Authenticate": "Bearer"})
        return row

    def admin(who: dict = Depends(user)) -> dict:
        if not who["is_admin"]:
            raise HTTPException(403, "admin only: this token belongs to an expert")
        return who

    def item_payload(h: assign.Handout) -> dict:
        """The blind view of an item: no score, group or label of anyone."""
        if h.round is None:
            return {"round": None, "item": None, "progress": {"done": 0, "total": 0, "mine": 0},
                    "message": "nothing to label: no round is waiting for labels"}
        if h.item_id is None:
            return {"round": h.round, "item": None, "progress": h.progress,
                    "message": f"nothing left for you in round {h.round}"}
        item = {"item_id": h.item_id, "text": texts[known[h.item_id]], "prompt": task.prompt,
                "labels": list(task.labels), "progress": h.progress}
        return {"round": h.round, "item": item, "progress": h.progress, "message": ""}

    # -- pages --------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def signin_page() -> FileResponse:
        return FileResponse(STATIC / "signin.html")

    @app.get("/label", include_in_schema=False)
    def label_page() -> FileResponse:
        return FileResponse(STATIC / "label.html")

    @app.get("/admin", include_in_schema=False)
    def admin_page() -> FileResponse:
        return FileResponse(STATIC / "admin.html")

    # -- experts ------------------------------------------------------------------------------------
    @app.get("/api/me")
    def me(who: dict = Depends(user)) -> dict:
        return {"name": who["name"], "is_admin": bool(who["is_admin"])}

    @app.post("/api/next")
    def next_item(who: dict = Depends(user)) -> dict:
        with lock:
            return item_payload(assign.next_item(store, who["name"], timeout_s=timeout_s))

    def locked(fn: Callable, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return fn(*args, **kwargs)

    @app.post("/api/annotations", status_code=201)
    async def annotate(request: Request, who: dict = Depends(user)) -> dict:
        body = parse_body(LabelBody, await request.body())
        return await run_in_threadpool(
            locked, assign.record_label, store, who["name"], body.item_id, body.label, labels=task.labels, known=known
        )

    @app.post("/api/skip")
    async def skip(request: Request, who: dict = Depends(user)) -> dict:
        body = parse_body(ItemBody, await request.body())
        return await run_in_threadpool(locked, assign.skip_item, store, who["name"], body.item_id, known=known)

    @app.post("/api/undo")
    def undo(who: dict = Depends(user)) -> dict:
        with lock:
            return item_payload(assign.undo_last(store, who["name"]))

    # -- admin --------------------------------------------------------------------------------------
    @app.get("/api/admin/progress")
    def progress(_: dict = Depends(admin)) -> dict:
        return assign.progress_report(store)

    @app.get("/api/admin/agreement")
    def agreement(_: dict = Depends(admin)) -> JSONResponse:
        import curate.agreement as ag

        labels = assign.labels_by_annotator(store)
        out: dict[str, Any] = {"annotators": sorted(labels), "matrix": [], "n": [], "fleiss_kappa": None,
                               "krippendorff_alpha": None, "errors": {}}
        calls = {
            "kappa_matrix": lambda f: out.update({k: f(labels)[k] for k in ("annotators", "matrix", "n")}),
            "fleiss_kappa": lambda f: out.update(fleiss_kappa=f(labels, list(task.labels))),
            "krippendorff_alpha": lambda f: out.update(krippendorff_alpha=f(labels, list(task.labels))),
        }
        for name, call in calls.items():
            fn = getattr(ag, name, None)
            if fn is None:
                out["errors"][name] = "not available in this version of curate.agreement"
                continue
            try:
                call(fn)
            except Exception as exc:  # too few labels, one label only, ...: show why, keep the rest
                out["errors"][name] = f"{type(exc).__name__}: {exc}"
        return JSONResponse(_finite(out))

    @app.get("/api/admin/disagreements")
    def disagreements(_: dict = Depends(admin)) -> dict:
        items = assign.disagreements(store)
        for it in items:
            it["text"] = texts[known[it["item_id"]]] if it["item_id"] in known else None
        return {"labels": list(task.labels), "items": items}

    @app.post("/api/admin/adjudicate")
    async def adjudicate(request: Request, who: dict = Depends(admin)) -> dict:
        body = parse_body(LabelBody, await request.body())
        return await run_in_threadpool(
            locked, assign.adjudicate, store, who["name"], body.item_id, body.label, labels=task.labels, known=known
        )

    @app.get("/api/admin/export")
    def export(format: str = Query("jsonl"), _: dict = Depends(admin)) -> Response:
        if format not in ("jsonl", "csv"):
            raise assign.Invalid(f"format {format!r}: must be jsonl or csv")
        rows = assign.export_rows(store)
        name = f"{project.path.name}-annotations.{format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if format == "jsonl":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            return Response(text, media_type="application/x-ndjson", headers=headers)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=assign.EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)

    return app


def serve(project_path: Path | str, host: str = "127.0.0.1", port: int = 8000, *, allowed_hosts: Iterable[str] = (),
          max_failed_signins: int = MAX_FAILED_SIGNINS) -> None:
    """Serve the labelling app of the project at ``project_path`` until interrupted (blocking).

    Behind a reverse proxy on the same machine, uvicorn takes the client address from ``X-Forwarded-For`` sent by
    127.0.0.1 (``FORWARDED_ALLOW_IPS`` for other proxies), so the sign-in limit counts each expert's own address.

    Raises:
        CurateError: the project cannot be opened, or an option is invalid (see :func:`check_serve_options`).
    """
    import uvicorn

    patterns = check_serve_options(host, port, allowed_hosts, max_failed_signins)
    app = create_app(Project.open(Path(project_path)), allowed_hosts=patterns, max_failed_signins=max_failed_signins)
    if host_name(host) not in LOCAL_HOSTS:
        log.warning("serving on %s: tokens travel in clear text; put the app behind HTTPS", host)
    uvicorn.run(app, host=host, port=int(port), log_level="info")
