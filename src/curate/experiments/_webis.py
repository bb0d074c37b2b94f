"""Helpers of the Webis-only proxy cost sweep (``curate.experiments.cost_sweep``): data loading, the linear proxy,
the embedding scout from ``examples/webis``, aggregation over seeds.

They were the first label-efficiency experiment's; that experiment now runs the real loop on any pool
(``curate.experiments.label_efficiency``). The cost sweep still trains its own proxy heads on Webis.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score

from curate.agreement import cohen_kappa
from curate.config import BUNDLED_MODEL, SelectionConfig
from curate.embed import embed_texts
from curate.experiments.label_efficiency import _clean, _interval  # noqa: F401  (cost_sweep imports them here)
from curate.models.scout import EmbeddingScout, build_label_vectors
from curate.select import make_strategy

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data")) / (
    "webis-clickbait-17/webis-clickbait-17.jsonl"
)
EXAMPLES = REPO / "examples" / "webis"
NEGATIVE_DESCRIPTION = "A plain news headline that states what happened."  # as in examples/webis/quickstart.sh
TEST_SEED = 0
QUICK_ITEMS = 3000
LR_PARAMS = {"class_weight": "balanced", "C": 1.0, "max_iter": 1000}


# ----------------------------------------------------------------------------------------------------- helpers
def _load(data: Path, limit: int | None) -> dict[str, Any]:
    """Webis JSONL -> ids, texts, judgments (lists), truth_mean ``(N,)`` and the majority label ``(N,)`` bool."""
    rows = []
    with Path(data).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
                if limit is not None and len(rows) >= limit:
                    break
    return {
        "ids": [str(r["id"]) for r in rows],
        "texts": [r["text"] for r in rows],
        "judgments": [r.get("judgments") or [] for r in rows],
        "truth_mean": np.array([r["truth_mean"] for r in rows], dtype=np.float64),
        "majority": np.array([r["label"] == "clickbait" for r in rows]),
    }


def _fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None,
         init: LogisticRegression | None = None) -> LogisticRegression | None:
    """Fit the student on ``x (n, d)``, ``y (n,)`` bool; None when ``y`` holds one class. ``init``: warm start."""
    if y.size == 0 or y.all() or not y.any():
        return None
    model = copy.deepcopy(init) if init is not None else LogisticRegression(**LR_PARAMS)
    model.set_params(warm_start=init is not None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y, sample_weight=weight)


def _metrics(gold: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Cohen's kappa and F1 of ``p >= 0.5`` and AUROC of ``p`` against ``gold (n,)`` bool."""
    pred = p >= 0.5
    auroc = float(roc_auc_score(gold, p)) if 0 < gold.sum() < gold.size else math.nan
    return {"kappa": cohen_kappa(gold, pred), "f1": float(f1_score(gold, pred, zero_division=0)), "auroc": auroc}


def _aggregate(per_seed: list[dict[str, float]]) -> dict[str, dict]:
    """Per metric, :func:`_interval` over the seeds' dicts."""
    return {k: _interval([d.get(k) for d in per_seed]) for k in per_seed[0]} if per_seed else {}


def _scout(labels: tuple[str, str], pool_emb: np.ndarray, prior: float) -> EmbeddingScout:
    """The round-0 embedding scout (examples/webis prompt and seed examples) calibrated on the pool."""
    prompt = (EXAMPLES / "policy.txt").read_text(encoding="utf-8").strip()
    seeds = json.loads((EXAMPLES / "seed_examples.json").read_text(encoding="utf-8"))
    seed_examples = {labels[1]: seeds.get("clickbait", []), labels[0]: seeds.get("no-clickbait", [])}

    def embed(texts: Sequence[str]) -> np.ndarray:
        return embed_texts(texts, model=BUNDLED_MODEL, progress=False)

    vectors = build_label_vectors(list(labels), labels[1], prompt, negative_description=NEGATIVE_DESCRIPTION,
                                  seed_examples=seed_examples, embed=embed)
    return EmbeddingScout(list(labels), labels[1], vectors, embed=embed, prior=prior).calibrate(pool_emb)


def _strategy(name: str):
    """A query strategy by name with its default settings (``SelectionConfig().params(name)``)."""
    return make_strategy(name, **SelectionConfig().params(name))


def _cell(a: dict | None, interval: bool = True) -> str:
    if not a or a.get("mean") is None:
        return "-"
    if interval and a.get("low") is not None:
        return f"{a['mean']:.2f} [{a['low']:.2f}, {a['high']:.2f}]"
    return f"{a['mean']:.2f}"


