"""Plain records that cross the line between persistence and the rest of curate.

Both sides import them from here: :mod:`curate.store` stores and returns them, the oracles, the labelling
app and ``curate import`` build them. They carry data only (no database or model code), so importing this
module pulls in nothing else of curate.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Annotation", "Assignment"]


@dataclass(frozen=True)
class Annotation:
    """One label given by one annotator to one item in one round."""

    item_id: str
    annotator: str
    label: str
    round: int


@dataclass(frozen=True)
class Assignment:
    """An item handed to an expert in the labelling app.

    Attributes:
        round: the round whose selection holds the item.
        item_id: the item.
        annotator: the expert it was handed to.
        status: ``open`` (waiting for the label), ``done`` (labelled) or ``skipped``.
        assigned_at: Unix time it was handed out, or last handed out again.
    """

    round: int
    item_id: str
    annotator: str
    status: str
    assigned_at: float
