"""Personal access tokens for the labelling app.

A token is ``secrets.token_urlsafe(32)``, shown once; the database keeps only its SHA-256 hex digest
(``annotators.token_hash``), so a leaked database does not leak working tokens.

A token can expire (``annotators.expires_at``), be revoked (``revoked_at``) or be replaced by a new one
(:func:`rotate_token`). :func:`authenticate` reads the database on every request, so a running server refuses a
revoked, replaced or expired token at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time

from curate.errors import CurateError
from curate.store import Connection, Store
from curate.validation import check_annotator_name

MAX_NAME = 128


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def expiry_time(expires_in: int | None = None, expires: str | None = None, *, now: float | None = None) -> float | None:
    """The expiry time (Unix seconds) of a token from ``--expires-in DAYS`` or ``--expires YYYY-MM-DD``.

    ``--expires YYYY-MM-DD`` means the token is refused from 00:00 UTC of that date. Neither: None (never expires).

    Raises:
        CurateError: both are given, the number of days is not positive, or the date is malformed or not in the future.
    """
    now = time.time() if now is None else now
    if expires_in is not None and expires is not None:
        raise CurateError("give at most one of --expires-in DAYS or --expires YYYY-MM-DD")
    if expires_in is not None:
        if expires_in <= 0 or expires_in > 36500:
            raise CurateError(f"--expires-in {expires_in}: give a number of days between 1 and 36500")
        return now + expires_in * 86400.0
    if expires is not None:
        try:
            day = dt.date.fromisoformat(expires.strip())
        except ValueError:
            raise CurateError(f"--expires {expires!r}: give a date as YYYY-MM-DD, e.g. --expires 2030-01-31") from None
        at = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()
        if at <= now:
            raise CurateError(f"--expires {expires}: that date has passed (tokens expire at 00:00 UTC); give a later date")
        return at
    return None


def add_annotator(store: Store, name: str, *, admin: bool = False, expires_at: float | None = None) -> str:
    """Register an annotator and return their fresh personal access token (the only time it is visible).

    Args:
        name: the annotator's name as it appears beside their labels (1-128 characters, no control characters).
        admin: may use the admin page and routes (progress, agreement, adjudication, export).
        expires_at: Unix time from which the token is refused (see :func:`expiry_time`); None: never.

    Raises:
        CurateError: the name breaks :func:`curate.validation.annotator_name_problem` (empty, over 128 characters,
            a control or invisible character, ``<`` or ``>``), or an annotator of that name exists.
    """
    clean = check_annotator_name(name.strip())  # the rules every annotator name obeys (import too)
    token = secrets.token_urlsafe(32)
    # One transaction: the name check and the insert; a concurrent registration of the same name also fails.
    if not store.register_annotator(clean, hash_token(token), is_admin=admin, created_at=time.time(),
                                    expires_at=expires_at):
        raise CurateError(f"annotator {clean!r} already exists; choose another name")
    return token


def authenticate(store: Store, token: str | None) -> dict | None:
    """The annotator row ``{"name", "token_hash", "is_admin", "created_at", "expires_at", "revoked_at"}`` owning
    ``token``, or None when no annotator holds it or it is revoked or expired. Reads the database on every call (no
    cache), so a token revoked, rotated or expired while a server runs is refused from the next request on."""
    if not token:
        return None
    now = time.time()
    with store.connection() as conn:
        return store.annotator_by_token_hash(conn, hash_token(token), now=now)


def list_annotators(store: Store) -> list[dict]:
    """Every registered annotator as ``{"name", "is_admin", "created_at", "expires_at", "revoked_at"}``, by name
    (never the token hash)."""
    with store.connection() as conn:
        return store.list_annotators(conn)


def _existing(conn: Connection, name: str) -> str:
    clean = name.strip()
    if not Store.annotator_exists(conn, clean):
        raise CurateError(f"annotator {name!r} does not exist; see `curate annotators list PROJECT` for the names")
    return clean


def revoke_annotator(store: Store, name: str) -> bool:
    """Revoke an annotator's token: it is refused from the next request on, even by a running server. Their
    labels stay. ``curate annotators rotate`` gives them a new token.

    Returns:
        True if the token was working until now, False if it was already revoked.

    Raises:
        CurateError: no annotator of that name.
    """
    with store.transaction() as conn:
        clean = _existing(conn, name)
        done = store.revoke_annotator(conn, clean, at=time.time())
    return done


def rotate_token(store: Store, name: str, *, expires_at: float | None = None) -> str:
    """Replace an annotator's token by a fresh one and return it (the only time it is visible). The old token is
    refused from the next request on; a revoked annotator is re-admitted with the new token.

    Args:
        expires_at: Unix time from which the new token is refused (see :func:`expiry_time`); None: never.

    Raises:
        CurateError: no annotator of that name.
    """
    token = secrets.token_urlsafe(32)
    with store.transaction() as conn:
        clean = _existing(conn, name)
        store.replace_token(conn, clean, hash_token(token), expires_at=expires_at)
    return token
