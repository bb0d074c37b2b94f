"""Query strategies: which pool items go to the experts next (METHOD.md section 1, steps 2-5, and its baselines)."""

from __future__ import annotations

from typing import Any

from curate.select.base import QueryStrategy, Selection
from curate.select.boundary import BoundaryPairs
from curate.select.coreset import CoreSetGreedy
from curate.select.random import RandomSampling
from curate.select.uncertainty import UncertaintySampling

__all__ = ["BoundaryPairs", "CoreSetGreedy", "QueryStrategy", "RandomSampling", "Selection", "UncertaintySampling", "make_strategy"]

_STRATEGIES = {cls.name: cls for cls in (BoundaryPairs, CoreSetGreedy, RandomSampling, UncertaintySampling)}


def make_strategy(name: str, **params: Any) -> QueryStrategy:
    """Build a query strategy by name.

    Args:
        name: ``"boundary-pairs"``, ``"coreset"``, ``"random"`` or ``"uncertainty"``.
        **params: the boundary-pairs parameters (``SelectionConfig`` fields); ignored by the others.

    Returns:
        The strategy.

    Raises:
        ValueError: an unknown name (the message lists the known ones), or a boundary-pairs parameter out of range.
        TypeError: an unknown boundary-pairs parameter.
    """
    if name not in _STRATEGIES:
        raise ValueError(f"unknown query strategy {name!r}; known: {', '.join(sorted(_STRATEGIES))}")
    return BoundaryPairs(**params) if name == BoundaryPairs.name else _STRATEGIES[name]()
