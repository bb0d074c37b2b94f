"""The project database: annotations, selections, splits and completed steps.

SQLAlchemy Core over SQLite by default (``PROJECT/curate.db``); any SQLAlchemy URL (PostgreSQL for a
team) works through the same schema. Every write happens in a transaction, and a step's results
are committed in the same transaction as the record that the step is complete, so a run killed at
any moment resumes at the first step not recorded with nothing lost or written twice.
Uniqueness is enforced by the database: one label per (item, annotator), one selection row per
(round, item), one split per item.

This is the only module that knows the tables and writes SQL (``tests/unit/test_layering.py`` checks it):
the loop, the labelling app (assignment, authentication), validation and import/export call the methods of
:class:`Store`. A method that takes a ``conn`` runs in the caller's transaction (from
:meth:`Store.transaction`, :meth:`Store.exclusive_transaction` or :meth:`Store.connection`); those that need
nothing of the instance are static, so code holding only a connection (:mod:`curate.validation`) calls them on
the class.
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
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from curate.errors import CurateError
from curate.records import Annotation, Assignment

# ``Connection`` is the handle the methods below take as ``conn``; other modules import it from here for
# their type hints (only this module imports sqlalchemy).
__all__ = ["DB_NAME", "Connection", "Store"]

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
    def connection(self) -> Iterator[Connection]:
        """A connection for reads, with no explicit transaction (whatever it began is rolled back on close)."""
        with self.engine.connect() as conn:
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

    # -- rounds (in the caller's transaction) -------------------------------------------------
    @staticmethod
    def current_label_round(conn: Connection) -> int | None:
        """The latest round that has selected items and no completed ``label`` step, or None."""
        done = select(steps.c.round).where(steps.c.step == "label")
        return conn.execute(select(func.max(selections.c.round)).where(selections.c.round.not_in(done))).scalar()

    @staticmethod
    def labelled_rounds(conn: Connection) -> set[int]:
        """The rounds whose ``label`` step is recorded as complete."""
        return {row[0] for row in conn.execute(select(steps.c.round).where(steps.c.step == "label"))}

    @staticmethod
    def selected_rounds(conn: Connection) -> list[int]:
        """Every round with selected items, ascending."""
        return [t for (t,) in conn.execute(select(selections.c.round).distinct().order_by(selections.c.round)).all()]

    @staticmethod
    def latest_selected_round(conn: Connection) -> int | None:
        """The highest round with selected items, or None when nothing was selected yet."""
        return conn.execute(select(func.max(selections.c.round))).scalar()

    @staticmethod
    def selection_needs(conn: Connection, round_index: int) -> list[tuple[str, int]]:
        """``[(item_id, labels_needed)]`` of a round's selection, by position."""
        q = select(selections.c.item_id, selections.c.labels_needed).where(selections.c.round == round_index)
        return [(r[0], int(r[1])) for r in conn.execute(q.order_by(selections.c.position))]

    @staticmethod
    def label_needs_of_item(conn: Connection, item_id: str) -> list[tuple[int, int]]:
        """``[(round, labels_needed)]`` of every round that selected ``item_id`` (empty: never selected)."""
        return [tuple(r) for r in conn.execute(
            select(selections.c.round, selections.c.labels_needed).where(selections.c.item_id == item_id)
        ).all()]

    # -- annotations (in the caller's transaction) --------------------------------------------
    @staticmethod
    def round_annotation_counts(conn: Connection, round_index: int) -> dict[str, int]:
        """``{item_id: annotations}`` of the round's selected items (annotations of any round count; items
        without annotations are absent)."""
        items = select(selections.c.item_id).where(selections.c.round == round_index)
        q = (select(annotations.c.item_id, func.count()).where(annotations.c.item_id.in_(items))
             .group_by(annotations.c.item_id))
        return {r[0]: int(r[1]) for r in conn.execute(q)}

    @staticmethod
    def count_annotations_by(conn: Connection, round_index: int, annotator: str) -> int:
        """How many labels ``annotator`` gave in round ``round_index``."""
        return int(conn.execute(
            select(func.count()).select_from(annotations).where(
                annotations.c.round == round_index, annotations.c.annotator == annotator
            )
        ).scalar_one())

    @staticmethod
    def items_labelled_by(conn: Connection, annotator: str) -> set[str]:
        """The ids of every item ``annotator`` labelled (any round)."""
        return {row[0] for row in conn.execute(select(annotations.c.item_id).where(annotations.c.annotator == annotator))}

    @staticmethod
    def has_annotation(conn: Connection, item_id: str, annotator: str | None = None) -> bool:
        """Whether ``item_id`` holds a label (by ``annotator``, when given)."""
        q = select(annotations.c.id).where(annotations.c.item_id == item_id)
        if annotator is not None:
            q = q.where(annotations.c.annotator == annotator)
        return conn.execute(q.limit(1)).first() is not None

    @staticmethod
    def labels_of_item(conn: Connection, item_id: str) -> int:
        """How many labels ``item_id`` holds (all annotators, all rounds)."""
        return int(conn.execute(
            select(func.count()).select_from(annotations).where(annotations.c.item_id == item_id)
        ).scalar_one())

    @staticmethod
    def annotators_of_annotations(conn: Connection, round_index: int | None = None) -> list[str]:
        """The annotator of each annotation (one entry per label; of round ``round_index`` when given)."""
        q = select(annotations.c.annotator)
        if round_index is not None:
            q = q.where(annotations.c.round == round_index)
        return [a for (a,) in conn.execute(q)]

    @staticmethod
    def last_annotation_by(conn: Connection, round_index: int, annotator: str) -> dict | None:
        """``{"id", "item_id"}`` of ``annotator``'s most recent label in round ``round_index``, or None."""
        row = conn.execute(
            select(annotations.c.id, annotations.c.item_id)
            .where(annotations.c.round == round_index, annotations.c.annotator == annotator)
            .order_by(annotations.c.id.desc())
            .limit(1)
        ).mappings().first()
        return None if row is None else dict(row)

    @staticmethod
    def delete_annotation(conn: Connection, annotation_id: int) -> None:
        """Delete one annotation by its id."""
        conn.execute(delete(annotations).where(annotations.c.id == annotation_id))

    @staticmethod
    def set_annotation_time(conn: Connection, item_id: str, annotator: str, created_at: float) -> None:
        """Set the ``created_at`` of ``annotator``'s label of ``item_id`` (an imported label keeps its time)."""
        conn.execute(
            update(annotations)
            .where(annotations.c.item_id == item_id, annotations.c.annotator == annotator)
            .values(created_at=created_at)
        )

    # -- assignments (in the caller's transaction) --------------------------------------------
    @staticmethod
    def round_assignments(conn: Connection, round_index: int) -> list[Assignment]:
        """Every assignment of round ``round_index``, oldest hand-out first."""
        rows = conn.execute(
            select(assignments.c.round, assignments.c.item_id, assignments.c.annotator, assignments.c.status,
                   assignments.c.assigned_at)
            .where(assignments.c.round == round_index)
            .order_by(assignments.c.assigned_at)
        ).all()
        return [Assignment(*row) for row in rows]

    @staticmethod
    def assignment(conn: Connection, round_index: int, item_id: str, annotator: str) -> Assignment | None:
        """``annotator``'s assignment of ``item_id`` in round ``round_index``, or None."""
        row = conn.execute(
            select(assignments.c.round, assignments.c.item_id, assignments.c.annotator, assignments.c.status,
                   assignments.c.assigned_at)
            .where(assignments.c.round == round_index, assignments.c.item_id == item_id,
                   assignments.c.annotator == annotator)
        ).first()
        return None if row is None else Assignment(*row)

    @staticmethod
    def add_assignment(conn: Connection, round_index: int, item_id: str, annotator: str, assigned_at: float) -> None:
        """Hand ``item_id`` to ``annotator``: a new ``open`` assignment."""
        conn.execute(
            insert(assignments).values(
                round=round_index, item_id=item_id, annotator=annotator, status="open", assigned_at=assigned_at
            )
        )

    @staticmethod
    def update_assignment(conn: Connection, round_index: int, item_id: str, annotator: str, *,
                          status: str | None = None, assigned_at: float | None = None) -> int:
        """Set the status and/or hand-out time of ``annotator``'s assignment of ``item_id``; the number of rows
        changed (0 when there is no such assignment)."""
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status
        if assigned_at is not None:
            values["assigned_at"] = assigned_at
        if not values:
            raise ValueError("update_assignment: give status, assigned_at or both")
        return conn.execute(
            update(assignments)
            .where(assignments.c.round == round_index, assignments.c.item_id == item_id,
                   assignments.c.annotator == annotator)
            .values(**values)
        ).rowcount

    @staticmethod
    def delete_assignment(conn: Connection, round_index: int, item_id: str, annotator: str) -> None:
        """Delete ``annotator``'s assignment of ``item_id`` in round ``round_index``."""
        conn.execute(
            delete(assignments).where(assignments.c.round == round_index, assignments.c.item_id == item_id,
                                      assignments.c.annotator == annotator)
        )

    @staticmethod
    def assignment_statuses(conn: Connection) -> list[tuple[str, str]]:
        """``(annotator, status)`` of every assignment, all rounds."""
        return [(row.annotator, row.status) for row in conn.execute(
            select(assignments.c.annotator, assignments.c.status)
        )]

    # -- adjudications (in the caller's transaction) ------------------------------------------
    @staticmethod
    def adjudications(conn: Connection) -> list[dict]:
        """Adjudications as dicts ``{"item_id", "label", "admin", "created_at"}``, by item id."""
        rows = conn.execute(select(adjudications).order_by(adjudications.c.item_id)).mappings().all()
        return [dict(r) for r in rows]

    @staticmethod
    def set_adjudication(conn: Connection, item_id: str, label: str, admin: str, created_at: float) -> None:
        """Store (or replace) the admin's final label of ``item_id``."""
        conn.execute(delete(adjudications).where(adjudications.c.item_id == item_id))
        conn.execute(insert(adjudications).values(item_id=item_id, label=label, admin=admin, created_at=created_at))

    # -- annotators ---------------------------------------------------------------------------
    @staticmethod
    def annotator_exists(conn: Connection, name: str) -> bool:
        """Whether an annotator of exactly this name is registered."""
        return conn.execute(select(annotators.c.name).where(annotators.c.name == name)).first() is not None

    @staticmethod
    def annotator_names(conn: Connection) -> set[str]:
        """The names of every registered annotator."""
        return {row[0] for row in conn.execute(select(annotators.c.name))}

    @staticmethod
    def annotator_roles(conn: Connection) -> dict[str, bool]:
        """``{name: is_admin}`` of every registered annotator."""
        return {row.name: bool(row.is_admin) for row in conn.execute(select(annotators.c.name, annotators.c.is_admin))}

    @staticmethod
    def list_annotators(conn: Connection) -> list[dict]:
        """Every annotator as ``{"name", "is_admin", "created_at", "expires_at", "revoked_at"}``, by name (never the
        token hash)."""
        c = annotators.c
        rows = conn.execute(
            select(c.name, c.is_admin, c.created_at, c.expires_at, c.revoked_at).order_by(c.name)
        ).mappings().all()
        return [dict(r) for r in rows]

    @staticmethod
    def annotator_by_token_hash(conn: Connection, token_hash: str, *, now: float) -> dict | None:
        """The annotator row ``{"name", "token_hash", "is_admin", "created_at", "expires_at", "revoked_at"}``
        holding ``token_hash``, unless revoked or expired at ``now``; else None."""
        q = select(annotators).where(
            annotators.c.token_hash == token_hash,
            annotators.c.revoked_at.is_(None),
            or_(annotators.c.expires_at.is_(None), annotators.c.expires_at > now),
        )
        row = conn.execute(q).mappings().first()
        return None if row is None else dict(row)

    @staticmethod
    def insert_annotator(conn: Connection, name: str, token_hash: str, *, is_admin: bool, created_at: float,
                         expires_at: float | None = None) -> None:
        """Insert an annotator row (the caller checked the name is free, in the same transaction)."""
        conn.execute(
            insert(annotators).values(name=name, token_hash=token_hash, is_admin=is_admin, created_at=created_at,
                                      expires_at=expires_at)
        )

    def register_annotator(self, name: str, token_hash: str, *, is_admin: bool, created_at: float,
                           expires_at: float | None = None) -> bool:
        """Register an annotator in a transaction of its own; False (nothing written) when the name is taken,
        also by a concurrent registration of the same name."""
        try:
            with self.transaction() as conn:
                if self.annotator_exists(conn, name):
                    return False
                self.insert_annotator(conn, name, token_hash, is_admin=is_admin, created_at=created_at,
                                      expires_at=expires_at)
        except IntegrityError:  # a concurrent registration of the same name
            return False
        return True

    @staticmethod
    def revoke_annotator(conn: Connection, name: str, *, at: float) -> bool:
        """Mark ``name``'s token revoked at ``at``; False when it was already revoked (or no such annotator)."""
        done = conn.execute(
            update(annotators).where(annotators.c.name == name, annotators.c.revoked_at.is_(None))
            .values(revoked_at=at)
        ).rowcount
        return bool(done)

    @staticmethod
    def replace_token(conn: Connection, name: str, token_hash: str, *, expires_at: float | None) -> None:
        """Give ``name`` a new token hash and expiry, and clear any revocation."""
        conn.execute(update(annotators).where(annotators.c.name == name)
                     .values(token_hash=token_hash, expires_at=expires_at, revoked_at=None))
