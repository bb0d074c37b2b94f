"""The curation loop: score -> evaluate -> stop? -> select -> label -> split -> fine-tune, round after round.

Google Research (2025), "Achieving 10,000x training data reduction with high-fidelity labels";
METHOD.md section 1. Round ``t`` uses model ``M_t`` (``M_0`` is the prompt-only scout, ``M_t`` for
``t >= 1`` the student fine-tuned on every fine-tune label of rounds ``< t``). Its steps:

1. ``score``: ``M_t`` gives every item p(positive) -> ``rounds/rTTT/scores.parquet``.
2. ``evaluate``: kappa of ``M_t`` against the experts on the accumulated evaluation set (the ceiling
   is the experts' pairwise kappa) and, where a gold column exists, against gold on the held-out
   test split -> ``rounds/rTTT/metrics.json`` (the figures: :mod:`curate.evaluation`).
3. the stopping rule (:mod:`curate.stopping`): ceiling reached, plateau, stable predictions (opt-in), the round
   limit or budget spent.
4. ``select``: the query strategy picks up to ``budget`` unlabelled pool items.
5. ``label``: the oracle labels them blind, each annotation committed as it arrives.
6. ``split``: the new items (a boundary pair stays together) go to fine-tune or eval.
7. ``train``: ``M_{t+1}`` is fine-tuned and saved to ``rounds/r(T+1)/model``.

Around the rounds: a ``weak`` stage (``student.weak_labels``; sequential SFT, Mallen & Belrose 2024) trains the
round-0 model on a weak label for every pool item before round 0, and every expert fine-tune starts from it; once
the loop stops, ``final`` trains a model on every expert label (evaluation share included) into ``rounds/final``
and estimates its kappa by cross-validation and on the test split. Each round *serves* the best model so far on the
current evaluation set (``loop.keep_best``), so a worse student is never handed back; the served model's scores drive
the next selection. Predicted labels use the round's decision threshold (``loop.threshold_rule``).

Each completed step is recorded in the database in the same transaction as its results, so a
killed run resumes with ``curate run`` at the first step not recorded.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow.parquet as pq

from curate import evaluation, stopping
from curate.agreement import model_expert_kappa, pairwise_kappa
from curate.config import OracleConfig, StudentConfig, settings_change_error, validate_config, with_legacy_defaults
from curate.embed import cached_embeddings, embed_texts
from curate.errors import CurateError
from curate.models.encoder import EncoderClassifier
from curate.models.scout import make_embedding_scout, make_lm_scout
from curate.models.student import load_student, make_student
from curate.oracle import crowd_labels, make_oracle
from curate.progress import progress_callback
from curate.project import Project, write_scores
from curate.runtime import pick_precision
from curate.select import Selection, make_strategy
from curate.select.base import pool_rows
from curate.validation import LabelRules

STEP_CODES = {"embed": 7, "ceiling": 8, "split-test": 0, "score": 1, "evaluate": 2, "select": 3, "label": 4, "split": 5,
              "train": 6, "weak": 9, "final": 10, "cv": 11, "self-training": 12, "final-self-trained": 13,
              "final-sequential": 14}
PRIOR_SAMPLE = 5000  # pool items whose scores place a cross-validation model's "prior" threshold


@dataclass
class RunResult:
    """What :func:`run_loop` did: per-round metrics and why it stopped (None if interrupted by the oracle)."""

    metrics: list[dict] = field(default_factory=list)
    stop_reason: str | None = None
    final: dict | None = None  # the final model's metrics (``rounds/final/metrics.json``), once trained


def step_rng(seed: int, round_index: int, step: str) -> np.random.Generator:
    """The random generator of one step: a function of (seed, round, step) only, so resumes repeat it."""
    return np.random.default_rng([seed, round_index, STEP_CODES[step]])


def check_settings(project: Project) -> None:
    """Refuse to continue a run whose defining settings changed since it started (only the settings declared
    mutable in :mod:`curate.config`, :data:`curate.config.MUTABLE`, may change).

    Raises:
        CurateError: naming the first changed field, its old and new value (:func:`curate.config.settings_change_error`).
    """
    stored = project.store.get_meta("settings")
    if stored is None:
        return
    # settings recorded before a setting existed lack it: they ran with its LEGACY_DEFAULTS value, as their
    # curate.toml (load_config) says
    error = settings_change_error(validate_config(with_legacy_defaults(stored), str(project.path / "curate.db")),
                                  project.config)
    if error:
        raise CurateError(f"{project.path}: {error}")


class Loop:
    """Sequences the steps of :mod:`curate.loop` for one project.

    Args:
        project: the opened project.
        progress: show progress bars.
        log: a function receiving one-line status messages.
    """

    def __init__(self, project: Project, *, progress: bool = True, log: Callable[[str], None] = print) -> None:
        self.project = project
        self.config = project.config
        self.store = project.store
        self.progress = progress
        self.log = log
        self.gold = project.gold()
        if self.config.oracle.kind == "simulated" and self.gold is None:
            raise CurateError(
                f"{project.path}: the simulated oracle answers from a gold column, and the project has "
                "none; pass --gold-field COLUMN (e.g. --gold-field label), or have people label with --oracle web"
            )
        t = self.config.task
        self.positive = t.positive
        self.labels = t.labels
        self.crowd = (
            crowd_labels(project.column(t.crowd_field), project.ids, t.labels, t.positive, seed=self.config.loop.seed)
            if t.crowd_field
            else None
        )
        self._emb: np.ndarray | None = None

    # -- helpers ----------------------------------------------------------------------------
    def _timed_step(self, round_index: int, step: str, fn: Callable[[], dict | tuple[dict, Callable]]) -> dict:
        """Run ``fn`` unless the step is recorded, and return the step's recorded info.

        ``fn`` returns the step's info (a JSON-able dict), or ``(info, write)`` when the step has rows to store:
        ``write(conn)`` and the step record are then committed in one transaction."""
        if self.store.step_done(round_index, step):
            rec = [r for r in self.store.step_records() if r["round"] == round_index and r["step"] == step][0]
            return rec["info"]
        start = time.perf_counter()
        result = fn()
        info, write = result if isinstance(result, tuple) else (result, None)
        seconds = time.perf_counter() - start
        with self.store.transaction() as conn:
            if write is not None:
                write(conn)
            self.store.mark_step(conn, round_index, step, seconds, info)
        return info

    def pin_precision(self) -> str:
        """Resolve ``student.precision = "auto"`` once per project and reuse it.

        The first run times bf16 against fp32 (:func:`curate.runtime.pick_precision`) and records the choice in the
        database; every later run, and every step of this one (embedding, scout, student), uses the recorded
        choice, so a resumed run never embeds or scores in another precision.

        Returns:
            ``"bf16"`` or ``"fp32"`` (the recorded choice, or the setting itself when it is not ``auto``).
        """
        s = self.config.student
        chosen = s.precision
        if chosen == "auto":
            chosen = self.store.get_meta("precision")
            if chosen is None:
                chosen = (pick_precision("auto", s.threads) if s.device == "cpu"
                          else EncoderClassifier._pick_precision("auto", s.device, s.threads))
                with self.store.transaction() as conn:
                    self.store.set_meta(conn, "precision", chosen)
            self.config = self.config.model_copy(update={"student": s.model_copy(update={"precision": chosen})})
        return chosen

    def embeddings(self) -> np.ndarray:
        """``(N, d)`` float16 unit embeddings of every item (cached in the project; on a Ray cluster when
        ``runtime.ray_address`` is set, :func:`curate.distributed.cached_embeddings`, the same files)."""
        if self._emb is None and self.config.runtime.ray_address:
            from curate.distributed import cached_embeddings as ray_cached_embeddings

            self._emb = ray_cached_embeddings(
                self.project.path, self.project.ids, self.project.text_sequence,
                model=self.config.selection.embedding_model,
                precision=self.pin_precision(), runtime=self.config.runtime,
                backend=self.config.selection.embedding_backend, progress=self.progress, log=self.log,
            )
        if self._emb is None:
            s = self.config.student
            self._emb = cached_embeddings(
                self.project.path, self.project.ids, self.project.text_sequence,
                model=self.config.selection.embedding_model,
                precision=s.precision, threads=s.threads, progress=self.progress,
                backend=self.config.selection.embedding_backend,
            )
        return self._emb

    @cached_property
    def selectable(self) -> np.ndarray:
        """``(P,)`` int64 positions of the items outside the test split (the pool the strategies choose from)."""
        splits = self.store.splits()
        return np.fromiter((i for i, item in enumerate(self.project.ids) if splits.get(item) != "test"), dtype=np.int64)

    def threshold(self, proba: np.ndarray) -> float:
        """The decision threshold on p(positive) for a model with ``(N, K)`` probabilities ``proba`` of every item
        (see :meth:`threshold_from_pool`; the pool is every item outside the test split)."""
        return self.threshold_from_pool(proba[self.selectable, self.config.task.positive_index])

    def threshold_from_pool(self, p_pool: np.ndarray) -> float:
        """The decision threshold given a model's ``(P,)`` p(positive) over pool items.

        ``loop.threshold_rule = "fixed"``: ``loop.threshold``. ``"prior"``: the ``1 - scout.prior`` quantile of
        ``p_pool``, so that the expected positive share ``scout.prior`` of the pool is predicted positive (METHOD.md
        section 5: kappa depends on the threshold, and a class-balanced model at 0.5 over-predicts a rare class).
        """
        lc = self.config.loop
        if lc.threshold_rule == "fixed" or p_pool.size == 0:
            return lc.threshold
        return float(np.quantile(np.asarray(p_pool, dtype=np.float64), 1.0 - self.config.scout.prior))

    def predicted_index(self, proba: np.ndarray, threshold: float) -> np.ndarray:
        """``(N,)`` int64 label columns: the positive label where p(positive) >= threshold, else the best other."""
        pi = self.config.task.positive_index
        others = np.delete(np.arange(len(self.labels)), pi)
        best_other = others[np.argmax(proba[:, others], axis=1)]
        return np.where(proba[:, pi] >= threshold, pi, best_other)

    def predicted_labels(self, proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """``(N,)`` label strings of :meth:`predicted_index` (default threshold: :meth:`threshold` of ``proba``)."""
        thr = self.threshold(proba) if threshold is None else threshold
        return np.asarray(self.labels, dtype=object)[self.predicted_index(proba, thr)]

    def expert_labels(self) -> dict[str, dict[str, str]]:
        """``{annotator: {item_id: label}}`` of every expert annotation so far."""
        out: dict[str, dict[str, str]] = {}
        for a in self.store.annotations():
            out.setdefault(a["annotator"], {})[a["item_id"]] = a["label"]
        return out

    def vote_targets(self, item_ids: list[str]) -> np.ndarray:
        """``(n, K)`` float32 distributions of the experts' votes per item (two disagreeing experts -> 0.5/0.5)."""
        votes = np.zeros((len(item_ids), len(self.labels)), dtype=np.float32)
        pos = {i: k for k, i in enumerate(item_ids)}
        col = {lab: j for j, lab in enumerate(self.labels)}
        for a in self.store.annotations():
            if a["item_id"] in pos:
                votes[pos[a["item_id"]], col[a["label"]]] += 1
        return votes / np.maximum(votes.sum(axis=1, keepdims=True), 1)

    def _positions(self, item_ids: list[str]) -> np.ndarray:
        return np.array([self.project.position[i] for i in item_ids], dtype=np.int64)

    def _student_settings(self, **update) -> StudentConfig:
        return self.config.student.model_copy(update=update) if update else self.config.student

    def _new_student(self, init_from: Path | None = None, settings=None):
        """A student to fit, from the base weights or ``init_from``; from the weak-stage model, the expert stage uses
        ``student.after_weak_learning_rate`` (a fresh optimizer: sequential SFT)."""
        settings = settings or self.config.student
        if init_from is not None and Path(init_from) == self.weak_dir:
            settings = settings.model_copy(update={"learning_rate": settings.after_weak_learning_rate})
        return make_student(self.labels, settings, texts=self.project.texts, embeddings=self.embeddings(),
                            init_from=init_from)

    def _load_student(self, folder: Path):
        return load_student(folder, self.labels, self.config.student, texts=self.project.texts,
                            embeddings=self.embeddings())

    def _pool_proba(self, folder: Path) -> np.ndarray:
        """``(N, K)`` float32 probabilities of every pool item from the student saved in ``folder``: on the Ray
        cluster of ``runtime.ray_address`` for a fine-tuned student (:func:`curate.distributed.student_scores`), else
        (no address, or the proxy student, a head on the embeddings) in this process."""
        if self.config.runtime.ray_address and self.config.student.kind == "finetune":
            from curate.distributed import student_scores

            return student_scores(self.project.path, self.project.ids, folder, self.labels,
                                  self._student_settings(precision=self.pin_precision()), self.config.runtime,
                                  progress=self.progress, log=self.log)
        return self._load_student(folder).predict_proba(None, progress=self.progress)

    # -- steps -------------------------------------------------------------------------------
    def split_test(self) -> None:
        """Hold out ``test_fraction`` of the items (gold runs only); never selected, used for test kappa.

        The split's seed is ``loop.split_seed`` (default ``loop.seed``), so runs of several seeds can share one.
        """
        def fn():
            lc = self.config.loop
            n = len(self.project.ids)
            if self.gold is None or lc.test_fraction == 0:
                return {"test_items": 0}
            rng = step_rng(lc.seed if lc.split_seed is None else lc.split_seed, 0, "split-test")
            test = rng.permutation(n)[: int(round(lc.test_fraction * n))]
            rows = [(self.project.ids[i], "test", 0) for i in sorted(test)]
            return {"test_items": len(rows)}, lambda conn: self.store.add_splits(conn, rows)

        self._timed_step(-1, "split-test", fn)

    def model_dir(self, round_index: int) -> Path:
        return self.project.round_dir(round_index) / "model"

    @property
    def weak_dir(self) -> Path:
        return self.project.path / "rounds" / "weak" / "model"

    def weak_targets(self) -> tuple[np.ndarray, np.ndarray, str]:
        """The weak stage's ``(n,)`` pool positions, ``(n, K)`` float32 targets and their source.

        ``crowd``: one crowd judgment per item (hard); ``scout``: the round-0 scout's probabilities (soft, free);
        ``gold``: the gold column (for benchmarks: the all-gold ceiling). Test items are never used. With
        ``student.weak_items`` set, a random subset of that many of the items with a weak label (drawn with
        ``step_rng(loop.seed, 0, "weak")``, sorted; nested: a smaller count takes a prefix of the same draw).
        """
        source = self.config.student.weak_labels
        positions = self.selectable
        if source != "scout":
            given = self.crowd if source == "crowd" else self.gold
            positions = positions[np.array([self.project.ids[i] in given for i in positions], dtype=bool)]
        n_items = self.config.student.weak_items
        if n_items is not None and n_items < positions.size:  # buy only student.weak_items of them, at random
            positions = np.sort(step_rng(self.config.loop.seed, 0, "weak").permutation(positions)[:n_items])
        if source == "scout":
            proba = self._scout_proba()
            return positions, proba[positions].astype(np.float32), source
        col = {lab: j for j, lab in enumerate(self.labels)}
        targets = np.zeros((positions.size, len(self.labels)), dtype=np.float32)
        targets[np.arange(positions.size), [col[given[self.project.ids[i]]] for i in positions]] = 1.0
        return positions, targets, source

    def weak_stage(self) -> dict | None:
        """Train the weak-stage model once (``student.weak_labels``) into ``rounds/weak/model``; None when off.

        One pass over the weak labels by default (``student.weak_presentations``). Its cost is recorded: weak labels
        times ``cost.crowd_label`` (crowd), ``cost.scout_label`` (scout, free by default) or ``cost.expert_label``
        (gold).
        """
        st = self.config.student
        if st.weak_labels == "none":
            return None

        def fn():
            positions, targets, source = self.weak_targets()
            n = positions.size
            if n == 0:
                raise CurateError(f"{self.project.path}: student.weak_labels = {source!r} but no pool item has one")
            presentations = st.weak_presentations or n
            settings = self._student_settings(presentations=presentations, min_epochs=1,
                                              max_epochs=max(1, math.ceil(presentations / n)))
            student = self._new_student(settings=settings)
            info = student.fit(positions, targets, seed=self.config.loop.seed * 1000 + 999, progress=self.progress)
            student.save(self.weak_dir)
            price = {"crowd": self.config.cost.crowd_label, "scout": self.config.cost.scout_label,
                     "gold": self.config.cost.expert_label}[source]
            self.log(f"weak stage: {n} {source} labels (${n * price:,.2f}), {presentations} presentations")
            return {"source": source, "weak_labels": int(n), "price_per_label": price, "cost": n * price,
                    "positive_share": float(targets[:, self.config.task.positive_index].mean()), "fit": info}

        return self._timed_step(-1, "weak", fn)

    def score(self, t: int) -> np.ndarray:
        """Step 1: ``(N, K)`` probabilities of ``M_t`` for every item, written to ``scores.parquet``.

        ``M_0`` is the weak-stage model when there is one, else the scout; ``M_t`` (``t >= 1``) the round's student.
        The step's result is the file: what it returns is :meth:`stored_scores` of round ``t``, read back the same way
        whether the step ran now or in an earlier (resumed) run.
        """
        path = self.project.round_dir(t) / "scores.parquet"
        if self.store.step_done(t, "score") and path.is_file():
            return self.stored_scores(t)

        def fn():
            if t == 0 and self.config.student.weak_labels != "none":
                proba = self._pool_proba(self.weak_dir)
                info = {"model": f"weak stage ({self.config.student.weak_labels} labels)"}
            elif t == 0 and self.config.scout.kind == "embedding":
                proba = self._scout_proba()
                info = {"model": "scout:embedding", "prior": self.config.scout.prior}
            elif t == 0:
                scorer = make_lm_scout(self.labels, self.positive, self.config.task.prompt, self.config.scout)
                proba = scorer.predict_proba(self.project.texts, progress=self.progress)
                info = {"model": f"scout:{self.config.scout.kind}", **scorer.info}
            else:
                proba = self._pool_proba(self.model_dir(t))
                info = {"model": str(self.model_dir(t))}
            tmp = path.with_suffix(".tmp.parquet")
            write_scores(tmp, self.project.id_column, proba, self.labels)  # in chunks
            os.replace(tmp, path)
            return info

        if self.store.step_done(t, "score"):  # recorded but the file is gone: recompute without re-recording
            fn()
        else:
            self._timed_step(t, "score", fn)
        return self.stored_scores(t)

    def stored_scores(self, t: int) -> np.ndarray:
        """``(N, K)`` float32 probabilities of ``M_t`` as recorded by its ``score`` step."""
        table = pq.read_table(self.project.round_dir(t) / "scores.parquet")
        return np.stack([table.column(f"p_{lab}").to_numpy() for lab in self.labels], axis=1).astype(np.float32)

    def _scout_proba(self) -> np.ndarray:
        """``(N, K)`` probabilities of the round-0 scout (embedding scout from the cached embeddings, else the LM)."""
        sc, prompt = self.config.scout, self.config.task.prompt
        if sc.kind != "embedding":
            return make_lm_scout(self.labels, self.positive, prompt, sc).predict_proba(self.project.texts,
                                                                                       progress=self.progress)

        def embed(texts):
            return embed_texts(texts, model=self.config.selection.embedding_model,
                               precision=self.config.student.precision, progress=False,
                               backend=self.config.selection.embedding_backend)

        emb = self.embeddings()
        scout = make_embedding_scout(self.labels, self.positive, prompt, sc, embed=embed)
        return scout.calibrate(emb[self.selectable]).proba_from_embeddings(emb)

    def scoring_backend(self, t: int) -> str:
        """What scored ``M_t`` (recorded in the round's metrics): the fine-tuned student's ``student.backend``
        (``torch``, ``onnx``, ``onnx-int8``); for a model on the embeddings (the embedding scout, the proxy student)
        ``embeddings:`` and ``selection.embedding_backend``; ``prompted-lm:torch`` or ``endpoint`` for an LM scout."""
        st = self.config.student
        if t == 0 and st.weak_labels == "none":
            kind = self.config.scout.kind
            if kind != "embedding":
                return "endpoint" if kind == "endpoint" else f"{kind}:torch"
        elif st.kind == "finetune":
            return st.backend
        return f"embeddings:{self.config.selection.embedding_backend}"

    def _model_kappas(self, t: int, eval_experts: dict[str, dict[str, str]], eval_ids: list[str]) -> dict[int, dict]:
        """Every model ``M_0 .. M_t`` on today's eval set (from stored scores): ``{s: {"kappa", "threshold",
        "one_class", "pred"}}``; ``one_class`` names the only label a model predicts over the pool, else None;
        ``pred`` maps each eval item to the model's label."""
        out = {}
        rows = self._positions(eval_ids)
        for s in range(t + 1):
            proba = self.stored_scores(s)
            thr = self.threshold(proba)
            seen = np.unique(self.predicted_index(proba[self.selectable], thr))
            one_class = self.labels[int(seen[0])] if seen.size == 1 else None
            pred = dict(zip(eval_ids, self.predicted_labels(proba[rows], thr)))
            out[s] = {"kappa": evaluation.eval_kappa(pred, eval_experts), "threshold": thr, "one_class": one_class,
                      "pred": pred}
        return out

    def _served(self, t: int, by_model: dict[int, dict], eval_experts: dict, rng: np.random.Generator) -> dict:
        """Which model this round serves (``loop.keep_best``): ``M_t`` unless an earlier model agrees with the experts
        better on today's eval set with paired-bootstrap probability ``>= loop.keep_best_confidence``, or ``M_t``
        predicts one class only; then the best such earlier model by kappa (the newest on ties)
        (:func:`curate.evaluation.served_model` with ``[loop]``)."""
        lc = self.config.loop
        return evaluation.served_model(t, by_model, eval_experts, rng, keep_best=lc.keep_best,
                                       confidence=lc.keep_best_confidence, n_boot=lc.bootstrap)

    def _prediction_kappa_previous(self, t: int, proba: np.ndarray, by_model: dict[int, dict]) -> float | None:
        """Cohen's kappa between the labels ``M_t`` and ``M_{t-1}`` predict for every pool item (outside the test
        split), each at its own round's threshold: the label-free stability signal of
        :func:`curate.stopping.predictions_stable`. None in round 0. ``proba``: ``(N, K)`` of ``M_t``."""
        if t == 0:
            return None
        pool = self.selectable
        now = self.predicted_index(proba[pool], by_model[t]["threshold"])
        before = self.predicted_index(self.stored_scores(t - 1)[pool], by_model[t - 1]["threshold"])
        return stopping.prediction_kappa(now, before)

    def evaluate(self, t: int, proba: np.ndarray) -> dict:
        """Step 2: the metrics of ``M_t`` and of the model served this round (kappa with 95 % bootstrap CIs), written
        to ``metrics.json``.

        The served model is ``M_t`` unless an earlier model (the round-0 model included) has a higher kappa on
        today's evaluation set and ``loop.keep_best`` is on; ties go to the newest.
        """
        lc = self.config.loop

        def fn():
            rng = step_rng(lc.seed, t, "evaluate")
            splits = self.store.splits()
            experts = self.expert_labels()
            eval_ids = sorted(i for i, s in splits.items() if s == "eval")
            ft_ids = sorted(i for i, s in splits.items() if s == "finetune")
            test_ids = sorted(i for i, s in splits.items() if s == "test")
            labelled = sorted({i for labels in experts.values() for i in labels})
            eval_experts = {a: {i: v[i] for i in eval_ids if i in v} for a, v in experts.items()}
            by_model = self._model_kappas(t, eval_experts, eval_ids)
            thr = by_model[t]["threshold"]
            pi = self.config.task.positive_index
            m: dict = {
                "round": t,
                "model": ("weak-stage model" if self.config.student.weak_labels != "none" else "scout") if t == 0
                else f"student M_{t}",
                "items_labelled": len(labelled),
                "annotations": sum(len(v) for v in experts.values()),
                "finetune_items": len(ft_ids),
                "eval_items": len(eval_ids),
                "train_items_used": len(ft_ids),
                "positive_share_curated": (
                    float(self.vote_targets(labelled)[:, pi].mean()) if labelled else math.nan
                ),
                "threshold": thr,
                "predicted_positive_share": float(np.mean(proba[self.selectable, pi] >= thr)),
                "one_class": by_model[t]["one_class"],
                "prediction_kappa_previous": self._prediction_kappa_previous(t, proba, by_model),
                "scoring_backend": self.scoring_backend(t),
            }
            pred = dict(zip(self.project.ids, self.predicted_labels(proba, thr)))
            m["kappa_eval"] = model_expert_kappa(pred, eval_experts, rng=rng, n_boot=lc.bootstrap).to_dict()
            m["kappa_eval_by_model"] = {s: v["kappa"] for s, v in by_model.items()}
            m["one_class_by_model"] = {s: v["one_class"] for s, v in by_model.items()}
            serving = self._served(t, by_model, eval_experts, rng)
            served = serving["round"]
            m["served_round"] = served
            m["p_earlier_better"] = serving["p_better"]
            ceiling = pairwise_kappa(experts)
            m["expert_expert_kappa"] = ceiling["mean"]
            m["expert_pairs_items"] = ceiling["n_items"]
            if self.gold is not None and test_ids:
                m.update(self._test_metrics(proba, thr, test_ids, rng))
                if served != t:
                    served_proba = self.stored_scores(served)
                    m["served"] = self._test_metrics(served_proba, by_model[served]["threshold"], test_ids, rng)
                else:
                    m["served"] = {k: m[k] for k in ("kappa_test", "auroc_test")}
            if self.crowd is not None:
                m.update(evaluation.crowd_metrics(self.crowd, self.gold, test_ids, experts, rng, n_boot=lc.bootstrap))
            _write_json(self.project.round_dir(t) / "metrics.json", m)
            return json.loads(json.dumps(m, default=_json_default))

        return self._timed_step(t, "evaluate", fn)

    def _test_metrics(self, proba: np.ndarray, thr: float, test_ids: list[str], rng: np.random.Generator) -> dict:
        """Kappa (95 % bootstrap CI) and AUROC of a model against gold on the test split
        (:func:`curate.evaluation.metrics_on_test`)."""
        pos = self._positions(test_ids)
        pred = self.predicted_labels(proba[pos], thr)
        y = np.array([self.gold[i] == self.positive for i in test_ids])
        return evaluation.metrics_on_test(pred, [self.gold[i] for i in test_ids], y,
                                          proba[pos, self.config.task.positive_index], rng,
                                          n_boot=self.config.loop.bootstrap)

    def stop_reason(self, t: int, history: list[dict]) -> str | None:
        """Step 3, the stopping rule (:func:`curate.stopping.stop_reason` with ``[loop]``), checked after evaluating
        ``M_t``; ``history`` is every round's metrics up to round ``t`` (its last). None means go on.

        Raises:
            ValueError: the last metrics are not round ``t``'s.
        """
        if not history or history[-1]["round"] != t:
            raise ValueError(f"the stopping rule of round {t} needs the metrics of rounds 0..{t}")
        return stopping.stop_reason(history, self.config.loop)

    def select(self, t: int, proba: np.ndarray, threshold: float) -> list[dict]:
        """Step 4: the query strategy chooses this round's items among unlabelled, non-test pool items.

        ``proba`` and ``threshold`` are the served model's. With nothing labelled yet, ``selection.cold_start``
        (when not "none") chooses instead of ``selection.strategy``."""
        lc, sc = self.config.loop, self.config.selection
        emb = self.embeddings()

        def fn():
            pool_pos = self.selectable
            done = {a["item_id"] for a in self.store.annotations()}
            for r in range(t):
                done |= {row["item_id"] for row in self.store.selection(r)}
            labelled = np.fromiter((self.project.ids[i] in done for i in pool_pos), dtype=bool, count=pool_pos.size)
            budget = lc.budget
            if lc.total_budget is not None:
                budget = min(budget, max(lc.total_budget - len(done), 0))
            cold = sc.cold_start != "none" and not done
            plan = [(sc.strategy, budget)]
            if cold:
                n_cold = budget if sc.cold_start_share >= 1 else int(round(sc.cold_start_share * budget))
                plan = [(sc.cold_start, n_cold), (sc.strategy, budget - n_cold)]
            name = "+".join(n for n, b in plan if b > 0) or sc.strategy
            pi = self.config.task.positive_index
            scores = proba[pool_pos, pi].astype(np.float32)
            votes = [a for a in self.store.annotations()]
            expert_positive = np.full(pool_pos.size, np.nan)
            if votes:
                ids = sorted({a["item_id"] for a in votes})
                share = self.vote_targets(ids)[:, pi]
                where = {self.project.ids[p]: j for j, p in enumerate(pool_pos)}
                for i, v in zip(ids, share):
                    if i in where:
                        expert_positive[where[i]] = v
            rng = step_rng(lc.seed, t, "select")
            picks, pick_groups, info = [], [], {}
            taken = labelled.copy()
            for part, (strategy_name, part_budget) in enumerate(plan):
                if part_budget <= 0:
                    continue
                chosen = make_strategy(strategy_name, **sc.params(strategy_name)).query(
                    scores=scores, embeddings=pool_rows(emb, pool_pos), labelled=taken, budget=part_budget, rng=rng,
                    threshold=threshold, expert_positive=expert_positive,
                )
                taken[chosen.indices] = True
                offset = (max(pick_groups) + 1) if pick_groups else 0
                picks += chosen.indices.tolist()
                pick_groups += (chosen.groups - chosen.groups.min() + offset).tolist() if chosen.groups.size else []
                info.update(chosen.info if len(plan) == 1 else {strategy_name: chosen.info})
            chosen = Selection(np.asarray(picks, dtype=np.int64), np.asarray(pick_groups, dtype=np.int64), info)
            # A ceiling_share of the groups gets experts_per_item independent labels, the rest one.
            oc = self.config.oracle
            groups = np.unique(chosen.groups)
            rng = step_rng(lc.seed, t, "ceiling")
            double = set(rng.permutation(groups)[: int(round(oc.ceiling_share * len(groups)))].tolist())
            rows = [
                {"item_id": self.project.ids[pool_pos[j]], "position": k, "group_id": int(g),
                 "strategy": name, "score": float(scores[j]),
                 "labels_needed": oc.experts_per_item if int(g) in double else 1}
                for k, (j, g) in enumerate(zip(chosen.indices, chosen.groups))
            ]
            info = {"strategy": name, "selected": len(rows), "threshold": threshold, **chosen.info}
            return info, lambda conn: self.store.add_selection(conn, t, rows)

        self._timed_step(t, "select", fn)
        return self.store.selection(t)

    def label(self, t: int, selection: list[dict], oracle) -> int:
        """Step 5: the oracle labels the selected items; every answer is stored as it arrives.

        Returns:
            The number of labels still missing (0 when every item has the labels it needs). An oracle of
            people answers outside the loop; the step is recorded as complete only when nothing is missing.
        """
        if self.store.step_done(t, "label"):
            return 0
        start = time.perf_counter()
        needs = [(row["item_id"], row["labels_needed"]) for row in selection]
        have: dict[str, set[str]] = {}
        for a in self.store.annotations():
            have.setdefault(a["item_id"], set()).add(a["annotator"])
        missing = sum(max(0, n - len(have.get(i, ()))) for i, n in needs)
        delay = self.config.oracle.seconds_per_label
        # The rules every label obeys, whoever brings it (the labelling app and `curate import` too). Simulated
        # experts are not accounts: no registration. An answer for an item that meanwhile got all its labels
        # (people labelling it in the app) is dropped; any other broken rule is an error of the oracle.
        rules = LabelRules(self.config.task.labels, self.project.position, registered=False)
        # the web oracle's labels come from people in the app, not from this process: no progress to show here
        show = self.progress and missing > 0 and self.config.oracle.kind != "web"
        with progress_callback("labelling", total=missing, enabled=show, unit="labels") as advance:
            for ann in oracle.annotate(needs, have, t):
                if delay:
                    time.sleep(delay)
                with self.store.exclusive_transaction() as conn:
                    rejection = rules.check(conn, ann)
                    if rejection is not None and rejection.rule != "need":
                        raise CurateError(f"round {t}: the {type(oracle).__name__} oracle's label of item "
                                          f"{ann.item_id!r} by {ann.annotator!r} is refused: {rejection}")
                    if rejection is None and self.store.add_annotation(conn, ann):
                        have.setdefault(ann.item_id, set()).add(ann.annotator)
                advance(1)
        # Recount and record completion under the write lock, so an expert's undo in the web app cannot
        # slip between the count and the record.
        with self.store.exclusive_transaction() as conn:
            counts = self.store.annotation_counts(conn, [i for i, _ in needs])
            missing = sum(max(0, n - counts.get(i, 0)) for i, n in needs)
            if missing == 0:
                self.store.mark_step(conn, t, "label", time.perf_counter() - start,
                                     {"labels": sum(counts.values())})
        return missing

    def split(self, t: int, selection: list[dict]) -> None:
        """Step 6: new items go to fine-tune or eval by group (both items of a pair on one side)."""
        lc = self.config.loop

        def fn():
            rng = step_rng(lc.seed, t, "split")
            groups = sorted({row["group_id"] for row in selection})
            order = rng.permutation(len(groups))
            n_eval = int(round(lc.eval_fraction * len(groups)))
            eval_groups = {groups[k] for k in order[:n_eval]}
            rows = [(row["item_id"], "eval" if row["group_id"] in eval_groups else "finetune", t) for row in selection]
            info = {"finetune": sum(s == "finetune" for _, s, _ in rows), "eval": sum(s == "eval" for _, s, _ in rows)}
            return info, lambda conn: self.store.add_splits(conn, rows)

        self._timed_step(t, "split", fn)

    def _init_for(self, t: int) -> Path | None:
        """Where round ``t``'s fine-tune starts: the weak-stage model, the base weights (None) or ``M_t``."""
        if self.config.student.weak_labels != "none":
            return self.weak_dir
        return None if self.config.student.from_base or t == 0 else self.model_dir(t)

    def train(self, t: int) -> dict:
        """Step 7: fine-tune ``M_{t+1}`` on every fine-tune label so far; save it to ``rounds/r(t+1)/model``."""
        lc = self.config.loop

        def fn():
            ft_ids = sorted(i for i, s in self.store.splits().items() if s == "finetune")
            targets = self.vote_targets(ft_ids)
            keep = targets.sum(axis=1) > 0
            ft_ids = [i for i, k in zip(ft_ids, keep) if k]
            student = self._new_student(init_from=self._init_for(t))
            info = student.fit(self._positions(ft_ids), targets[keep], seed=lc.seed * 1000 + t, progress=self.progress)
            student.save(self.model_dir(t + 1))
            return info

        return self._timed_step(t, "train", fn)

    @property
    def final_dir(self) -> Path:
        return self.project.path / "rounds" / "final"

    def final(self, t: int) -> dict | None:
        """Once the loop stops: train a model on every expert label (fine-tune and evaluation shares) into
        ``rounds/final/model`` and estimate its agreement honestly.

        - on the test split against gold (when there is one): kappa with a 95 % bootstrap interval and AUROC;
        - by ``k``-fold cross-validation over the labelled groups (a boundary pair stays in one fold): each fold's
          model, trained on the other folds like the final model, labels the held-out items; the pooled predictions
          against every expert label give the model-expert kappa (95 % bootstrap CI over items). A fold model's
          ``prior`` threshold comes from its scores on a fixed sample of ``PRIOR_SAMPLE`` pool items.

        The recipe is :meth:`fit_final_recipe`'s; a mixed final model with a test split is compared with the
        sequential recipe on the same labels (its test figures kept as ``sequential``).

        Returns:
            The metrics written to ``rounds/final/metrics.json``, or None when ``loop.final_model`` is off or nothing
            is labelled.
        """
        lc = self.config.loop
        if not lc.final_model:
            return None
        splits = self.store.splits()
        experts = self.expert_labels()
        labelled = sorted({i for v in experts.values() for i in v if splits.get(i) in ("finetune", "eval")})
        if not labelled:
            return None

        def fn():
            rng = step_rng(lc.seed, t, "final")
            targets = self.vote_targets(labelled)
            student, fit = self.fit_final_recipe(labelled, targets, seed=lc.seed * 1000 + 998, progress=self.progress)
            student.save(self.final_dir / "model")
            pi = self.config.task.positive_index
            sample = np.sort(step_rng(lc.seed, t, "cv").permutation(self.selectable)[:PRIOR_SAMPLE])
            test_ids = sorted(i for i, s in splits.items() if s == "test")

            def measured(model, rng: np.random.Generator) -> dict:  # threshold and test-split figures (with gold)
                thr = self.threshold_from_pool(model.predict_proba(sample, progress=False)[:, pi])
                out: dict = {"threshold": thr}
                if self.gold is not None and test_ids:
                    proba = np.zeros((len(self.project.ids), len(self.labels)), dtype=np.float32)
                    proba[self._positions(test_ids)] = model.predict_proba(self._positions(test_ids), progress=False)
                    out.update(self._test_metrics(proba, thr, test_ids, rng))
                return out

            model = "final (every expert label)" if "mixed" not in fit else \
                f"final (every expert label, mixed with {fit['mixed']['weak_labels']} weak labels)"
            m: dict = {"model": model, "round": t, "items": len(labelled), "fit": fit, **measured(student, rng)}
            if "mixed" in fit and "kappa_test" in m:  # the sequential recipe on the same labels, for comparison
                seq, seq_fit = self.fit_final_recipe(labelled, targets, seed=lc.seed * 1000 + 998,
                                                     progress=self.progress, recipe="sequential")
                m["sequential"] = {**measured(seq, step_rng(lc.seed, t, "final-sequential")), "fit": seq_fit}
            if lc.final_self_training and self.config.student.kind == "finetune":
                teacher = {k: m.pop(k) for k in ("threshold", "fit", "kappa_test", "auroc_test") if k in m}
                student, info = self.self_train(student, labelled, targets)
                student.save(self.final_dir / "model")
                m.update(model="final (every expert label, self-trained)", fit=info.pop("fit"), teacher=teacher,
                         self_training=info, **measured(student, step_rng(lc.seed, t, "final-self-trained")))
            elif lc.final_self_training:
                self.log("self-training skipped: it needs a fine-tuned student (student.kind = \"finetune\")")
            folds = lc.final_cv_folds if lc.final_cv_folds is not None else (0 if test_ids else 5)
            if folds >= 2:
                m["cv"] = self._cross_validate(labelled, targets, folds, sample, t, experts)
                if "teacher" in m:  # each fold would need its own pass over the pool
                    m["cv"]["recipe"] = "expert labels only (without self-training)"
            _write_json(self.final_dir / "metrics.json", m)
            summary = f"final model: {len(labelled)} expert-labelled items"
            if "kappa_test" in m:
                summary += f"; kappa vs gold (test) {m['kappa_test']['kappa']:.3f}"
                if "kappa_test" in m.get("teacher", {}):
                    summary += f" self-trained, {m['teacher']['kappa_test']['kappa']:.3f} before"
                if "kappa_test" in m.get("sequential", {}):
                    summary += f" mixed, {m['sequential']['kappa_test']['kappa']:.3f} by the sequential recipe"
            if "cv" in m:
                summary += f"; {folds}-fold cross-validated kappa vs experts {m['cv']['kappa']['kappa']:.3f}"
            self.log(summary)
            return json.loads(json.dumps(m, default=_json_default))

        return self._timed_step(t, "final", fn)

    def fit_final_recipe(self, labelled: list[str], targets: np.ndarray, *, seed: int, progress: bool,
                         recipe: str | None = None) -> tuple[object, dict]:
        """Train the final model's recipe on the expert-labelled items ``labelled`` with their ``(n, K)`` vote
        ``targets`` (the final model, and each cross-validation fold).

        Without a weak stage: from the base weights. With one (``student.weak_labels``), ``loop.final_recipe``:
        ``"sequential"`` starts from the weak-stage model at ``student.after_weak_learning_rate`` (sequential SFT,
        Mallen & Belrose 2024); ``"mixed"`` trains once from the base weights over one set, every weak label of
        :meth:`weak_targets` with the experts' votes replacing it on the items they labelled, each expert item
        presented ``loop.final_expert_weight`` times, in one pass (experts and crowd in one training set, as in
        learning from crowds with gold-standard items upweighted; no stage can overwrite the other). ``recipe``
        overrides ``loop.final_recipe``.

        Returns:
            The fitted student and its fit information (with ``"mixed": {"weak_labels", "expert_items",
            "expert_weight"}`` for the mixed recipe).
        """
        lc, st = self.config.loop, self.config.student
        lab = self._positions(labelled)
        if st.weak_labels == "none" or (recipe or lc.final_recipe) == "sequential":
            init = self.weak_dir if st.weak_labels != "none" else None
            student = self._new_student(init_from=init)
            return student, student.fit(lab, targets, seed=seed, progress=progress)
        weak_pos, weak_tg, _ = self.weak_targets()
        keep = ~np.isin(weak_pos, lab)
        w = lc.final_expert_weight
        positions = np.concatenate([weak_pos[keep]] + [lab] * w)
        tg = np.concatenate([weak_tg[keep]] + [np.asarray(targets, dtype=np.float32)] * w)
        n = int(positions.size)
        student = self._new_student(settings=self._student_settings(presentations=n, min_epochs=1, max_epochs=1))
        fit = student.fit(positions, tg, seed=seed, progress=progress)
        fit["mixed"] = {"weak_labels": int(keep.sum()), "expert_items": int(lab.size), "expert_weight": w}
        return student, fit

    def self_train(self, teacher, labelled: list[str], targets: np.ndarray) -> tuple[object, dict]:
        """Self-training of the final model (``loop.final_self_training``; Du et al. 2021, "Self-training Improves
        Pre-training for Natural Language Understanding"; Furlanello et al. 2018, "Born-Again Neural Networks").

        ``teacher`` labels up to ``loop.self_training_items`` pool items outside the test split (soft probabilities;
        the ``len(labelled)`` expert-labelled items keep their ``(n, K)`` vote ``targets``); a new student learns them
        in one pass from the base weights, then the expert labels alone at ``student.after_weak_learning_rate`` (a
        fresh optimizer: sequential SFT, as after a weak stage). Free: no label is bought.

        Returns:
            The self-trained student and ``{"pool_items", "teacher_positive_share", "pseudo_fit", "fit"}``.
        """
        lc, st = self.config.loop, self.config.student
        lab = self._positions(labelled)
        others = np.setdiff1d(self.selectable, lab)
        take = max(0, min(others.size, lc.self_training_items - lab.size))
        pseudo = np.sort(step_rng(lc.seed, 0, "self-training").permutation(others)[:take])
        self.log(f"self-training: the final model labels {pseudo.size} pool items")
        soft = teacher.predict_proba(pseudo, progress=self.progress).astype(np.float32) if pseudo.size else \
            np.zeros((0, len(self.labels)), dtype=np.float32)
        positions, tg = np.concatenate([pseudo, lab]), np.concatenate([soft, targets.astype(np.float32)])
        n = int(positions.size)
        first = self._new_student(settings=self._student_settings(presentations=n, min_epochs=1, max_epochs=1))
        pseudo_fit = first.fit(positions, tg, seed=lc.seed * 1000 + 997, progress=self.progress)
        stage = self.final_dir / "self-training"
        first.save(stage / "model")
        second = self._new_student(init_from=stage / "model",
                                   settings=self._student_settings(learning_rate=st.after_weak_learning_rate))
        fit = second.fit(lab, targets, seed=lc.seed * 1000 + 998, progress=self.progress)
        shutil.rmtree(stage, ignore_errors=True)
        pi = self.config.task.positive_index
        return second, {"pool_items": int(pseudo.size), "expert_items": int(lab.size),
                        "teacher_positive_share": float(soft[:, pi].mean()) if soft.size else None,
                        "pseudo_fit": pseudo_fit, "fit": fit}

    def _cross_validate(self, labelled: list[str], targets: np.ndarray, folds: int, sample: np.ndarray, t: int,
                        experts: dict[str, dict[str, str]]) -> dict:
        """``folds``-fold cross-validated model-expert kappa of the final recipe (see :meth:`final`)."""
        lc = self.config.loop
        group_of: dict[str, tuple[int, int]] = {}
        for r in range(t + 1):
            for row in self.store.selection(r):
                group_of[row["item_id"]] = (r, row["group_id"])
        groups = sorted({group_of.get(i, (-1, k)) for k, i in enumerate(labelled)})
        order = step_rng(lc.seed, t, "cv").permutation(len(groups))
        fold_of_group = {groups[g]: k % folds for k, g in enumerate(order)}
        fold = np.array([fold_of_group[group_of.get(i, (-1, k))] for k, i in enumerate(labelled)])
        pred: dict[str, str] = {}
        pi = self.config.task.positive_index
        for k in range(folds):
            train, held = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
            if train.size == 0 or held.size == 0:
                continue
            student, _ = self.fit_final_recipe([labelled[j] for j in train], targets[train],
                                               seed=lc.seed * 1000 + 900 + k, progress=False)
            thr = self.threshold_from_pool(student.predict_proba(sample, progress=False)[:, pi])
            proba = student.predict_proba(self._positions([labelled[j] for j in held]), progress=False)
            pred.update(zip([labelled[j] for j in held], self.predicted_labels(proba, thr)))
        kappa = model_expert_kappa(pred, experts, rng=step_rng(lc.seed, t, "cv"), n_boot=lc.bootstrap).to_dict()
        return {"folds": folds, "items": len(pred), "kappa": kappa}

    def waiting_lines(self, t: int, selection: list[dict], missing: int) -> list[str]:
        """What a paused round tells the user (:func:`waiting_message`, with the annotators who can sign in now
        when the oracle is the labelling app)."""
        signable, registered = None, 0
        if self.config.oracle.kind == "web":
            now = time.time()
            with self.store.connection() as conn:
                rows = self.store.list_annotators(conn)
            registered = len(rows)
            signable = [a["name"] for a in rows
                        if a["revoked_at"] is None and (a["expires_at"] is None or a["expires_at"] > now)]
        return waiting_message(t, [row["labels_needed"] for row in selection], missing, self.config.oracle,
                               self.project.path, signable, registered=registered)

    # -- the loop ------------------------------------------------------------------------------
    def make_oracle(self):
        """The oracle of ``[oracle]`` (:func:`curate.oracle.make_oracle`)."""
        return make_oracle(self.config.oracle, self.gold, self.labels, seed=self.config.loop.seed)

    def run(self) -> RunResult:
        """Run (or resume) rounds until the stopping rule says stop, then train the final model."""
        check_settings(self.project)
        with self.store.transaction() as conn:  # the latest settings (only mutable ones can differ)
            self.store.set_meta(conn, "settings", self.config.model_dump(mode="json"))
        self.pin_precision()
        self.split_test()
        start = time.perf_counter()
        emb = self.embeddings()
        if not self.store.step_done(-1, "embed"):
            with self.store.transaction() as conn:
                self.store.mark_step(conn, -1, "embed", time.perf_counter() - start,
                                     {"shape": list(emb.shape), "precision": self.config.student.precision,
                                      "backend": self.config.selection.embedding_backend})
        self.weak_stage()
        oracle = self.make_oracle()
        result = RunResult()
        t = 0
        while True:
            proba = self.score(t)
            metrics = self.evaluate(t, proba)
            result.metrics.append(metrics)
            self.log(_summary_line(metrics))
            if metrics.get("one_class"):
                self.log(f"round {t}: warning: the model predicts '{metrics['one_class']}' for every pool item "
                         "(too few labels of the other class, or a threshold that fits no item)")
            reason = self.stop_reason(t, result.metrics)
            if reason:
                result.stop_reason = reason
                with self.store.transaction() as conn:
                    self.store.set_meta(conn, "stop_reason", reason)
                self.log(f"stopped: {reason}")
                result.final = self.final(t)
                return result
            served = metrics.get("served_round", t)
            if served != t:
                self.log(f"round {t}: serving M_{served}, better than M_{t} on the evaluation set")
                proba = self.stored_scores(served)
            selection = self.select(t, proba, self.threshold(proba))
            if not selection:
                result.stop_reason = "pool exhausted: no unlabelled items left"
                self.log(f"stopped: {result.stop_reason}")
                result.final = self.final(t)
                return result
            missing = self.label(t, selection, oracle)
            if missing:
                for line in self.waiting_lines(t, selection, missing):
                    self.log(line)
                return result
            self.split(t, selection)
            self.train(t)
            t += 1


def _write_json(path: Path, data: dict) -> None:
    """Write strict JSON atomically (NaN and infinities become null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_strict(data), indent=2, default=_json_default, allow_nan=False))
    os.replace(tmp, path)


def _strict(obj):
    if isinstance(obj, dict):
        return {str(k): _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def waiting_message(t: int, needs: list[int], missing: int, oracle: OracleConfig, project: Path,
                    annotators: list[str] | None, *, registered: int = 0) -> list[str]:
    """The lines a round prints when it pauses for labels: how many, why (items x experts each), how to give them.

    Args:
        t: the round.
        needs: each selected item's ``labels_needed`` (``oracle.experts_per_item`` on the ``oracle.ceiling_share``
            sample that measures the expert-expert ceiling, 1 elsewhere).
        missing: the labels still missing (``needs`` less the labels already given).
        oracle: the ``[oracle]`` settings.
        project: the project folder, as the user named it (quoted in the commands shown).
        annotators: the names that can sign in to ``curate serve`` now (not revoked, not expired), or None when the
            oracle is not the labelling app.
        registered: how many annotators are registered, revoked and expired ones included.

    Returns:
        One-line messages; the last is a warning when no annotator (or fewer than an item needs) can sign in.
    """
    by_need = sorted(Counter(needs).items(), reverse=True)
    total = sum(needs)
    parts = [f"{n} item{'s' if n != 1 else ''} x {k} expert{'s' if k != 1 else ''} each" for k, n in by_need]
    how_many = f"{missing} labels" if missing == total else f"{missing} more labels ({total} in all)"
    line = f"round {t}: waiting for {how_many}: {' and '.join(parts)}"
    k = oracle.experts_per_item
    if k > 1:
        share = "" if oracle.ceiling_share >= 1 else (f" on a {oracle.ceiling_share:.0%} sample of the items "
                                                      "(oracle.ceiling_share), one label elsewhere")
        line += (f" (oracle.experts_per_item = {k}{share}: {k} different experts per item measure the experts' own "
                 f"kappa, the ceiling; for one label per item set it to 1 with `--experts 1` on a project's first "
                 f"`curate run`)")
    else:
        line += (" (oracle.experts_per_item = 1: no item gets two labels, so the experts' own kappa, the ceiling, is "
                 "not measured)")
    if annotators is None:
        return [line]
    who = ", ".join(annotators) if annotators else "nobody"
    lines = [line, f"round {t}: label them in the app: `curate serve {project}`, where each expert signs in with their "
                   f"token (can sign in now: {who}), or bring labels from a file with `curate import {project} FILE "
                   f"--round {t}`"]
    n, need = len(annotators), max(needs, default=1)
    add = f"`curate annotators add {project} NAME` (it prints their sign-in token once)"
    if n == 0:
        why = ("no annotator is registered yet" if registered == 0 else
               "the only registered annotator's token is revoked or expired" if registered == 1 else
               f"the tokens of all {registered} registered annotators are revoked or expired")
        lines.append(f"warning: {why}, so nobody can label in the app: add each expert with {add}"
                     + (f"; an item needs {need} different experts, so add at least {need}" if need > 1 else ""))
    elif n < need:
        lines.append(f"warning: only {n} annotator{' can' if n == 1 else 's can'} sign in but an item needs {need} "
                     f"different experts: add {need - n} more with {add}")
    return lines


def _summary_line(m: dict) -> str:
    parts = [f"round {m['round']}: {m['items_labelled']} items labelled"]
    if np.isfinite(m["kappa_eval"]["kappa"]):
        parts.append(f"kappa vs experts (eval, {m['eval_items']} items) {m['kappa_eval']['kappa']:.3f}")
    if np.isfinite(m["expert_expert_kappa"]):
        parts.append(f"expert-expert {m['expert_expert_kappa']:.3f}")
    if "kappa_test" in m:
        k = m["kappa_test"]
        parts.append(f"kappa vs gold (test) {k['kappa']:.3f} [{k['low']:.3f}, {k['high']:.3f}]")
    served = m.get("served_round", m["round"])
    if served != m["round"]:
        parts.append(f"served: M_{served}" + (f" (kappa vs gold {m['served']['kappa_test']['kappa']:.3f})"
                                               if "served" in m else ""))
    return "; ".join(parts)


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON-serialisable: {type(x)}")


def run_loop(project_path: Path, *, progress: bool = True, log: Callable[[str], None] = print) -> RunResult:
    """Run or resume the curation loop of the project at ``project_path``.

    Raises:
        CurateError: invalid project, settings changed mid-run, or the oracle cannot answer.
    """
    return Loop(Project.open(project_path), progress=progress, log=log).run()
