"""The oracle contract: answer (item, annotator) requests with labels, blind."""

from __future__ import annotations

from typing import Iterable, Mapping, Protocol, Sequence

from curate.records import Annotation  # lives in curate.records (the store imports it too); re-exported here

__all__ = ["Annotation", "Oracle", "WebOracle"]


class Oracle(Protocol):
    """Labels items, blind: it receives item ids and how many independent labels each needs, never a
    model score or another annotator's label.

    ``annotate`` yields new annotations one at a time so the caller stores each as it arrives. An
    oracle of people (the web app) labels outside the loop and yields nothing; the loop then waits
    until the database holds the labels each item needs.
    """

    def annotate(
        self, needs: Sequence[tuple[str, int]], have: Mapping[str, set[str]], round_index: int
    ) -> Iterable[Annotation]:
        """Args:
        needs: ``(item_id, labels_needed)`` for the round's selected items.
        have: ``{item_id: annotators who already labelled it}``.
        """
        ...


class WebOracle:
    """People label through ``curate serve``; the loop only waits for their labels."""

    def annotate(
        self, needs: Sequence[tuple[str, int]], have: Mapping[str, set[str]], round_index: int
    ) -> Iterable[Annotation]:
        return iter(())
