"""The project database: annotations, selections, splits and completed steps.

SQLAlchemy Core over SQLite by default (``PROJECT/curate.db``); any SQLAlchemy URL (PostgreSQL for a
team) works through the same schema. Every write happens in a transaction, and a step's results
are committed in the same transaction as the record that the step is complete, so a run killed at
any moment resumes at the first step not recorded with nothing lost or written twice.
Uniqueness is enforced by the database: one label per (item, annotator), one selection row per
(round, item), one split per item.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from curate.errors import CurateError

from curate.oracle.base import Annotation

DB_NAME = "curate.db"

metadata = MetaData()

meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

steps = Table(
    "steps",
    metadata,
    Column("round", Integer, primary_key=True),
    Column("step", String(32), primary_key=True),
    Column("completed_at", Float, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("info", Text, nullable=False, default="{}"),
)

selections = Table(
    "selections",
    metadata,
    Column("round", Integer, primary_key=True),
    Column("item_id", String(256), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("group_id", Integer, nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("labels_needed", Integer, nullable=False, default=1),
)

annotations = Table(
    "annotations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(256), nullable=False),
    Column("annotator", String(128), nullable=False),
    Column("label", String(256), nullable=False),
    Column("round", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("item_id", "annotator", name="one_label_per_item_and_annotator"),
)

annotators = Table(
    "annotators",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("token_hash", String(128), nullable=False, unique=True),  # sha256 of the token; the token is never stored
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),  # the token is refused from this time on; None: never expires
    Column("revoked_at", Float, nullable=True),  # set by `curate annotators revoke`; cleared by `rotate`
)

assignments = Table(
    "assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("round", Integer, nullable=False),
    Column("item_id", String(256), nullable=False),
    Column("annotator", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # open | done | skipped
    Column("assigned_at", Float, nullable=False),
    UniqueConstraint("round", "item_id", "annotator", name="one_assignment_per_item_and_annotator"),
)

adjudications = Table(
    "adjudications",
    metadata,
    Column("item_id", String(256), primary_key=True),
    Column("label", String(256), nullable=False),
    Column("admin", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
)

splits = Table(
    "splits",
    metadata,
    Column("item_id", String(256), primary_key=True),
    Column("split", String(16), nullable=False),  # test | finetune | eval
    Column("round", Integer, nullable=False),
)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _add_missing_columns(engine: Engine) -> None:
    """Migrate a database written by an older curate: add the nullable columns a newer schema defines (for
    example ``annotators.expires_at``) to the tables that lack them. A concurrent opener adding the same column
    first is not an error."""
    have = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in metadata.tables}
    quote = engine.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:
        for col in table.columns:
            if col.name in have[table.name]:
                continue
            if not col.nullable:
                raise CurateError(f"database {engine.url!r}: table {table.name} lacks column {col.name}, which this "
                                  "version of curate cannot add; export the annotations and start a new project")
            ddl = (f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(col.name)} "
                   f"{col.type.compile(dialect=engine.dialect)}")
            try:
                with engine.begin() as conn:
                    conn.exec_driver_sql(ddl)
            except (OperationalError, ProgrammingError):
                if col.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise


class Store:
    """The project's database.

    Args:
        url: a SQLAlchemy URL, or a project folder (then ``sqlite:///PROJECT/curate.db``).
    """

    def __init__(self, url: str | Path) -> None:
        if isinstance(url, Path) or "://" not in str(url):
            url = f"sqlite:///{Path(url) / DB_NAME}"
        self.url = str(url)
        if self.url.startswith("postgresql://"):  # the driver we ship is psycopg 3
            self.url = "postgresql+psycopg://" + self.url[len("postgresql://"):]
        try:
            self.engine: Engine = create_engine(self.url, pool_pre_ping=True)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            metadata.create_all(self.engine)
            _add_missing_columns(self.engine)
        except OperationalError as exc:
            raise CurateError(f"database {self.url!r}: cannot connect ({str(exc.orig).strip().splitlines()[0]}); "
                              "check the URL and that the server is running") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def exclusive_transaction(self) -> Iterator[Connection]:
        """A transaction that holds the database's write lock from its first statement, so a read followed
        by a write (hand out an item only if it still needs labels) cannot interleave with another writer:
        ``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
        else:
            with self.engine.begin() as conn:
                if self.engine.dialect.name == "postgresql":
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(424242)")
                yield conn

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> Any | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)).first()
        return None if row is None else json.loads(row[0])

    def set_meta(self, conn: Connection, key: str, value: Any) -> None:
        conn.execute(meta_table.delete().where(meta_table.c.key == key))
        conn.execute(insert(meta_table).values(key=key, value=json.dumps(value)))

    # -- steps --------------------------------------------------------------------------------
    def step_done(self, round_index: int, step: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(steps.c.step).where(steps.c.round == round_index, steps.c.step == step)
            ).first()
        return row is not None

    def mark_step(self, conn: Connection, round_index: int, step: str, seconds: float, info: dict | None = None) -> None:
        """Record a completed step (in the caller's transaction, beside the step's own writes)."""
        conn.execute(
            insert(steps).values(
                round=round_index, step=step, completed_at=time.time(), seconds=seconds, info=json.dumps(info or {})
            )
        )

    def step_records(self) -> list[dict]:
        """Every completed step: ``[{"round", "step", "completed_at", "seconds", "info"}]`` in order of completion."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(steps).order_by(steps.c.completed_at)).mappings().all()
        return [{**r, "info": json.loads(r["info"])} for r in rows]

    # -- selections ---------------------------------------------------------------------------
    def add_selection(self, conn: Connection, round_index: int, rows: Iterable[dict]) -> None:
        """Insert a round's selection: rows of ``{"item_id", "position", "group_id", "strategy", "score"}``."""
        rows = [{**r, "round": round_index} for r in rows]
        if rows:
            conn.execute(insert(selections), rows)

    def selection(self, round_index: int) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(selections).where(selections.c.round == round_index).order_by(selections.c.position)
            ).mappings().all()
        return [dict(r) for r in rows]

    # -- annotations --------------------------------------------------------------------------
    def add_annotation(self, conn: Connection, ann: Annotation) -> bool:
        """Insert one annotation unless (item, annotator) already has one; True if inserted."""
        exists = conn.execute(
            select(annotations.c.id).where(
                annotations.c.item_id == ann.item_id, annotations.c.annotator == ann.annotator
            )
        ).first()
        if exists:
            return False
        conn.execute(
            insert(annotations).values(
                item_id=ann.item_id, annotator=ann.annotator, label=ann.label, round=ann.round, created_at=time.time()
            )
        )
        return True

    def annotations(self, round_index: int | None = None) -> list[dict]:
        """Annotations as dicts ``{"id", "item_id", "annotator", "label", "round", "created_at"}`` in insertion order."""
        q = select(annotations).order_by(annotations.c.id)
        if round_index is not None:
            q = q.where(annotations.c.round == round_index)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings().all()]

    def annotation_counts(self, conn: Connection, item_ids: list[str]) -> dict[str, int]:
        """``{item_id: number of annotations}`` for the given items (in the caller's transaction)."""
        q = (select(annotations.c.item_id, func.count()).where(annotations.c.item_id.in_(item_ids))
             .group_by(annotations.c.item_id))
        return {i: int(n) for i, n in conn.execute(q)}

    def count_annotations(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(annotations)).scalar_one())

    # -- splits -------------------------------------------------------------------------------
    def add_splits(self, conn: Connection, rows: Iterable[tuple[str, str, int]]) -> None:
        """Insert ``(item_id, split, round)`` rows; split is ``test``, ``finetune`` or ``eval``."""
        rows = [{"item_id": i, "split": s, "round": r} for i, s, r in rows]
        if rows:
            conn.execute(insert(splits), rows)

    def splits(self) -> dict[str, str]:
        """``{item_id: split}`` for every item with a split."""
        with self.engine.connect() as conn:
            return {r[0]: r[1] for r in conn.execute(select(splits.c.item_id, splits.c.split))}
