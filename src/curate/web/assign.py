"""Who labels what: handing out items, storing labels, skip and undo, and the admin's views.

Plain functions over the :class:`~curate.store.Store`. Every read-then-write runs in
``store.exclusive_transaction()``, so experts labelling at the same time (threads of one server, or
several servers on one database) never receive more assignments of an item than it needs.

The current round is the latest round with selected items whose ``label`` step is not recorded as
complete. An item of that round may be handed to an expert when the expert has not labelled, skipped
or been given it, and its annotations plus the *other* experts' open assignments younger than
``oracle.assignment_timeout_s`` are fewer than its ``labels_needed``. An assignment older than that is
considered abandoned: its item may be handed to someone else, and the late label is still accepted
while the item needs it (refused with 409 once the item has all its labels).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Container, Sequence

from curate.errors import CurateError
from curate.records import Annotation, Assignment
from curate.store import Connection, Store
from curate.validation import LabelRules


class NotFound(CurateError):
    """The item does not exist (HTTP 404)."""

    status = 404


class Conflict(CurateError):
    """The request does not fit the current state: not assigned, already labelled, nothing to undo (HTTP 409)."""

    status = 409


class Invalid(CurateError):
    """A value outside what the task allows, e.g. a label not in ``task.labels`` (HTTP 422)."""

    status = 422


@dataclass
class Handout:
    """An item given to an expert: ``round`` is None when no round waits for labels, ``item_id`` None when
    nothing is left for this expert; ``progress`` is ``{"done", "total", "mine"}`` (see :func:`round_progress`)."""

    round: int | None
    item_id: str | None
    progress: dict = field(default_factory=dict)


def current_round(conn: Connection) -> int | None:
    """The latest round that has selected items and no completed ``label`` step, or None."""
    return Store.current_label_round(conn)


def _selection(conn: Connection, round_index: int) -> list[tuple[str, int]]:
    """``[(item_id, labels_needed)]`` of a round, by position."""
    return Store.selection_needs(conn, round_index)


def _annotation_counts(conn: Connection, round_index: int) -> Counter:
    """``{item_id: annotations}`` of the round's selected items (annotations of any round count)."""
    return Counter(Store.round_annotation_counts(conn, round_index))


def round_progress(conn: Connection, round_index: int, annotator: str) -> dict:
    """``{"done": labels in (capped at each item's need), "total": sum of labels_needed, "mine": this expert's
    labels in the round}``. Counts only: never whose label or which."""
    sel = _selection(conn, round_index)
    have = _annotation_counts(conn, round_index)
    mine = Store.count_annotations_by(conn, round_index, annotator)
    return {"done": sum(min(have[i], n) for i, n in sel), "total": sum(n for _, n in sel), "mine": int(mine)}


def next_item(store: Store, annotator: str, *, timeout_s: float, now: float | None = None) -> Handout:
    """The expert's open assignment of the current round, else a new one: the first selected item (by position)
    they have not labelled, skipped or been given, that still needs labels counting the others' live assignments.

    One exclusive transaction: two experts asking at once never both get an item's last needed label.
    """
    now = time.time() if now is None else now
    fresh = now - timeout_s
    with store.exclusive_transaction() as conn:
        r = current_round(conn)
        if r is None:
            return Handout(None, None)
        sel = _selection(conn, r)
        have = _annotation_counts(conn, r)
        mine_labelled = store.items_labelled_by(conn, annotator)
        asg = store.round_assignments(conn, r)
        mine = {a.item_id: a.status for a in asg if a.annotator == annotator}
        others_live = Counter(
            a.item_id for a in asg if a.annotator != annotator and a.status == "open" and a.assigned_at > fresh
        )

        def room(item_id: str, need: int) -> bool:
            return have[item_id] + others_live[item_id] < need

        for item_id, need in sel:  # an open assignment of mine (normally at most one)
            if mine.get(item_id) != "open":
                continue
            if item_id in mine_labelled:  # labelled through another path: close it
                store.update_assignment(conn, r, item_id, annotator, status="done")
            elif room(item_id, need):
                store.update_assignment(conn, r, item_id, annotator, assigned_at=now)
                return Handout(r, item_id, round_progress(conn, r, annotator))
            else:  # it expired and was handed to others who filled it
                store.delete_assignment(conn, r, item_id, annotator)
                del mine[item_id]
        for item_id, need in sel:
            if item_id in mine_labelled or item_id in mine or not room(item_id, need):
                continue
            store.add_assignment(conn, r, item_id, annotator, now)
            return Handout(r, item_id, round_progress(conn, r, annotator))
        return Handout(r, None, round_progress(conn, r, annotator))


def _open_assignment(conn: Connection, r: int | None, annotator: str, item_id: str,
                     known: Container[str]) -> Assignment:
    """The expert's open assignment row of ``item_id`` in round ``r``.

    Raises:
        NotFound: the item is not in the pool.
        Conflict: no round waits for labels, or the item is not open for this expert (with the reason).
    """
    if item_id not in known:
        raise NotFound(f"unknown item {item_id!r}: not in this project's pool")
    if r is None:
        raise Conflict("no round is waiting for labels")
    row = Store.assignment(conn, r, item_id, annotator)
    if row is None:
        raise Conflict(f"item {item_id!r} is not assigned to you in round {r}; ask POST /api/next for an item")
    if row.status == "done":
        raise Conflict(f"you already labelled item {item_id!r}; POST /api/undo to change your last label")
    if row.status == "skipped":
        raise Conflict(f"you skipped item {item_id!r}; it will not be given to you again")
    return row


def record_label(
    store: Store, annotator: str, item_id: str, label: str, *, labels: Sequence[str], known: Container[str]
) -> dict:
    """Store the expert's label of an item assigned to them and close the assignment, in one transaction.

    Returns:
        ``{"round", "item_id", "label", "progress"}`` once committed (durable).

    Raises:
        Invalid: ``label`` is not one of ``labels``.
        NotFound: the item is not in the pool.
        Conflict: not assigned to this expert (or skipped / already labelled), or the item already has all the
            labels it needs (an expired assignment that someone else completed).
    """
    if label not in labels:
        raise Invalid(f"label {label!r} is not one of the task's labels {list(labels)}")
    with store.exclusive_transaction() as conn:
        r = current_round(conn)
        _open_assignment(conn, r, annotator, item_id, known)
        ann = Annotation(item_id, annotator, label, r)
        # The rules every label obeys, whoever brings it (the loop's oracle and `curate import` too).
        rejection = LabelRules(labels, known).check(conn, ann)
        if rejection is not None:
            if rejection.rule == "need":
                raise Conflict(
                    f"{rejection.problem} (your assignment expired and was given to someone else); ask POST "
                    "/api/next for another item"
                )
            raise (NotFound if rejection.rule == "item" else Invalid)(str(rejection))
        if not store.add_annotation(conn, ann):
            raise Conflict(f"you already labelled item {item_id!r}")
        store.update_assignment(conn, r, item_id, annotator, status="done")
        progress = round_progress(conn, r, annotator)
    return {"round": r, "item_id": item_id, "label": label, "progress": progress}


def skip_item(store: Store, annotator: str, item_id: str, *, known: Container[str]) -> dict:
    """Mark the expert's open assignment skipped: the item is never given to them again (others may get it).

    Returns:
        ``{"round", "item_id", "skipped": True}``.

    Raises:
        NotFound: the item is not in the pool.
        Conflict: the item is not open for this expert in the current round.
    """
    with store.exclusive_transaction() as conn:
        r = current_round(conn)
        _open_assignment(conn, r, annotator, item_id, known)
        store.update_assignment(conn, r, item_id, annotator, status="skipped")
    return {"round": r, "item_id": item_id, "skipped": True}


def undo_last(store: Store, annotator: str, *, now: float | None = None) -> Handout:
    """Delete the expert's most recent label of the current round (whose labelling is not complete) and reopen
    its assignment, so the item is theirs to label again.

    Returns:
        The reopened :class:`Handout`.

    Raises:
        Conflict: no round waits for labels, or the expert has no label in it.
    """
    now = time.time() if now is None else now
    with store.exclusive_transaction() as conn:
        r = current_round(conn)
        if r is None:
            raise Conflict("nothing to undo: no round is waiting for labels")
        last = store.last_annotation_by(conn, r, annotator)
        if last is None:
            raise Conflict(f"nothing to undo: you have no label in round {r}")
        item_id = last["item_id"]
        store.delete_annotation(conn, last["id"])
        if store.update_assignment(conn, r, item_id, annotator, status="open", assigned_at=now) == 0:
            store.add_assignment(conn, r, item_id, annotator, now)
        return Handout(r, item_id, round_progress(conn, r, annotator))


# -- the admin's views ---------------------------------------------------------------------------------------


def progress_report(store: Store) -> dict:
    """Progress per round and per expert.

    Returns:
        ``{"current_round": int | None,
        "rounds": [{"round", "items", "labels_needed", "labels", "items_complete", "complete", "current"}],
        "experts": [{"name", "is_admin", "labelled", "labelled_current_round", "skipped", "open"}]}``;
        ``labels`` counts annotations of the round's items, ``complete`` whether its ``label`` step is recorded.
    """
    with store.connection() as conn:
        r = current_round(conn)
        done_rounds = store.labelled_rounds(conn)
        rounds = []
        for t in store.selected_rounds(conn):
            sel = _selection(conn, t)
            have = _annotation_counts(conn, t)
            rounds.append({
                "round": t, "items": len(sel), "labels_needed": sum(n for _, n in sel),
                "labels": sum(have[i] for i, _ in sel), "items_complete": sum(have[i] >= n for i, n in sel),
                "complete": t in done_rounds, "current": t == r,
            })
        names = store.annotator_roles(conn)
        labelled = Counter(store.annotators_of_annotations(conn))
        in_round = Counter(store.annotators_of_annotations(conn, r)) if r is not None else Counter()
        status = Counter(store.assignment_statuses(conn))
    experts = [
        {"name": n, "is_admin": names.get(n, False), "labelled": labelled[n], "labelled_current_round": in_round[n],
         "skipped": status[(n, "skipped")], "open": status[(n, "open")]}
        for n in sorted(set(names) | set(labelled))
    ]
    return {"current_round": r, "rounds": rounds, "experts": experts}


def labels_by_annotator(store: Store) -> dict[str, dict[str, str]]:
    """``{annotator: {item_id: label}}`` of every expert annotation."""
    out: dict[str, dict[str, str]] = {}
    for a in store.annotations():
        out.setdefault(a["annotator"], {})[a["item_id"]] = a["label"]
    return out


def _adjudications(conn: Connection) -> dict[str, dict]:
    rows = Store.adjudications(conn)
    return {r["item_id"]: {"label": r["label"], "admin": r["admin"], "created_at": r["created_at"]} for r in rows}


def disagreements(store: Store) -> list[dict]:
    """Items whose experts gave different labels, by item id.

    Returns:
        ``[{"item_id", "round", "labels": {annotator: label}, "adjudication": {"label", "admin", "created_at"} | None}]``.
    """
    by_item: dict[str, dict[str, str]] = {}
    rounds: dict[str, int] = {}
    for a in store.annotations():
        by_item.setdefault(a["item_id"], {})[a["annotator"]] = a["label"]
        rounds[a["item_id"]] = a["round"]
    with store.connection() as conn:
        adj = _adjudications(conn)
    return [
        {"item_id": i, "round": rounds[i], "labels": dict(sorted(labels.items())), "adjudication": adj.get(i)}
        for i, labels in sorted(by_item.items())
        if len(set(labels.values())) > 1
    ]


def adjudicate(store: Store, admin: str, item_id: str, label: str, *, labels: Sequence[str], known: Container[str]) -> dict:
    """Store (or replace) the admin's final label of an item, beside the experts' labels, which stay untouched.

    Returns:
        ``{"item_id", "label", "admin", "created_at"}``.

    Raises:
        Invalid: ``label`` is not one of ``labels``.
        NotFound: the item is not in the pool.
        Conflict: no expert has labelled the item yet.
    """
    if label not in labels:
        raise Invalid(f"label {label!r} is not one of the task's labels {list(labels)}")
    if item_id not in known:
        raise NotFound(f"unknown item {item_id!r}: not in this project's pool")
    now = time.time()
    with store.exclusive_transaction() as conn:
        if not store.has_annotation(conn, item_id):
            raise Conflict(f"item {item_id!r} has no expert label to adjudicate yet")
        store.set_adjudication(conn, item_id, label, admin, now)
    return {"item_id": item_id, "label": label, "admin": admin, "created_at": now}


EXPORT_FIELDS = ["item_id", "annotator", "label", "round", "created_at", "adjudication", "adjudicated_by"]


def export_rows(store: Store) -> list[dict]:
    """One row per expert annotation, in insertion order, with the item's adjudication (if any) as two extra
    columns: ``{"item_id", "annotator", "label", "round", "created_at", "adjudication", "adjudicated_by"}``
    (the last two None when the item is not adjudicated). Every adjudicated item has at least one annotation,
    so no adjudication is left out."""
    with store.connection() as conn:
        adj = _adjudications(conn)
    return [
        {**{k: a[k] for k in EXPORT_FIELDS[:5]},
         "adjudication": adj.get(a["item_id"], {}).get("label"), "adjudicated_by": adj.get(a["item_id"], {}).get("admin")}
        for a in store.annotations()
    ]
