"""What the prompted scorers share: demonstrations, the label prior and (log-)softmax over the labels.

Used by :mod:`curate.models.prompted_lm` (a local causal LM) and :mod:`curate.models.endpoint` (an
OpenAI-compatible server). Contextual calibration: Zhao et al. 2021, "Calibrate Before Use".
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from curate.errors import CurateError


def select_demonstrations(labels: Sequence[str], seed_examples: Mapping[str, Sequence[str]],
                          k: int) -> list[tuple[str, str]]:
    """The ``k`` first seed examples of every label, interleaved (one per label in turn) so that no label
    is the most recent one shown throughout.

    Returns:
        ``k * K`` ``(text, label)`` pairs, in prompt order.

    Raises:
        CurateError: a label has fewer than ``k`` seed examples (field ``scout.demonstrations``).
    """
    if k <= 0:
        return []
    for lab in labels:
        have = len(seed_examples.get(lab, []))
        if have < k:
            raise CurateError(
                f"scout.demonstrations = {k} but scout.seed_examples has {have} example(s) for label {lab!r}; "
                f"add examples or lower scout.demonstrations"
            )
    return [(seed_examples[lab][i], lab) for i in range(k) for lab in labels]


def label_log_prior(labels: Sequence[str], positive: str, prior: float | None) -> np.ndarray:
    """``(K,)`` log prior added to calibrated scores: ``log(prior)`` for the positive label,
    ``log((1 - prior) / (K - 1))`` for the others; zeros when ``prior`` is None."""
    k = len(labels)
    if prior is None:
        return np.zeros(k)
    p = np.full(k, (1.0 - prior) / (k - 1))
    p[list(labels).index(positive)] = prior
    return np.log(p)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float64 in, float64 out)."""
    z = np.asarray(x, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis (float64)."""
    z = np.asarray(x, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
