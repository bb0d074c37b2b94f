"""Cost sweep on Webis Clickbait 2017: label quantity versus quality at a fixed dollar budget.

After Mallen & Belrose 2024, "Balancing Label Quantity and Quality for Scalable Elicitation" (METHOD.md section 2):
expert labels cost $1, weak labels cost ``w`` dollars; a budget ``B`` with weak share ``s`` buys
``n_expert = round((1 - s) * B)`` expert labels and ``floor(s * B / w)`` weak labels (capped at the pool size).
Methods: expert only, weak only, sequential SFT (weak stage, then expert stage with a fresh optimizer), sequential
SFT whose expert items are chosen by the weak-stage model's predictive entropy (uncertainty sampling, Settles 2009),
sequential SFT whose expert items are chosen by curate's ``boundary-pairs`` on the weak-stage model's scores, and
few-shot-prompted sequential SFT (2 weak-labelled demonstrations prefixed to every training and test input).

Proxy student (not the fine-tuned transformer): a *linear head* on frozen all-MiniLM-L6-v2 embeddings, trained
with AdamW in minibatches for a fixed number of example presentations per stage, early-stopped on 20 % of each
stage's own labels (AUROC, patience 4). Many heads are trained at once as one stacked parameter tensor: AdamW and
the loss are per-element / per-head sums, so each head's training is exactly its own independent run.

Run: ``python -m curate.experiments.cost_sweep --out benchmarks/results/cost_sweep [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch  # before faiss (curate.runtime.import_faiss), which curate.select pulls in

from curate.agreement import cohen_kappa
from curate.config import BUNDLED_MODEL, SelectionConfig
from curate.embed import cached_embeddings
from curate.errors import CurateError
from curate.experiments._webis import (
    DEFAULT_DATA, QUICK_ITEMS, REPO, TEST_SEED, _aggregate, _cell, _clean, _interval, _load, _metrics, _scout,
    _strategy,
)
from curate.oracle.simulated import SimulatedExperts, crowd_labels
from curate.progress import progress_callback
from curate.runtime import import_faiss
from curate.select.uncertainty import margin_order

LABELS = ("no-clickbait", "clickbait")  # (negative, positive): the Webis majority label
PRICES = (0.50, 0.10, 0.01)
BUDGETS = (16, 64, 256, 1024, 4096)
SHARES = (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0)
WEAK_SOURCES = ("crowd", "scout")
METHODS = ("expert-only", "weak-only", "sequential", "sequential+uncertainty", "sequential+boundary-pairs",
           "few-shot sequential")
QUICK = {"items": QUICK_ITEMS, "seeds": 1, "budgets": (16, 64, 256), "shares": (0.0, 0.2, 0.6, 1.0)}
EXPERT_KAPPA = 0.8
FEWSHOT_FORMAT = "{demo1} -> {label1}; {demo2} -> {label2}; {text}"
FEWSHOT_DIR = "fewshot_seed{seed}"  # under --out: embeddings.npy + embeddings.json of the prefixed texts

# The student: fixed up front (nothing tuned on the test split).
STUDENT = {
    "head": "linear (384 -> 1 logit) on frozen all-MiniLM-L6-v2 embeddings, zero init",
    "optimizer": "torch.optim.AdamW", "lr": 3e-2, "betas": (0.9, 0.999), "weight_decay": 0.01,
    "schedule": "cosine from lr to 0 over the stage's steps, no warm-up", "batch": 32,
    "presentations_per_stage": 30_000, "eval_every_presentations": 1_024, "patience_evals": 4,
    "val_fraction": 0.2, "early_stopping_metric": "AUROC on the stage's own held-out labels (stratified)",
    "loss": "binary cross-entropy, class-balanced per stage (each class weighs half)",
    "minibatches": "drawn uniformly with replacement from the stage's training labels",
    "threshold": 0.5, "torch_threads_training": 1, "torch_threads_embedding": 2, "faiss_threads": 1,
}

NOTES = [
    "Source: Mallen & Belrose 2024, 'Balancing Label Quantity and Quality for Scalable Elicitation' (METHOD.md "
    "section 2); uncertainty sampling after Settles 2009 ('Active Learning Literature Survey'). The student here is a "
    "cheap proxy (a linear head on frozen MiniLM embeddings), so numbers compare methods and shares with each other, "
    "not with the paper's Llama-3-8B figures.",
    "Costs: expert label $1, weak label $w. Budget B, weak share s: n_expert = round((1 - s) B) (half up), "
    "n_weak = floor(s B / w). When n_weak exceeds the pool, it is capped at the pool ('capped at N' in the tables) "
    "and the cell's actual cost (n_expert + w n_weak) is below B. Rounding n_expert half up can overspend B by less "
    "than $0.50 (e.g. $16.20 at B = 16, s = 0.2, w = 0.10). The Pareto plots use the actual cost.",
    "Test split: the same fixed 20 % as label_efficiency (numpy default_rng(0) permutation); the rest is the pool. "
    "Weak labels, expert labels and few-shot demonstrations come from pool items only; test metrics are against gold "
    "(the Webis majority label). Nothing is tuned on the test split.",
    "Weak items: the first n_weak items of one random pool permutation per seed (the same items for both weak "
    "sources, nested across budgets). Expert items: for expert only, sequential SFT and few-shot sequential SFT, the "
    "first n_expert items of a second permutation per seed; for the uncertainty and boundary-pairs variants, chosen "
    "from the whole pool by the weak-stage model. An item may hold both a weak and an expert label.",
    "Expert labels: curate.oracle.simulated.SimulatedExperts from gold, one expert per item (expert-1; the flip rate "
    "that gives two such experts a pairwise kappa of 0.8), seed = the run's seed.",
    "Weak source 'crowd': one Webis judgment drawn at random per item among its 5 (curate.oracle.simulated."
    "crowd_labels, seed = the run's seed), positive when >= 0.5. Weak source 'scout': the round-0 scorer of "
    "label_efficiency (embedding scout from examples/webis/policy.txt + seed_examples.json, prior = the pool's gold "
    "share rounded to 0.05; no gold labels used otherwise), label = p >= 0.5. It is a weak *model*, priced like the "
    "crowd at $w per label.",
    "Sequential SFT: the weak-stage head is trained on the weak labels, then trained further on the expert labels "
    "with a fresh AdamW and schedule; each stage early-stops on 20 % of its own labels (the expert stage also "
    "evaluates its starting point, so it keeps the weak-stage head when no step improves the expert validation "
    "AUROC). A stage whose labels hold one class only is skipped (the head is unchanged; with no stage left, the zero "
    "head predicts p = 0.5 everywhere). When the stratified 20 % leaves a class without validation or training "
    "items, the stage trains all its labels for the full presentations without early stopping.",
    "Uncertainty sampling: the n_expert pool items of highest predictive entropy of the weak-stage head; for a "
    "binary head this is the smallest margin |p - 0.5| (curate.select.uncertainty.margin_order, random tie-break).",
    "Boundary pairs: curate.select.make_strategy('boundary-pairs', **its default settings) with the weak-stage "
    "head's pool scores, no items labelled yet, budget n_expert (parameters in settings.selection).",
    "Few-shot sequential SFT: sequential SFT (random expert items) where every training and test input is the "
    "embedding of FEWSHOT_FORMAT with 2 demonstrations, one per class, drawn per seed from pool items by their crowd "
    "label (the same 2 demos for every input of the seed and for both weak sources; the 2 demo labels are not "
    "charged). Its share 0 and share 1 cells are expert only and weak only on the prefixed inputs.",
    "Dedupe: cells that train the same heads share one computation (share 0 = expert only is the same for every w "
    "and weak source; share 1 of the sequential variants = weak only; equal (n_weak, n_expert) across prices); "
    "'job' in results.json names the shared computation.",
    "Regime of a budget (per weak source and w, over all methods, by mean test kappa): quantity-dominant when the "
    "best cell is all weak (share 1), quality-dominant when it is all expert (share 0), mixed when an interior share "
    "beats both ends. Pareto frontier: cells sorted by actual cost; a cell joins when its mean kappa beats every "
    "strictly cheaper cell.",
    "Learning rate 3e-2: chosen before the sweep among 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1 by AUROC on a holdout of "
    "3,000 pool items (gold labels; heads trained on 30 / 100 / 1,000 / 12,000 other pool items); the test split was "
    "not used. A first full run at 3e-3 underfitted (weak only on all 15,567 crowd labels: test kappa 0.33, against "
    "0.40 for label_efficiency's converged logistic regression) and was discarded.",
    "Threads: 1 torch thread for the heads (tiny ops; on the shared 2-core machine under load, 2 threads made a step "
    "about 20x slower), 2 for the sentence embeddings, 1 faiss thread for boundary-pairs (5-10x faster under load). "
    "Thread counts do not change the numbers.",
    "Aggregates: mean over seeds with a 95 % Student-t interval over seeds (mean +- t_{0.975, n-1} sd / sqrt(n)); "
    "no interval for one seed. 'beats' in the findings: the paired t-interval of the per-seed difference excludes 0.",
]


# ------------------------------------------------------------------------------------------------ allocation
def allocation(budget: float, share: float, price: float, pool_size: int) -> dict[str, Any]:
    """Labels bought by ``budget`` dollars with weak share ``share`` at ``price`` dollars per weak label.

    Args:
        budget: dollars (an expert label costs $1).
        share: weak share of the budget in [0, 1].
        price: dollars per weak label, > 0.
        pool_size: items that can receive labels (weak and expert counts are capped there).

    Returns:
        ``{"n_expert", "n_weak", "n_weak_wanted", "capped", "cost"}``: counts, whether the weak count was capped at
        the pool, and the dollars actually spent (the issue's formula: rounding ``n_expert`` half up can overspend
        by less than $0.50, e.g. $16.20 at B = 16, s = 0.2, w = 0.10; capping underspends).

    Raises:
        ValueError: ``share`` outside [0, 1] or ``price``/``budget`` not positive.
    """
    if not 0 <= share <= 1 or price <= 0 or budget <= 0:
        raise ValueError(f"need 0 <= share <= 1, price > 0, budget > 0; got {share}, {price}, {budget}")
    n_expert = min(int(math.floor((1 - share) * budget + 0.5 + 1e-9)), pool_size)
    wanted = int(math.floor(share * budget / price + 1e-9))
    n_weak = min(wanted, pool_size)
    return {"n_expert": n_expert, "n_weak": n_weak, "n_weak_wanted": wanted, "capped": wanted > pool_size,
            "cost": round(n_expert + n_weak * price, 6)}


# ------------------------------------------------------------------------------------------------ the student
@dataclass
class HeadJob:
    """One stage of training for one linear head.

    Attributes:
        train: ``(n,)`` int64 rows of the feature matrix; ``y``: ``(n,)`` 0/1 labels of those rows.
        init: ``(d + 1,)`` float32 starting weights and bias (zeros for a fresh head).
    """

    train: np.ndarray
    y: np.ndarray
    init: np.ndarray
    seed: int = 0
    val: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    val_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    skip: bool = False

    def __post_init__(self) -> None:
        self.train, self.y = np.asarray(self.train, np.int64), np.asarray(self.y, np.float32)
        if self.y.size == 0 or self.y.min() == self.y.max():
            self.skip = True  # one class (or nothing): the stage is skipped
            return
        rng = np.random.default_rng(self.seed)
        val = []
        for c in (0, 1):
            members = self.train[self.y == c]
            k = int(math.floor(STUDENT["val_fraction"] * members.size + 0.5))
            if k == 0 or k == members.size:
                return  # no early stopping for this stage
            val.append(rng.choice(members, size=k, replace=False))
        v = np.concatenate(val)
        keep = ~np.isin(self.train, v)
        self.val, self.val_y = v, np.isin(v, val[1]).astype(np.float32)
        self.train, self.y = self.train[keep], self.y[keep]


def _auroc_rows(scores: np.ndarray, y: np.ndarray) -> float:
    """AUROC of ``scores (n,)`` for 0/1 ``y (n,)`` (ties get half credit), by ranks."""
    from scipy.stats import rankdata

    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    r = rankdata(scores)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def train_heads(x: torch.Tensor, jobs: Sequence[HeadJob], *, seed: int = 0) -> np.ndarray:
    """Train independent linear heads, all at once, with AdamW and early stopping (settings in :data:`STUDENT`).

    The heads are rows of one ``(K, d + 1)`` tensor. The loss is the sum of the heads' own losses and AdamW
    (torch.optim.AdamW's update: decoupled weight decay, bias-corrected moments) acts element-wise, so every head
    follows exactly its own training run; the gradient of the logistic loss is written out (no autograd). Heads
    whose patience ran out are dropped from the tensor (their best checkpoint is kept).

    Args:
        x: ``(N, d)`` float32 feature rows (frozen embeddings) that the jobs' row indices point into.
        jobs: the heads to train; a job with ``skip`` set returns its ``init`` unchanged.
        seed: seeds the minibatch draws (one torch generator for the whole batch of heads).

    Returns:
        ``(len(jobs), d + 1)`` float32 weights and bias per head: the best-validation-AUROC checkpoint for
        early-stopped jobs (the starting point included when it is not a fresh zero head), the last step otherwise.
    """
    torch.set_num_threads(STUDENT["torch_threads_training"])  # tiny ops: 1 thread is faster on a busy machine
    out = np.stack([j.init for j in jobs]).astype(np.float32) if jobs else np.zeros((0, x.shape[1] + 1), np.float32)
    live = np.array([i for i, j in enumerate(jobs) if not j.skip], dtype=np.int64)
    if not live.size:
        return out
    k, d, bs = live.size, x.shape[1], STUDENT["batch"]
    lr0, wd, (b1, b2), eps = STUDENT["lr"], STUDENT["weight_decay"], STUDENT["betas"], 1e-8
    steps = math.ceil(STUDENT["presentations_per_stage"] / bs)
    every = max(1, STUDENT["eval_every_presentations"] // bs)
    patience = STUDENT["patience_evals"]
    sizes = np.array([jobs[i].train.size for i in live])
    rows = np.zeros((k, sizes.max()), np.int64)
    ys = np.zeros((k, sizes.max()), np.float32)
    wts = np.zeros((k, sizes.max()), np.float32)
    for r, i in enumerate(live):
        j = jobs[i]
        n, n_pos = j.train.size, float(j.y.sum())
        rows[r, :n], ys[r, :n] = j.train, j.y
        wts[r, :n] = np.where(j.y > 0.5, n / (2 * n_pos), n / (2 * (n - n_pos)))
    rows_t, ys_t, wts_t = torch.from_numpy(rows), torch.from_numpy(ys), torch.from_numpy(wts)
    sizes_t = torch.from_numpy(sizes).float()[:, None]
    theta = torch.from_numpy(out[live].copy())  # (k, d + 1)
    m1, m2 = torch.zeros_like(theta), torch.zeros_like(theta)
    gen = torch.Generator().manual_seed(seed)
    has_val = np.array([jobs[i].val.size > 0 for i in live])
    val_rows = np.unique(np.concatenate([jobs[i].val for i in live[has_val]])) if has_val.any() else np.zeros(0, int)
    x_val = x[torch.from_numpy(val_rows)] if val_rows.size else None
    val_pos = {r: np.searchsorted(val_rows, jobs[i].val) for r, i in enumerate(live) if has_val[r]}
    best = np.full(k, -np.inf)
    bad = np.zeros(k, np.int64)
    best_theta = out[live].copy()
    active = np.arange(k)  # positions (into live) still training

    def evaluate(first: bool) -> None:
        ev = [a for a in range(active.size) if has_val[active[a]]]
        if not ev:
            return
        with torch.no_grad():
            scores = (x_val @ theta[ev, :d].T + theta[ev, d]).numpy()  # (V, len(ev))
        for c, a in enumerate(ev):
            r = active[a]
            if first and not np.any(out[live[r]]):
                continue  # a fresh zero head predicts 0.5 everywhere: not a checkpoint
            auc = _auroc_rows(scores[val_pos[r], c], jobs[live[r]].val_y)
            if auc > best[r]:
                best[r], bad[r] = auc, 0
                best_theta[r] = theta[a].numpy()
            else:
                bad[r] += 1

    evaluate(True)
    for step in range(steps):
        pos = (torch.rand((active.size, bs), generator=gen) * sizes_t).long()
        xb = x[rows_t.gather(1, pos)]  # (k, bs, d)
        z = torch.einsum("kbd,kd->kb", xb, theta[:, :d]) + theta[:, d:]
        dz = wts_t.gather(1, pos) * (torch.sigmoid(z) - ys_t.gather(1, pos)) / bs  # d loss / d z
        grad = torch.cat([torch.einsum("kb,kbd->kd", dz, xb), dz.sum(1, keepdim=True)], dim=1)
        lr = lr0 * 0.5 * (1 + math.cos(math.pi * step / steps))
        theta.mul_(1 - lr * wd)
        m1.mul_(b1).add_(grad, alpha=1 - b1)
        m2.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (m2 / (1 - b2 ** (step + 1))).sqrt_().add_(eps)
        theta.addcdiv_(m1, denom, value=-lr / (1 - b1 ** (step + 1)))
        if (step + 1) % every == 0 and step + 1 < steps:
            evaluate(False)
            keep = np.array([not (has_val[r] and bad[r] >= patience) for r in active])
            if not keep.all():  # drop heads whose patience ran out
                final = theta.numpy()
                for a in np.flatnonzero(~keep):
                    out[live[active[a]]] = best_theta[active[a]]
                kt = torch.from_numpy(np.flatnonzero(keep))
                theta, m1, m2 = theta[kt].clone(), m1[kt].clone(), m2[kt].clone()
                rows_t, ys_t, wts_t, sizes_t = rows_t[kt], ys_t[kt], wts_t[kt], sizes_t[kt]
                active = active[keep]
                del final
            if not active.size:
                break
    if active.size:
        evaluate(False)
        final = theta.numpy()
        for a, r in enumerate(active):
            out[live[r]] = best_theta[r] if has_val[r] and np.isfinite(best[r]) else final[a]
    return out


def _proba(x: np.ndarray, head: np.ndarray) -> np.ndarray:
    """p(positive) ``(n,)`` of the linear head ``(d + 1,)`` on rows ``x (n, d)``."""
    z = x @ head[:-1] + head[-1]
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def _eval(gold: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """label_efficiency's metrics (kappa, F1, AUROC) plus accuracy of ``p >= 0.5`` against ``gold``."""
    return {**_metrics(gold, p), "accuracy": float(((p >= 0.5) == gold).mean())}


# --------------------------------------------------------------------------------------------------- the cells
def _cell_job(method: str, source: str, alloc: dict[str, Any], share: float) -> tuple:
    """The computation a cell needs (cells with equal keys share it): ``(kind, features, ...)``."""
    feat = "fewshot" if method == "few-shot sequential" else "plain"
    if share == 0 or alloc["n_weak"] == 0:
        return ("expert", feat, alloc["n_expert"])
    if share == 1 or alloc["n_expert"] == 0:
        return ("weak", feat, source, alloc["n_weak"])
    selector = {"sequential+uncertainty": "uncertainty", "sequential+boundary-pairs": "boundary-pairs"}.get(
        method, "random")
    return ("seq", feat, source, alloc["n_weak"], selector, alloc["n_expert"])


def _method_shares(method: str, shares: Sequence[float]) -> list[float]:
    if method == "expert-only":
        return [s for s in shares if s == 0]
    if method == "weak-only":
        return [s for s in shares if s == 1]
    return list(shares)


def _make_cells(methods, sources, prices, budgets, shares, pool_size) -> list[dict[str, Any]]:
    cells = []
    for source in sources:
        for price in prices:
            for budget in budgets:
                for method in methods:
                    for share in _method_shares(method, shares):
                        a = allocation(budget, share, price, pool_size)
                        cells.append({"method": method, "weak_source": source, "w": price, "budget": budget,
                                      "share": share, **a, "job": _cell_job(method, source, a, share)})
    return cells


def _key(job: tuple) -> str:
    return "/".join(str(p) for p in job)


# -------------------------------------------------------------------------------------------------- per seed
def _demos(seed: int, texts: list[str], pool: np.ndarray, crowd: np.ndarray) -> list[tuple[str, str]]:
    """Two ``(text, label)`` demonstrations for ``seed``: one crowd-positive and one crowd-negative pool item."""
    rng = np.random.default_rng([seed, 1])
    pos = int(rng.choice(pool[crowd]))
    neg = int(rng.choice(pool[~crowd]))
    demos = [(texts[pos], LABELS[1]), (texts[neg], LABELS[0])]
    return [demos[i] for i in rng.permutation(2)]


def fewshot_texts(texts: Sequence[str], demos: Sequence[tuple[str, str]]) -> list[str]:
    """Every text prefixed with the two demonstrations, in :data:`FEWSHOT_FORMAT`.

    Example: ``"Senate passes bill -> no-clickbait; You won't believe this -> clickbait; <item text>"``.
    """
    (t1, l1), (t2, l2) = demos
    return [FEWSHOT_FORMAT.format(demo1=t1, label1=l1, demo2=t2, label2=l2, text=t) for t in texts]


def seed_labels(seed: int, d: dict, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The crowd label and the simulated expert label of every pool item for ``seed``.

    Returns:
        ``(crowd, expert)``: ``(N,)`` bool arrays over all items (False outside ``pool``). Crowd: one Webis judgment
        drawn per item (>= 0.5 is clickbait); expert: SimulatedExperts' expert-1 at pairwise kappa 0.8.
    """
    ids, gold = d["ids"], d["majority"]
    pool_ids = [ids[i] for i in pool]
    got = crowd_labels([d["judgments"][i] for i in pool], pool_ids, list(LABELS), LABELS[1], seed=seed)
    crowd = np.zeros(len(ids), bool)
    crowd[pool] = [got.get(i) == LABELS[1] for i in pool_ids]
    experts = SimulatedExperts({i: LABELS[int(gold[p])] for i, p in zip(pool_ids, pool)}, list(LABELS),
                               n_experts=1, target_kappa=EXPERT_KAPPA, seed=seed)
    expert = np.zeros(len(ids), bool)
    expert[pool] = [experts.answer(i, "expert-1") == LABELS[1] for i in pool_ids]
    return crowd, expert


def fewshot_features(seed: int, d: dict, pool: np.ndarray, crowd: np.ndarray, out: Path, *,
                     progress: bool = True) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Embeddings ``(N, 384)`` float32 of every item prefixed with the seed's two demonstrations, cached in
    ``out/fewshot_seed{seed}/embeddings.npy`` (float16) keyed by the prefixed texts; and the demonstrations."""
    demos = _demos(seed, d["texts"], pool, crowd[pool])
    folder = out / FEWSHOT_DIR.format(seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    x = cached_embeddings(folder, d["ids"], fewshot_texts(d["texts"], demos), model=BUNDLED_MODEL, progress=progress)
    return np.asarray(x, dtype=np.float32), demos


def _run_seed(seed: int, *, d: dict, emb: np.ndarray, pool: np.ndarray, test: np.ndarray, scout_label: np.ndarray,
              jobs: set[tuple], feat: str, out: Path, progress: bool, advance: Callable[[int], None],
              timing: dict[str, float]) -> tuple[dict[str, dict], dict[str, Any]]:
    """Every job of one seed on features ``feat`` (``plain`` or ``fewshot``) -> ``{job key: test metrics}`` and the
    seed's label-quality diagnostics."""
    gold = d["majority"]
    crowd, expert = seed_labels(seed, d, pool)
    weak = {"crowd": crowd, "scout": scout_label}
    rng = np.random.default_rng([seed, 0])
    weak_order, expert_order = rng.permutation(pool), rng.permutation(pool)
    diag = {"crowd_gold_kappa_pool": cohen_kappa(crowd[pool], gold[pool]),
            "scout_gold_kappa_pool": cohen_kappa(scout_label[pool], gold[pool]),
            "expert_gold_kappa_pool": cohen_kappa(expert[pool], gold[pool])}
    feats = {"plain": emb} if feat == "plain" else {}
    if feat == "fewshot" and any(j[1] == "fewshot" for j in jobs):
        t0 = time.perf_counter()
        feats["fewshot"], demos = fewshot_features(seed, d, pool, crowd, out, progress=progress)
        timing["fewshot_embedding_s"] = timing.get("fewshot_embedding_s", 0.0) + time.perf_counter() - t0
        diag["demos"] = [{"text": t, "label": lab} for t, lab in demos]
    results: dict[str, dict] = {}
    for feat, x in feats.items():
        xt = torch.from_numpy(np.ascontiguousarray(x))
        mine = [j for j in jobs if j[1] == feat]
        first, second = _stages(jobs, feat)
        specs = []
        for j in first:
            if j[0] == "expert":
                items = expert_order[:j[2]]
                specs.append(HeadJob(items, expert[items], np.zeros(x.shape[1] + 1), seed=hash_seed(seed, j)))
            else:
                items = weak_order[:j[3]]
                specs.append(HeadJob(items, weak[j[2]][items], np.zeros(x.shape[1] + 1), seed=hash_seed(seed, j)))
        t0 = time.perf_counter()
        heads = dict(zip(first, train_heads(xt, specs, seed=hash_seed(seed, ("stage1", feat)))))
        timing["training_s"] = timing.get("training_s", 0.0) + time.perf_counter() - t0
        timing["heads_trained"] = timing.get("heads_trained", 0) + sum(not s.skip for s in specs)
        advance(len(first))
        # stage 2: the expert stage, items chosen by the weak-stage head (or at random)
        specs = []
        t0 = time.perf_counter()
        scores_cache: dict[tuple, np.ndarray] = {}
        pool_emb = emb[pool]
        for j in second:
            start = heads[("weak", feat, j[2], j[3])]
            n = j[5]
            if j[4] == "random":
                items = expert_order[:n]
            else:
                wkey = ("weak", feat, j[2], j[3])
                if wkey not in scores_cache:
                    scores_cache[wkey] = _proba(x[pool], start).astype(np.float32)
                s = scores_cache[wkey]
                sel_rng = np.random.default_rng([seed, hash_seed(seed, j)])
                if j[4] == "uncertainty":
                    pos = margin_order(s, np.ones(pool.size, bool), sel_rng)[:n]
                else:
                    pos = _strategy("boundary-pairs").query(scores=s, embeddings=pool_emb,
                                                            labelled=np.zeros(pool.size, bool), budget=n,
                                                            rng=sel_rng).indices
                items = pool[pos]
            specs.append(HeadJob(items, expert[items], start, seed=hash_seed(seed, j)))
        timing["selection_s"] = timing.get("selection_s", 0.0) + time.perf_counter() - t0
        t0 = time.perf_counter()
        heads.update(zip(second, train_heads(xt, specs, seed=hash_seed(seed, ("stage2", feat)))))
        timing["training_s"] += time.perf_counter() - t0
        timing["heads_trained"] += sum(not s.skip for s in specs)
        advance(len(second))
        for j in mine:
            results[_key(j)] = _eval(gold[test], _proba(x[test], heads[j]))
    return results, diag


def _stages(jobs: set[tuple], feat: str) -> tuple[list[tuple], list[tuple]]:
    """Stage 1 (every weak-stage head, for weak-only cells and as the start of sequential ones, and expert-only
    heads) and stage 2 (the expert stage of sequential cells) of the jobs on features ``feat``."""
    mine = [j for j in jobs if j[1] == feat]
    first = sorted({j for j in mine if j[0] in ("expert", "weak")}
                   | {("weak", feat, j[2], j[3]) for j in mine if j[0] == "seq"})
    return first, sorted(j for j in mine if j[0] == "seq")


def hash_seed(seed: int, job: tuple) -> int:
    """A stable 32-bit seed from the run's seed and a job key (no Python ``hash`` randomisation)."""
    import zlib

    return zlib.crc32(f"{seed}|{_key(job)}".encode())


# ------------------------------------------------------------------------------------------------- analysis
def _group(cells: list[dict]) -> dict[tuple, list[dict]]:
    g: dict[tuple, list[dict]] = {}
    for c in cells:
        g.setdefault((c["weak_source"], c["w"], c["budget"]), []).append(c)
    return g


def _mean(c: dict, metric: str = "kappa") -> float:
    v = c["aggregate"][metric]["mean"]
    return -math.inf if v is None else v


def regimes(cells: list[dict], metric: str = "kappa") -> list[dict[str, Any]]:
    """Per (weak source, w, budget): the best cell and the regime (Mallen & Belrose 2024).

    quantity-dominant: the best mean ``metric`` is at share 1 (all weak); quality-dominant: at share 0 (all expert);
    mixed: an interior share beats both ends. Ties go to the end (the simpler purchase).
    """
    rows = []
    for (source, w, budget), cs in _group(cells).items():
        ends = {side: max((_mean(c, metric) for c in cs if c["share"] == side), default=-math.inf) for side in (0, 1)}
        interior = [c for c in cs if 0 < c["share"] < 1]
        best_int = max(interior, key=lambda c: _mean(c, metric)) if interior else None
        best = max(cs, key=lambda c: (_mean(c, metric), c["share"] in (0, 1)))
        if best_int is not None and _mean(best_int, metric) > max(ends.values()):
            regime, best = "mixed", best_int
        else:
            regime = "quantity-dominant" if ends[1] >= ends[0] else "quality-dominant"
        rows.append({"weak_source": source, "w": w, "budget": budget, "metric": metric, "regime": regime,
                     "best": {k: best[k] for k in ("method", "share", "n_expert", "n_weak", "capped")}
                     | {metric: best["aggregate"][metric]},
                     "best_all_expert": ends[0], "best_all_weak": ends[1],
                     "best_interior": _mean(best_int, metric) if best_int else None})
    return rows


def pareto(cells: list[dict], metric: str = "kappa") -> list[dict]:
    """The cells on the Pareto frontier of mean ``metric`` against actual cost (log dollars).

    Cells are sorted by cost; a cell joins when its mean beats every strictly cheaper cell (among equal-cost cells,
    the best one). Cells that share a computation count once.
    """
    seen, uniq = set(), []
    for c in sorted(cells, key=lambda c: (c["cost"], -_mean(c, metric))):
        if c["job"] not in seen:
            seen.add(c["job"])
            uniq.append(c)
    front, best = [], -math.inf
    i = 0
    while i < len(uniq):
        same = [c for c in uniq[i:] if c["cost"] == uniq[i]["cost"]]
        top = max(same, key=lambda c: _mean(c, metric))
        if _mean(top, metric) > best:
            front.append(top)
            best = _mean(top, metric)
        i += len(same)
    return front


# ------------------------------------------------------------------------------------------------ reporting
def _fmt_share(s: float) -> str:
    return f"{s:g}"


def _cap(c: dict) -> str:
    return f" (capped at {c['n_weak']:,})" if c["capped"] else ""


def _best_by_method(cs: list[dict], method: str, metric: str) -> dict | None:
    mine = [c for c in cs if c["method"] == method]
    return max(mine, key=lambda c: _mean(c, metric)) if mine else None


SEQUENTIAL_ONLY = ("expert-only", "weak-only", "sequential")  # the conservative regime: fewest comparisons
COMPARISONS = (("sequential+boundary-pairs", "sequential+uncertainty"), ("sequential+boundary-pairs", "sequential"),
               ("sequential+uncertainty", "sequential"), ("few-shot sequential", "sequential"))


def _compare(cells: list[dict], method: str, other: str) -> str | None:
    """One finding line: in how many interior cells ``method`` beats / ties / loses to ``other`` (paired kappa)."""
    idx = {(c["method"], c["weak_source"], c["w"], c["budget"], c["share"]): c for c in cells}
    tally: dict[str, list] = {"beats": [], "ties": [], "loses to": []}
    for c in cells:
        if c["method"] != method or not 0 < c["share"] < 1:
            continue
        o = idx.get((other, c["weak_source"], c["w"], c["budget"], c["share"]))
        if o is None or o["job"] == c["job"]:
            continue
        diff = _interval([x["kappa"] - y["kappa"] for x, y in zip(c["per_seed"], o["per_seed"])
                          if x["kappa"] is not None and y["kappa"] is not None])
        if diff["mean"] is None:
            continue
        lo, hi = (diff["mean"], diff["mean"]) if diff["low"] is None else (diff["low"], diff["high"])
        tally["beats" if lo > 0 else "loses to" if hi < 0 else "ties"].append((c, diff["mean"]))
    n = sum(len(v) for v in tally.values())
    if not n:
        return None
    mean = float(np.mean([m for v in tally.values() for _, m in v]))
    worst = sorted(tally["loses to"], key=lambda t: t[1])[:3]
    return (f"- {method} vs {other} (paired over seeds, same weak source, w, budget and interior share; kappa): "
            f"beats it in {len(tally['beats'])} of {n} cells, ties in {len(tally['ties'])}, loses in "
            f"{len(tally['loses to'])}; mean difference {mean:+.3f}"
            + (". Largest losses: " + "; ".join(
                f"{c['weak_source']} w=${c['w']:g} ${c['budget']} share {_fmt_share(c['share'])} ({m:+.3f})"
                for c, m in worst) if worst else "") + ".")


def _findings(res: dict) -> list[str]:
    """Plain findings: regimes and best methods per weak source at the main price, then method comparisons."""
    s, cells = res["settings"], res["cells"]
    lines = []
    reg = {(r["weak_source"], r["w"], r["budget"]): r for r in res["regimes"]}
    for source in s["weak_sources"]:
        for w in s["prices"]:
            parts = [f"${b}: {reg[(source, w, b)]['regime']} (best {reg[(source, w, b)]['best']['method']} at share "
                     f"{_fmt_share(reg[(source, w, b)]['best']['share'])}, kappa "
                     f"{reg[(source, w, b)]['best']['kappa']['mean']:.2f})" for b in s["budgets"]]
            lines.append(f"- weak source '{source}', w = ${w:g}: " + "; ".join(parts) + ".")
    lines.append("- Accuracy is a weak yardstick here: the loss is class-balanced and the threshold 0.5, so heads predict "
                 "many positives and most cells score below the all-negative accuracy (1 - test positive share); "
                 "kappa is the primary metric, as in the project (METHOD.md section 1, step 9).")
    lines.append("- Caveat: the regime over all methods takes the best of about 30 interior cells against 2-3 end cells, "
                 "each a mean of few seeds with wide intervals, so it leans to 'mixed' (winner's curse); the "
                 "'sequential SFT only' column (expert only, weak only, plain sequential) compares fewer cells.")
    for method, other in COMPARISONS:
        if method in s["methods"] and other in s["methods"]:
            line = _compare(cells, method, other)
            if line:
                lines.append(line)
    b, q = res["baselines"]["scout_zero_training"], {k: v["mean"] for k, v in res["label_quality"].items()}
    lines.append(f"- For scale: the scout alone (no training) has test kappa {b['kappa']:.2f}, accuracy "
                 f"{b['accuracy']:.2f}; on the pool, crowd-gold kappa {q['crowd_gold_kappa_pool']:.2f}, scout-gold "
                 f"{q['scout_gold_kappa_pool']:.2f}, expert-gold {q['expert_gold_kappa_pool']:.2f}.")
    return lines


def _write_md(res: dict, path: Path) -> None:
    s = res["settings"]
    cells = res["cells"]
    m = res["machine"]
    lines = [
        "# Cost sweep: label quantity versus quality (Webis Clickbait 2017)", "",
        f"Mallen & Belrose 2024 (METHOD.md section 2) on a proxy student: a linear head on frozen all-MiniLM-L6-v2 "
        f"embeddings trained with AdamW (not the fine-tuned transformer). {s['n_items']} items, fixed test split of "
        f"{s['n_test']} (seed {TEST_SEED}), pool {s['n_pool']}; {s['seeds']} seed(s); expert label $1, weak label "
        f"$w; {'QUICK MODE; ' if s['quick'] else ''}run {res['date']} in {res['elapsed_s']:.0f} s.", "",
        f"Command: `{res['command']}`", "",
        f"Machine: {m['cpu_model']}, {m['cpus_usable']} usable cores, load average at end "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_end'])}; torch {m['torch']}.", "",
        f"Settings: budgets {s['budgets']}, weak shares {s['shares']}, prices {s['prices']}, weak sources "
        f"{s['weak_sources']}, methods {s['methods']}, expert kappa {s['expert_kappa']}. Student: "
        f"`{json.dumps(s['student'])}`.", "",
        f"Timing: {res['timing']['heads_trained']} head trainings in {res['timing']['training_s']:.0f} s "
        f"(batched; {res['timing']['ms_per_head']:.0f} ms per head on average), selection "
        f"{res['timing']['selection_s']:.0f} s, few-shot embeddings {res['timing'].get('fewshot_embedding_s', 0):.0f} "
        f"s; {len(cells)} cells from {res['timing']['distinct_jobs']} distinct computations per seed.", "",
        "Label quality on the pool (means over seeds): " + ", ".join(
            f"{k.replace('_pool', '')} {v['mean']:.2f}" for k, v in res["label_quality"].items()) + ".", "",
        "Cells: mean test kappa against gold over seeds [95 % Student-t interval]; 'capped at N' marks a cell whose "
        "weak labels were capped at the pool.", "",
    ]
    reg = {(r["weak_source"], r["w"], r["budget"]): r for r in res["regimes"]}
    reg_acc = {(r["weak_source"], r["w"], r["budget"]): r for r in res["regimes_accuracy"]}
    reg_seq = {(r["weak_source"], r["w"], r["budget"]): r for r in res.get("regimes_sequential", [])}
    groups = _group(cells)
    for source in s["weak_sources"]:
        for w in s["prices"]:
            lines += [f"## Weak source '{source}', w = ${w:g}", "",
                      "| budget | regime (kappa) | best method | share | n_expert | n_weak | kappa | accuracy | AUROC |"
                      " regime (accuracy) | regime (sequential SFT only, kappa) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
            for b in s["budgets"]:
                r = reg[(source, w, b)]
                best = next(c for c in groups[(source, w, b)] if c["method"] == r["best"]["method"]
                            and c["share"] == r["best"]["share"])
                a = best["aggregate"]
                lines.append(f"| ${b} | {r['regime']} | {best['method']} | {_fmt_share(best['share'])} | "
                             f"{best['n_expert']} | {best['n_weak']:,}{_cap(best)} | {_cell(a['kappa'])} | "
                             f"{_cell(a['accuracy'], False)} | {_cell(a['auroc'], False)} | "
                             f"{reg_acc[(source, w, b)]['regime']} | "
                             f"{reg_seq[(source, w, b)]['regime'] if (source, w, b) in reg_seq else '-'} |")
            lines += ["", "Kappa by method and weak share (means; share 0 of the sequential variants = expert only, share 1 = "
                      "weak only):", "",
                      "| method | budget | " + " | ".join(_fmt_share(x) for x in s["shares"]) + " |",
                      "|---|---|" + "---|" * len(s["shares"])]
            for method in s["methods"]:
                for b in s["budgets"]:
                    by = {c["share"]: c for c in groups[(source, w, b)] if c["method"] == method}
                    if not by:
                        continue
                    lines.append(f"| {method} | ${b} | " + " | ".join(
                        (_cell(by[x]["aggregate"]["kappa"], False) + ("*" if by[x]["capped"] else ""))
                        if x in by else "" for x in s["shares"]) + " |")
            capped = sorted({c["n_weak"] for c in _groups_cells(groups, source, w) if c["capped"]})
            lines += ["", ("\\* capped at " + ", ".join(f"{n:,}" for n in capped) + " weak labels (the pool); "
                           "the budget would buy more.") if capped else "No cell was capped.", ""]
    main_w = 0.1 if 0.1 in s["prices"] else s["prices"][0]
    for source in s["weak_sources"]:
        lines += [f"## In the shape of METHOD.md's 'Numbers reported' table (w = ${main_w:g}, weak source '{source}')",
                  "", "Test accuracy of each method at its best share (by mean accuracy; the share in brackets, * = capped).", "",
                  "| method | " + " | ".join(f"${b}" for b in s["budgets"]) + " |", "|---|" + "---|" * len(s["budgets"])]
        for method in s["methods"]:
            row = []
            for b in s["budgets"]:
                c = _best_by_method(groups[(source, main_w, b)], method, "accuracy")
                row.append("-" if c is None else f"{_cell(c['aggregate']['accuracy'], False)} "
                           f"({_fmt_share(c['share'])}{'*' if c['capped'] else ''})")
            lines.append(f"| {method} | " + " | ".join(row) + " |")
        lines += ["", "Regimes (kappa): " + "; ".join(
            f"${b} {reg[(source, main_w, b)]['regime']}" for b in s["budgets"]) + ".", ""]
    lines += ["## Findings", ""] + res["findings"] + [""]
    lines += ["## Settings and rules", ""] + [f"- {n}" for n in res["notes"]]
    lines += [f"- Boundary-pairs parameters (SelectionConfig defaults): `{json.dumps(s['selection'])}`",
              f"- Few-shot format: `{s['fewshot_format']}`; demonstrations per seed in label_quality_per_seed "
              "(results.json).", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _groups_cells(groups: dict, source: str, w: float) -> list[dict]:
    return [c for (s, ww, _), cs in groups.items() if s == source and ww == w for c in cs]


def _plot(res: dict, path: Path, metric: str = "kappa") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = res["settings"]
    sources, prices = s["weak_sources"], s["prices"]
    fig, axes = plt.subplots(len(sources), len(prices), figsize=(5.2 * len(prices), 4.2 * len(sources)),
                             squeeze=False, sharey=True)
    colors = dict(zip(METHODS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for r, source in enumerate(sources):
        for c, w in enumerate(prices):
            ax = axes[r][c]
            cs = [x for x in res["cells"] if x["weak_source"] == source and x["w"] == w]
            for method in s["methods"]:
                mine = [x for x in cs if x["method"] == method]
                ax.scatter([x["cost"] for x in mine], [_mean(x, metric) for x in mine], s=12, alpha=0.55,
                           color=colors.get(method), label=method)
            front = pareto(cs, metric)
            ax.plot([x["cost"] for x in front], [_mean(x, metric) for x in front], "k-", lw=1.2, drawstyle="steps-post")
            ax.scatter([x["cost"] for x in front], [_mean(x, metric) for x in front], s=40, facecolors="none",
                       edgecolors="k", label="Pareto frontier")
            ax.set_xscale("log")
            ax.set(title=f"weak source '{source}', w = \\${w:g}", xlabel="dollars actually spent (log)",
                   ylabel=f"test {metric} vs gold" if c == 0 else None)
            ax.grid(alpha=0.3, which="both")
            if r == 0 and c == 0:
                ax.legend(fontsize=7)
    fig.suptitle(f"Cost sweep ({metric}), linear proxy student; expert label \\$1, weak label \\$w; Pareto frontier "
                 "in black", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------- the entry
def run_cost_sweep(
    data: Path = DEFAULT_DATA,
    out: Path = REPO / "benchmarks" / "results" / "cost_sweep",
    *,
    seeds: int | None = None,
    budgets: Sequence[int] = BUDGETS,
    shares: Sequence[float] = SHARES,
    prices: Sequence[float] = PRICES,
    weak_sources: Sequence[str] = WEAK_SOURCES,
    methods: Sequence[str] = METHODS,
    test_fraction: float = 0.2,
    quick: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Run the cost sweep and write ``results.json``, ``results.md``, ``pareto_kappa.png``, ``pareto_accuracy.png``
    and the embedding caches (``embeddings.npy``/``.json`` and ``fewshot_seed{seed}/embeddings.npy``/``.json``,
    float16) into ``out``.

    Args:
        data: Webis Clickbait 2017 JSONL (id, text, judgments, truth_mean, label).
        seeds: seeds ``0 .. seeds-1`` (expert noise, crowd draw, item orders, demonstrations, minibatches);
            default 3, or 1 in quick mode.
        budgets: dollars; an expert label costs $1.
        shares: weak shares of the budget in [0, 1].
        prices: dollars per weak label.
        weak_sources: ``crowd`` and/or ``scout``.
        methods: a subset of :data:`METHODS`.
        quick: the first 3,000 items, budgets (16, 64, 256), shares (0, 0.2, 0.6, 1), one seed unless ``seeds``
            is given.
        command: recorded in the results (default: this call's repr).

    Returns:
        The results dict written to ``results.json``.

    Raises:
        CurateError: ``data`` is not a file.
        ValueError: an unknown method or weak source, a share outside [0, 1], a non-positive budget or price.
    """
    t_start = time.perf_counter()
    import_faiss().omp_set_num_threads(STUDENT["faiss_threads"])
    if quick:
        budgets, shares = QUICK["budgets"], QUICK["shares"]
    seeds = seeds if seeds is not None else (QUICK["seeds"] if quick else 3)
    budgets = tuple(sorted(int(b) for b in budgets))
    shares = tuple(sorted(float(x) for x in shares))
    prices = tuple(sorted((float(p) for p in prices), reverse=True))
    bad = [m for m in methods if m not in METHODS] + [w for w in weak_sources if w not in WEAK_SOURCES]
    if bad or not methods or not weak_sources:
        raise ValueError(f"unknown methods/weak sources {bad}; known: {', '.join(METHODS + WEAK_SOURCES)}")
    if any(not 0 <= x <= 1 for x in shares) or any(b <= 0 for b in budgets) or any(p <= 0 for p in prices):
        raise ValueError("shares must lie in [0, 1]; budgets and prices must be positive")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if not Path(data).is_file():
        raise CurateError(f"{data}: the Webis Clickbait 2017 JSONL was not found (pass --data)")
    methods = tuple(m for m in METHODS if m in methods)
    weak_sources = tuple(w for w in WEAK_SOURCES if w in weak_sources)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    d = _load(data, QUICK["items"] if quick else None)
    emb = np.asarray(cached_embeddings(out, d["ids"], d["texts"], model=BUNDLED_MODEL, progress=progress),
                     dtype=np.float32)
    timing: dict[str, float] = {"embedding_s": time.perf_counter() - t_start}
    perm = np.random.default_rng(TEST_SEED).permutation(len(d["ids"]))  # label_efficiency's split
    n_test = int(round(test_fraction * len(perm)))
    test, pool = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    gold = d["majority"]
    prior = max(0.05, round(float(gold[pool].mean()) / 0.05) * 0.05)
    scout = _scout(LABELS, emb[pool], prior)
    scout_label = np.zeros(len(gold), bool)
    scout_label[pool] = scout.proba_from_embeddings(emb[pool])[:, 1] >= 0.5
    scout_test = _eval(gold[test], scout.proba_from_embeddings(emb[test])[:, 1])
    cells = _make_cells(methods, weak_sources, prices, budgets, shares, int(pool.size))
    jobs = {c["job"] for c in cells}
    if "scout" not in weak_sources:
        scout_label[:] = False
    per_seed: list[dict] = [{} for _ in range(seeds)]
    diags: list[dict] = [{} for _ in range(seeds)]
    total = seeds * sum(len(a) + len(b) for a, b in (_stages(jobs, f) for f in ("plain", "fewshot")))
    with progress_callback("cost sweep", total=total, enabled=progress) as advance:
        for feat in ("plain", "fewshot"):  # the few-shot embeddings (slowest to build) last
            for seed in range(seeds):
                r, diag = _run_seed(seed, d=d, emb=emb, pool=pool, test=test, scout_label=scout_label, jobs=jobs,
                                    feat=feat, out=out, progress=progress, advance=advance, timing=timing)
                per_seed[seed].update(r)
                diags[seed].update(diag)
    for c in cells:
        c["job"] = _key(c["job"])
        c["per_seed"] = [r[c["job"]] for r in per_seed]
        c["aggregate"] = _aggregate(c["per_seed"])
    import sklearn

    timing["distinct_jobs"] = len(jobs)
    timing["ms_per_head"] = 1000 * timing["training_s"] / max(1, timing["heads_trained"])
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else ""
    res = {
        "experiment": "cost_sweep",
        "command": command or (f"run_cost_sweep({str(data)!r}, {str(out)!r}, seeds={seeds}, budgets={budgets}, "
                               f"shares={shares}, prices={prices}, weak_sources={weak_sources}, "
                               f"methods={methods}, quick={quick})"),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu_model": cpu, "platform": platform.platform(), "python": platform.python_version(),
                    "cpus_usable": len(os.sched_getaffinity(0)), "load_average_at_end": list(os.getloadavg()),
                    "numpy": np.__version__, "torch": torch.__version__, "sklearn": sklearn.__version__},
        "elapsed_s": time.perf_counter() - t_start,
        "timing": timing,
        "settings": {"data": str(data), "n_items": len(d["ids"]), "n_test": int(test.size), "n_pool": int(pool.size),
                     "test_split_seed": TEST_SEED, "test_fraction": test_fraction, "seeds": seeds,
                     "budgets": list(budgets), "shares": list(shares), "prices": list(prices),
                     "weak_sources": list(weak_sources), "methods": list(methods), "quick": quick,
                     "expert_kappa": EXPERT_KAPPA, "experts_per_item": 1, "embedding_model": BUNDLED_MODEL,
                     "student": STUDENT, "fewshot_format": FEWSHOT_FORMAT, "scout_prior": prior,
                     "selection": SelectionConfig().params("boundary-pairs"),
                     "interval": "95 % Student-t over seeds"},
        "notes": NOTES,
        "baselines": {"scout_zero_training": scout_test},
        "label_quality": _aggregate([{k: v for k, v in g.items() if k != "demos"} for g in diags]),
        "label_quality_per_seed": diags,
        "cells": cells,
    }
    res = _clean(res)
    write_report(res, out)
    return res


def write_report(res: dict, out: Path) -> dict:
    """Add the regimes, Pareto frontiers and findings to the results dict ``res`` (cells as in ``results.json``) and
    write ``results.json``, ``results.md``, ``pareto_kappa.png`` and ``pareto_accuracy.png`` into ``out``.

    ``write_report(json.loads((out / "results.json").read_text()), out)`` re-renders a finished run.
    """
    out = Path(out)
    res["regimes"] = _clean(regimes(res["cells"], "kappa"))
    res["regimes_accuracy"] = _clean(regimes(res["cells"], "accuracy"))
    res["regimes_sequential"] = _clean(regimes([c for c in res["cells"] if c["method"] in SEQUENTIAL_ONLY], "kappa"))
    res["pareto"] = {f"{src}/w={w:g}": [{k: c[k] for k in ("method", "share", "budget", "cost", "n_expert", "n_weak")}
                                         | {"kappa": c["aggregate"]["kappa"]["mean"]}
                                         for c in pareto([x for x in res["cells"] if x["weak_source"] == src
                                                          and x["w"] == w])]
                     for src in res["settings"]["weak_sources"] for w in res["settings"]["prices"]}
    res["findings"] = _findings(res)
    (out / "results.json").write_text(json.dumps(_clean(res), indent=1, allow_nan=False), encoding="utf-8")
    _write_md(res, out / "results.md")
    _plot(res, out / "pareto_kappa.png", "kappa")
    _plot(res, out / "pareto_accuracy.png", "accuracy")
    return res


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m curate.experiments.cost_sweep [options]``."""
    ap = argparse.ArgumentParser(prog="python -m curate.experiments.cost_sweep", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Webis Clickbait 2017 JSONL")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cost_sweep")
    ap.add_argument("--seeds", type=int, default=None, help="default 3 (1 with --quick)")
    ap.add_argument("--budgets", default=",".join(map(str, BUDGETS)), help="comma-separated dollars")
    ap.add_argument("--shares", default=",".join(f"{x:g}" for x in SHARES), help="comma-separated weak shares")
    ap.add_argument("--prices", default=",".join(f"{x:g}" for x in PRICES), help="comma-separated $ per weak label")
    ap.add_argument("--weak-sources", default=",".join(WEAK_SOURCES))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--quick", action="store_true",
                    help="3,000 items, budgets 16,64,256, shares 0,0.2,0.6,1, one seed unless --seeds")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)
    split = lambda s: tuple(x.strip() for x in s.split(",") if x.strip())  # noqa: E731
    res = run_cost_sweep(
        args.data, args.out, seeds=args.seeds, budgets=tuple(int(b) for b in split(args.budgets)),
        shares=tuple(float(x) for x in split(args.shares)), prices=tuple(float(x) for x in split(args.prices)),
        weak_sources=split(args.weak_sources), methods=split(args.methods), quick=args.quick,
        progress=args.progress,
        command="python -m curate.experiments.cost_sweep " + " ".join(sys.argv[1:] if argv is None else argv))
    print(f"wrote {args.out}/results.json, results.md, pareto_kappa.png, pareto_accuracy.png "
          f"in {res['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
