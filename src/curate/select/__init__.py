"""Query strategies: which pool items go to the experts next (METHOD.md section 1, steps 2-5, and its baselines).

One registry (``STRATEGIES``): a new strategy is one module (the strategy class and its ``Settings`` model, a
:class:`~curate.select.base.StrategySettings` whose fields are the constructor's keyword parameters) and one line
here. ``curate.toml`` holds each strategy's settings in its own table, ``[selection.NAME]``, validated by its model
(:class:`curate.config.SelectionConfig`).
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

from curate.select import (badge, boundary, boundary_margin, cluster_margin, coreset, random, typiclust,
                           uncertainty)
from curate.select.badge import Badge
from curate.select.base import QueryStrategy, Selection, StrategySettings
from curate.select.boundary import BoundaryPairs
from curate.select.boundary_margin import BoundaryMargin
from curate.select.cluster_margin import ClusterMargin
from curate.select.coreset import CoreSetGreedy
from curate.select.random import RandomSampling
from curate.select.typiclust import TypiClust
from curate.select.uncertainty import UncertaintySampling

__all__ = ["Badge", "BoundaryMargin", "BoundaryPairs", "ClusterMargin", "CoreSetGreedy", "QueryStrategy", "RandomSampling",
           "Registered", "STRATEGIES", "Selection", "StrategySettings", "TypiClust", "UncertaintySampling",
           "make_strategy", "registered", "strategy_parameters"]


class Registered(NamedTuple):
    """A registry entry: the strategy class and its settings model."""

    cls: type
    settings: type[StrategySettings]


STRATEGIES: dict[str, Registered] = {
    Badge.name: Registered(Badge, badge.Settings),
    BoundaryMargin.name: Registered(BoundaryMargin, boundary_margin.Settings),
    BoundaryPairs.name: Registered(BoundaryPairs, boundary.Settings),
    ClusterMargin.name: Registered(ClusterMargin, cluster_margin.Settings),
    CoreSetGreedy.name: Registered(CoreSetGreedy, coreset.Settings),
    RandomSampling.name: Registered(RandomSampling, random.Settings),
    TypiClust.name: Registered(TypiClust, typiclust.Settings),
    UncertaintySampling.name: Registered(UncertaintySampling, uncertainty.Settings),
}
"""Every query strategy by name: ``name -> Registered(class, settings model)``."""


def registered(name: str) -> Registered:
    """The registry entry of the strategy ``name``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown query strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name]


def strategy_parameters(name: str) -> list[str]:
    """The keyword parameters the strategy ``name`` takes (its constructor's).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    return [p for p in inspect.signature(registered(name).cls).parameters if p != "self"]


def make_strategy(name: str, **params: Any) -> QueryStrategy:
    """Build a query strategy by name.

    Args:
        name: a key of ``STRATEGIES`` (``badge``, ``boundary-margin``, ``boundary-pairs``, ``cluster-margin``, ``coreset``,
            ``random``, ``typiclust``, ``uncertainty``).
        **params: keyword parameters (for example ``SelectionConfig.params(name)``, the strategy's settings
            table); each strategy takes the ones its constructor declares and ignores the others.

    Returns:
        The strategy.

    Raises:
        ValueError: an unknown name (the message lists the known ones), or a parameter out of range.
    """
    wanted = strategy_parameters(name)
    return registered(name).cls(**{k: v for k, v in params.items() if k in wanted})
