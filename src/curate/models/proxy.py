"""The proxy student: a logistic-regression head on the frozen pool embeddings (seconds instead of minutes).

METHOD.md section 4's "cheap stand-in student": scikit-learn's ``LogisticRegression`` (L2, ``C = proxy_c``, lbfgs,
multinomial for more than two labels) on the same unit embeddings the selection uses, classes balanced by weight
(each class's total weight is equal, so a rare positive class is not ignored). Soft targets (the experts' vote
shares) enter as one weighted row per (item, label) with the label's share as weight.

A weak stage (sequential SFT, Mallen & Belrose 2024) has no optimizer state to carry for a convex model: the expert
stage refits on the weak rows plus the expert rows, each expert row weighted ``student.proxy_expert_weight`` (4, as
the mixed final recipe presents each expert item 4 times; 0: all expert rows together weigh as much as all weak
rows). The weak stage's data are saved with it for this.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from curate.config import StudentConfig
from curate.errors import CurateError

PROXY_FILE = "proxy.npz"
META_NAME = "curate_student.json"


class ProxyStudent:
    """Logistic regression on frozen embeddings, with the student interface of :mod:`curate.models.student`.

    Args:
        labels: the task's ``K`` labels.
        settings: the student settings (``proxy_c``).
        embeddings: ``(N, d)`` unit rows of every pool item (float16 memory map is fine); items are positions into it.
        init_from: a weak-stage folder saved by :meth:`save`, whose training rows join every later fit.
    """

    def __init__(self, labels: list[str], settings: StudentConfig, embeddings: np.ndarray, *,
                 init_from: Path | None = None) -> None:
        self.labels = list(labels)
        self.settings = settings
        self.embeddings = embeddings
        self.coef: np.ndarray | None = None  # (K or 1, d)
        self.intercept: np.ndarray | None = None
        self.classes: np.ndarray | None = None  # label columns the model has seen
        self.stage_items = np.empty(0, np.int64)
        self.stage_targets = np.empty((0, len(self.labels)), np.float32)
        self.prior_items, self.prior_targets = np.empty(0, np.int64), np.empty((0, len(self.labels)), np.float32)
        if init_from is not None:
            weak = ProxyStudent.load(init_from, labels, settings, embeddings)
            self.prior_items = np.concatenate([weak.prior_items, weak.stage_items])
            self.prior_targets = np.concatenate([weak.prior_targets, weak.stage_targets])
            self.coef, self.intercept, self.classes = weak.coef, weak.intercept, weak.classes

    def fit(self, items: np.ndarray, targets: np.ndarray, *, seed: int = 0, progress: bool = False) -> dict:
        """Fit on ``(n,)`` pool positions with ``(n, K)`` target distributions (plus a weak stage's rows, if any).

        Returns:
            ``{"examples", "weak_examples", "classes_seen", "iterations"}``.

        Raises:
            ValueError: ``targets`` is not ``(n, K)`` or ``n == 0``.
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        items = np.asarray(items, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.float32)
        if targets.shape != (items.size, len(self.labels)) or items.size == 0:
            raise ValueError(f"targets must be ({items.size}, {len(self.labels)}) with n > 0, got {targets.shape}")
        weight = np.ones(items.size)
        if self.prior_items.size:  # expert rows together weigh as much as the weak rows, or proxy_expert_weight each
            per_item = self.settings.proxy_expert_weight or self.prior_items.size / items.size  # 0: equal totals
            weight = np.full(items.size, per_item)
        all_items = np.concatenate([self.prior_items, items])
        all_targets = np.concatenate([self.prior_targets, targets])
        all_weight = np.concatenate([np.ones(self.prior_items.size), weight])
        rows, cols = np.nonzero(all_targets > 0)
        w = all_targets[rows, cols] * all_weight[rows]
        per_class = np.bincount(cols, weights=w, minlength=len(self.labels))
        seen = np.flatnonzero(per_class > 0)
        self.stage_items, self.stage_targets = items, targets
        if seen.size < 2:  # one class only: predict it everywhere
            self.classes, self.coef, self.intercept = seen, None, None
            return {"examples": int(items.size), "weak_examples": int(self.prior_items.size),
                    "classes_seen": [self.labels[c] for c in seen], "iterations": 0}
        w = w * (w.sum() / (seen.size * per_class[cols]))  # balanced: every class weighs the same in total
        x = np.asarray(self.embeddings[all_items[rows]], dtype=np.float32)
        model = LogisticRegression(C=self.settings.proxy_c, max_iter=1000, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, cols, sample_weight=w)
        self.classes, self.coef, self.intercept = model.classes_, model.coef_, model.intercept_
        return {"examples": int(items.size), "weak_examples": int(self.prior_items.size),
                "classes_seen": [self.labels[c] for c in seen], "iterations": int(np.max(model.n_iter_))}

    def predict_proba(self, items: np.ndarray | None = None, *, progress: bool = False) -> np.ndarray:
        """``(n, K)`` float32 probabilities of the pool positions ``items`` (None: every pool item).

        Raises:
            RuntimeError: nothing was fitted or loaded.
        """
        if self.classes is None:
            raise RuntimeError("the proxy student has not been fitted: call fit() or load() first")
        items = np.arange(self.embeddings.shape[0]) if items is None else np.asarray(items, dtype=np.int64)
        out = np.zeros((items.size, len(self.labels)), dtype=np.float32)
        if self.coef is None:
            out[:, self.classes[0]] = 1.0
            return out
        for start in range(0, items.size, 65536):
            part = items[start : start + 65536]
            z = np.asarray(self.embeddings[part], dtype=np.float32) @ self.coef.T + self.intercept
            if self.coef.shape[0] == 1:  # binary: sklearn keeps one row for the second class
                p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
                out[start : start + part.size, self.classes[1]] = p1
                out[start : start + part.size, self.classes[0]] = 1.0 - p1
            else:
                z = z - z.max(axis=1, keepdims=True)
                e = np.exp(z)
                out[start : start + part.size][:, self.classes] = e / e.sum(axis=1, keepdims=True)
        return out

    def save(self, folder: Path) -> None:
        """Write the head and this stage's training rows to ``folder`` atomically."""
        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        empty = np.empty(0)
        np.savez(tmp / PROXY_FILE, coef=self.coef if self.coef is not None else empty,
                 intercept=self.intercept if self.intercept is not None else empty,
                 classes=self.classes if self.classes is not None else np.empty(0, np.int64),
                 stage_items=self.stage_items, stage_targets=self.stage_targets,
                 prior_items=self.prior_items, prior_targets=self.prior_targets)
        (tmp / META_NAME).write_text(json.dumps({"kind": "proxy", "labels": self.labels}, indent=1) + "\n",
                                     encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)

    @classmethod
    def load(cls, folder: Path, labels: list[str], settings: StudentConfig, embeddings: np.ndarray) -> "ProxyStudent":
        """Load a head saved by :meth:`save`.

        Raises:
            CurateError: the folder holds no proxy head, or one trained for other labels.
        """
        folder = Path(folder)
        try:
            meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
            data = np.load(folder / PROXY_FILE)
        except (OSError, json.JSONDecodeError) as exc:
            raise CurateError(f"{folder}: no readable proxy student there ({exc}); delete the folder and train again") from None
        if meta.get("labels") != list(labels):
            raise CurateError(f"{folder}: the proxy student there was trained for labels {meta.get('labels')}, not {labels}")
        clf = cls(labels, settings, embeddings)
        clf.classes = data["classes"].astype(np.int64)
        clf.coef = data["coef"] if data["coef"].size else None
        clf.intercept = data["intercept"] if data["intercept"].size else None
        clf.stage_items, clf.stage_targets = data["stage_items"], data["stage_targets"]
        clf.prior_items, clf.prior_targets = data["prior_items"], data["prior_targets"]
        return clf
