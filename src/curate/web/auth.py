"""Personal access tokens for the labelling app.

A token is ``secrets.token_urlsafe(32)``, shown once; the database keeps only its SHA-256 hex digest
(``annotators.token_hash``), so a leaked database does not leak working tokens.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from curate.errors import CurateError
from curate.store import Store, annotators

MAX_NAME = 128


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_annotator(store: Store, name: str, *, admin: bool = False) -> str:
    """Register an annotator and return their fresh personal access token (the only time it is visible).

    Args:
        name: the annotator's name as it appears beside their labels (1-128 characters, no control characters).
        admin: may use the admin page and routes (progress, agreement, adjudication, export).

    Raises:
        CurateError: the name is empty, too long or has control characters, or an annotator of that name exists.
    """
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME or any(ord(c) < 32 for c in clean):
        raise CurateError(f"annotator name {name!r}: must be 1 to {MAX_NAME} printable characters")
    token = secrets.token_urlsafe(32)
    try:
        with store.transaction() as conn:
            if conn.execute(select(annotators.c.name).where(annotators.c.name == clean)).first():
                raise CurateError(f"annotator {clean!r} already exists; choose another name")
            conn.execute(
                insert(annotators).values(name=clean, token_hash=hash_token(token), is_admin=admin, created_at=time.time())
            )
    except IntegrityError:  # a concurrent registration of the same name
        raise CurateError(f"annotator {clean!r} already exists; choose another name") from None
    return token


def authenticate(store: Store, token: str | None) -> dict | None:
    """The annotator row ``{"name", "token_hash", "is_admin", "created_at"}`` owning ``token``, or None."""
    if not token:
        return None
    with store.engine.connect() as conn:
        row = conn.execute(select(annotators).where(annotators.c.token_hash == hash_token(token))).mappings().first()
    return None if row is None else dict(row)


def list_annotators(store: Store) -> list[dict]:
    """Every registered annotator as ``{"name", "is_admin", "created_at"}``, by name (never the token hash)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(annotators.c.name, annotators.c.is_admin, annotators.c.created_at).order_by(annotators.c.name)
        ).mappings().all()
    return [dict(r) for r in rows]
