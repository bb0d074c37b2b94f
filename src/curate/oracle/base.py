"""The oracle contract: answer (item, annotator) requests with labels, blind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol


@dataclass(frozen=True)
class Annotation:
    """One label given by one annotator to one item in one round."""

    item_id: str
    annotator: str
    label: str
    round: int


class Oracle(Protocol):
    """Labels items. ``annotators`` names who answers; every selected item is asked of each of them.

    ``annotate`` yields annotations one at a time so the caller can store each as it arrives; it
    receives only item ids and annotator names: never a model score or another annotator's label.
    An oracle that cannot answer yet (people still labelling) yields what it has.
    """

    annotators: list[str]

    def annotate(self, requests: Iterable[tuple[str, str]], round_index: int) -> Iterable[Annotation]:
        ...
