"""The student the loop trains, behind one interface over pool positions: fine-tuned or proxy.

``student.kind = "finetune"`` (default): the transformers model of :mod:`curate.models.encoder` (MiniLM, or a causal
LM with LoRA), fine-tuned on the texts. ``student.kind = "proxy"``: :class:`curate.models.proxy.ProxyStudent`, a
logistic-regression head on the frozen pool embeddings. Both take pool positions, so the loop never cares which:

- ``fit(items (n,) int64, targets (n, K) float32, *, seed, progress) -> dict``
- ``predict_proba(items (n,) int64 | None, *, progress) -> (n, K) float32``
- ``save(folder)``; :func:`load_student` reads it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from curate.config import StudentConfig
from curate.models.encoder import EncoderClassifier
from curate.models.proxy import PROXY_FILE, ProxyStudent


class PoolStudent(Protocol):
    """What the loop needs of a student."""

    def fit(self, items: np.ndarray, targets: np.ndarray, *, seed: int = 0, progress: bool = True) -> dict: ...

    def predict_proba(self, items: np.ndarray | None = None, *, progress: bool = True) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...


class FinetuneStudent:
    """:class:`~curate.models.encoder.EncoderClassifier` over the pool's texts, addressed by position.

    Args:
        classifier: the wrapped classifier (fresh, or loaded).
        texts: the pool's ``N`` texts.
    """

    def __init__(self, classifier: EncoderClassifier, texts: Sequence[str]) -> None:
        self.classifier = classifier
        self.texts = texts

    def fit(self, items: np.ndarray, targets: np.ndarray, *, seed: int = 0, progress: bool = True) -> dict:
        """Fine-tune on the texts at ``items`` (see :meth:`EncoderClassifier.fit`)."""
        return self.classifier.fit([self.texts[i] for i in np.asarray(items)], targets, seed=seed, progress=progress)

    def predict_proba(self, items: np.ndarray | None = None, *, progress: bool = True) -> np.ndarray:
        """``(n, K)`` float32 probabilities of the texts at ``items`` (None: every pool item)."""
        texts = self.texts if items is None else [self.texts[i] for i in np.asarray(items)]
        return self.classifier.predict_proba(texts, progress=progress)

    def save(self, folder: Path) -> None:
        self.classifier.save(folder)


def make_student(labels: list[str], settings: StudentConfig, *, texts: Sequence[str], embeddings: np.ndarray,
                 init_from: Path | None = None) -> PoolStudent:
    """A fresh student of ``settings.kind``, starting from the base weights or from ``init_from`` (a saved student,
    e.g. the weak stage's).

    Args:
        texts: the pool's ``N`` texts (the fine-tuned student reads them).
        embeddings: ``(N, d)`` unit rows of the pool (the proxy student reads them).

    Raises:
        CurateError: see :class:`EncoderClassifier` (device, model path) and :class:`ProxyStudent` (folder).
    """
    if settings.kind == "proxy":
        return ProxyStudent(labels, settings, embeddings, init_from=init_from)
    return FinetuneStudent(EncoderClassifier(labels, settings, init_from=init_from), texts)


def load_student(folder: Path, labels: list[str], settings: StudentConfig, *, texts: Sequence[str],
                 embeddings: np.ndarray) -> PoolStudent:
    """Load a student saved by ``save`` (the folder tells which kind it is).

    Raises:
        CurateError: the folder is unreadable, or was trained for other labels.
    """
    if (Path(folder) / PROXY_FILE).is_file():
        return ProxyStudent.load(folder, labels, settings, embeddings)
    return FinetuneStudent(EncoderClassifier.load(folder, labels, settings), texts)
