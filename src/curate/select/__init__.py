"""Query strategies: which pool items go to the experts next (METHOD.md section 1, steps 2-5, and its baselines).

One registry (``STRATEGIES``): a new strategy is one module and one line here. Each strategy's constructor declares
its own keyword parameters; :func:`make_strategy` passes it the ones it declares out of the ``[selection]``
settings and ignores the rest.
"""

from __future__ import annotations

import inspect
from typing import Any

from curate.select.base import QueryStrategy, Selection
from curate.select.boundary import BoundaryPairs
from curate.select.boundary_margin import BoundaryMargin
from curate.select.cluster_margin import ClusterMargin
from curate.select.coreset import CoreSetGreedy
from curate.select.random import RandomSampling
from curate.select.typiclust import TypiClust
from curate.select.uncertainty import UncertaintySampling

__all__ = ["BoundaryMargin", "BoundaryPairs", "ClusterMargin", "CoreSetGreedy", "QueryStrategy", "RandomSampling",
           "STRATEGIES", "Selection", "TypiClust", "UncertaintySampling", "make_strategy", "strategy_parameters"]

STRATEGIES: dict[str, type] = {cls.name: cls for cls in (
    BoundaryMargin, BoundaryPairs, ClusterMargin, CoreSetGreedy, RandomSampling, TypiClust, UncertaintySampling)}


def strategy_parameters(name: str) -> list[str]:
    """The keyword parameters the strategy ``name`` takes (its constructor's).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown query strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return [p for p in inspect.signature(STRATEGIES[name]).parameters if p != "self"]


def make_strategy(name: str, **params: Any) -> QueryStrategy:
    """Build a query strategy by name.

    Args:
        name: a key of ``STRATEGIES`` (``boundary-margin``, ``boundary-pairs``, ``cluster-margin``, ``coreset``,
            ``random``, ``typiclust``, ``uncertainty``).
        **params: settings (for example every ``SelectionConfig`` field); each strategy takes the ones its
            constructor declares and ignores the others.

    Returns:
        The strategy.

    Raises:
        ValueError: an unknown name (the message lists the known ones), or a parameter out of range.
    """
    wanted = strategy_parameters(name)
    return STRATEGIES[name](**{k: v for k, v in params.items() if k in wanted})
