"""The scorer contract: anything that gives class probabilities for texts.

A scorer is the round-0 model ("LLM-0", from the prompt alone) or a fine-tuned student. Later
scorers (a prompted causal LM, an OpenAI-compatible endpoint) plug in through the same method.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Scorer(Protocol):
    """``predict_proba(texts) -> (N, K)`` float32, rows summing to 1, columns in the task's label order."""

    labels: list[str]

    def predict_proba(self, texts: Sequence[str], *, progress: bool = True) -> np.ndarray:
        """Class probabilities.

        Args:
            texts: ``N`` strings.
            progress: show a progress bar.

        Returns:
            ``(N, K)`` float32 probabilities, ``K = len(labels)``.
        """
        ...
