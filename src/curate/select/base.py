"""The contract every query strategy follows.

A query strategy works on positions (int64 indices) into the *selectable pool*: the caller
passes arrays for the pool items (the held-out test split excluded) and maps the returned
positions back to item ids. Strategies never copy texts; they see scores and embeddings only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict


class StrategySettings(BaseModel):
    """Base of a strategy's settings model (its ``[selection.NAME]`` table in ``curate.toml``): unknown keys are
    refused. Each field is a keyword parameter of the strategy's constructor, with the same default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass
class Selection:
    """What a query strategy returns.

    Attributes:
        indices: ``(k,)`` int64 positions into the pool arrays, ``k <= budget``, no repeats,
            in the order chosen (most informative first).
        groups: ``(k,)`` int64 group id per selected item; items of one group (the two items of a
            boundary pair) must land on the same side of the fine-tune/eval split. Strategies
            without groups give every item its own group.
        info: JSON-serialisable diagnostics (for example how many cluster pairs overlapped,
            how many items were filled by the fallback), written into the round's metrics.
    """

    indices: np.ndarray
    groups: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.groups = np.asarray(self.groups, dtype=np.int64)
        if self.indices.shape != self.groups.shape or self.indices.ndim != 1:
            raise ValueError(
                f"indices {self.indices.shape} and groups {self.groups.shape} must be equal-length 1-D arrays"
            )
        if len(np.unique(self.indices)) != len(self.indices):
            raise ValueError("a selection must not repeat an item")


class QueryStrategy(Protocol):
    """One uniform signature (after scikit-activeml's ``query`` and small-text's query strategies).

    Strategy parameters go to the constructor; ``query`` takes the round's arrays.
    """

    name: str

    def query(
        self,
        *,
        scores: np.ndarray,
        embeddings: np.ndarray,
        labelled: np.ndarray,
        budget: int,
        rng: np.random.Generator,
        threshold: float = 0.5,
        expert_positive: np.ndarray | None = None,
    ) -> Selection:
        """Choose up to ``budget`` unlabelled items.

        Args:
            scores: ``(N,)`` float32 p(positive) from the current model.
            embeddings: ``(N, d)`` float16/float32 unit-norm rows (the same embedding in every round).
            labelled: ``(N,)`` bool, True for items that already have expert labels: never selected.
            budget: the number of items to return at most (``>= 0``).
            rng: the random generator; no global random state is used.
            threshold: predicted label is positive when ``scores >= threshold``.
            expert_positive: ``(N,)`` float, the experts' positive vote share of labelled items and NaN
                elsewhere, for strategies that read where the model is known to be wrong; None when not given.

        Returns:
            A :class:`Selection` of ``min(budget, number of unlabelled items)`` items.

        Raises:
            ValueError: when array shapes disagree or ``budget < 0``.
        """
        ...


def check_query_args(scores: np.ndarray, embeddings: np.ndarray, labelled: np.ndarray, budget: int) -> None:
    """Validate the shared arguments of :meth:`QueryStrategy.query`; raise ``ValueError`` naming the bad one."""
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D (N,), got shape {scores.shape}")
    n = scores.shape[0]
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise ValueError(f"embeddings must be (N, d) with N={n}, got shape {embeddings.shape}")
    if labelled.shape != (n,) or labelled.dtype != bool:
        raise ValueError(f"labelled must be a bool array of shape ({n},), got {labelled.dtype} {labelled.shape}")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
