"""The round-0 scorer from the policy prompt alone: label descriptions in embedding space.

Each label gets a prototype: the normalised mean of the embedding of its description (the policy
prompt for the positive class, ``negative_description`` or a default for the others) and of any
seed examples the policy author wrote for it. The raw score of a text is its cosine similarity to
the positive prototype minus its best similarity to another label's prototype. Without labels the
only calibration available is the expected positive share (``prior``): p(positive) is a logistic
of the raw score, centred at the ``1 - prior`` quantile of the pool's raw scores (so about
``prior`` of the pool is predicted positive at p >= 0.5) with scale ``std / 2``.

This is the embedding analogue of zero-shot classification by label descriptions (Yin, Hay and
Roth 2019, "Benchmarking Zero-shot Text Classification"); METHOD.md section 4 measured it as weak
from the prompt alone (kappa 0.02 on Webis); a handful of written seed examples per label lifts it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

DEFAULT_NEGATIVE = "An ordinary item that does not match this description: {positive_description}"


class EmbeddingScout:
    """Zero-shot scorer over cached unit embeddings (no texts are re-embedded to score the pool).

    Args:
        labels: the task's labels (``K``); ``positive``: the positive one.
        label_vectors: ``(K, d)`` unit prototypes, row ``k`` for ``labels[k]``.
        embed: the pool's embedding function, ``M`` texts -> ``(M, d)`` unit rows.
        prior: expected positive share used to place the decision threshold, in (0, 1).
    """

    def __init__(
        self,
        labels: list[str],
        positive: str,
        label_vectors: np.ndarray,
        *,
        embed: Callable[[Sequence[str]], np.ndarray],
        prior: float = 0.5,
    ) -> None:
        if label_vectors.shape[0] != len(labels):
            raise ValueError(f"label_vectors must have one row per label ({len(labels)}), got {label_vectors.shape}")
        if not 0 < prior < 1:
            raise ValueError(f"prior must be in (0, 1), got {prior}")
        self.labels = list(labels)
        self.positive_index = self.labels.index(positive)
        self.label_vectors = label_vectors.astype(np.float32)
        self.prior = prior
        self.embed = embed
        self.centre: float | None = None
        self.scale = 1.0

    def raw_scores(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N,)`` float32: similarity to the positive prototype minus the best other label's."""
        sims = np.asarray(embeddings, dtype=np.float32) @ self.label_vectors.T
        pos = sims[:, self.positive_index]
        others = np.delete(sims, self.positive_index, axis=1).max(axis=1)
        return (pos - others).astype(np.float32)

    def calibrate(self, pool_embeddings: np.ndarray) -> "EmbeddingScout":
        """Fit the logistic's centre and scale on the pool's ``(N, d)`` embeddings (no labels used)."""
        raw = self.raw_scores(pool_embeddings)
        self.centre = float(np.quantile(raw, 1.0 - self.prior))
        self.scale = max(float(raw.std()) / 2.0, 1e-6)
        return self

    def proba_from_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Calibrated ``(N, K)`` float32 probabilities for ``(N, d)`` unit embeddings.

        The positive column is the logistic described in the module docstring; the rest of the
        mass goes to the other labels in proportion to the softmax of their similarities.

        Raises:
            RuntimeError: :meth:`calibrate` has not been called.
        """
        if self.centre is None:
            raise RuntimeError("call calibrate(pool_embeddings) before scoring")
        raw = self.raw_scores(embeddings)
        p_pos = 1.0 / (1.0 + np.exp(-(raw - self.centre) / self.scale))
        sims = np.asarray(embeddings, dtype=np.float32) @ self.label_vectors.T
        others = np.delete(np.arange(len(self.labels)), self.positive_index)
        w = np.exp(sims[:, others] * 20.0)
        w /= w.sum(axis=1, keepdims=True)
        proba = np.zeros((len(raw), len(self.labels)), dtype=np.float32)
        proba[:, self.positive_index] = p_pos
        proba[:, others] = (1.0 - p_pos)[:, None] * w
        return proba

    def predict_proba(self, texts: Sequence[str], *, progress: bool = True) -> np.ndarray:
        """:class:`~curate.models.base.Scorer` interface: embed ``N`` texts, return ``(N, K)`` float32."""
        return self.proba_from_embeddings(self.embed(list(texts)))


def build_label_vectors(
    labels: list[str],
    positive: str,
    prompt: str,
    *,
    negative_description: str | None,
    seed_examples: dict[str, list[str]],
    embed: Callable[[Sequence[str]], np.ndarray],
) -> np.ndarray:
    """``(K, d)`` unit prototypes: the mean embedding of each label's description and seed examples.

    Args:
        embed: a function from ``M`` texts to ``(M, d)`` unit embeddings (the pool's embedding model).
    """
    rows = []
    for label in labels:
        if label == positive:
            description = prompt
        else:
            description = negative_description or DEFAULT_NEGATIVE.format(positive_description=prompt)
        texts = [description, *seed_examples.get(label, [])]
        vecs = np.asarray(embed(texts), dtype=np.float32)
        centre = vecs.mean(axis=0)
        rows.append(centre / max(np.linalg.norm(centre), 1e-12))
    return np.stack(rows)


def make_embedding_scout(
    labels: list[str], positive: str, prompt: str, settings, *, embed: Callable[[Sequence[str]], np.ndarray]
) -> EmbeddingScout:
    """The embedding scout of ``[scout]`` (``settings``, a :class:`curate.config.ScoutConfig`): label prototypes
    from ``prompt``, ``negative_description`` and ``seed_examples`` (:func:`build_label_vectors`), calibrated to
    ``prior``. ``embed``: the pool's embedding function (``M`` texts -> ``(M, d)`` unit rows)."""
    vectors = build_label_vectors(
        labels, positive, prompt, negative_description=settings.negative_description,
        seed_examples=settings.seed_examples, embed=embed,
    )
    return EmbeddingScout(labels, positive, vectors, embed=embed, prior=settings.prior)


def make_lm_scout(labels: list[str], positive: str, prompt: str, settings):
    """The language-model scout of ``[scout]`` (``settings``): the prompted causal LM (``kind = "prompted-lm"``) or
    the OpenAI-compatible endpoint (``"endpoint"``); each is imported only when asked for."""
    if settings.kind == "prompted-lm":
        from curate.models.prompted_lm import PromptedLMScorer

        return PromptedLMScorer.from_config(labels, positive, prompt, settings)
    from curate.models.endpoint import EndpointScorer

    return EndpointScorer.from_config(labels, positive, prompt, settings)
