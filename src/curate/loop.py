"""The curation loop: score -> evaluate -> stop? -> select -> label -> split -> fine-tune, round after round.

Google Research (2025), "Achieving 10,000x training data reduction with high-fidelity labels";
METHOD.md section 1. Round ``t`` uses model ``M_t`` (``M_0`` is the prompt-only scout, ``M_t`` for
``t >= 1`` the student fine-tuned on every fine-tune label of rounds ``< t``). Its steps:

1. ``score``: ``M_t`` gives every item p(positive) -> ``rounds/rTTT/scores.parquet``.
2. ``evaluate``: kappa of ``M_t`` against the experts on the accumulated evaluation set (the ceiling
   is the experts' pairwise kappa) and, where a gold column exists, against gold on the held-out
   test split -> ``rounds/rTTT/metrics.json``.
3. the stopping rule: ceiling reached, plateau, budget spent or the round limit.
4. ``select``: the query strategy picks up to ``budget`` unlabelled pool items.
5. ``label``: the oracle labels them blind, each annotation committed as it arrives.
6. ``split``: the new items (a boundary pair stays together) go to fine-tune or eval.
7. ``train``: ``M_{t+1}`` is fine-tuned and saved to ``rounds/r(T+1)/model``.

Each completed step is recorded in the database in the same transaction as its results, so a
killed run resumes with ``curate run`` at the first step not recorded.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.agreement import kappa_with_ci, model_expert_kappa, pairwise_kappa
from curate.config import ProjectConfig
from curate.embed import cached_embeddings, embed_texts
from curate.errors import CurateError
from curate.models.encoder import EncoderClassifier
from curate.models.scout import EmbeddingScout, build_label_vectors
from curate.oracle.base import WebOracle
from curate.oracle.simulated import SimulatedExperts, crowd_labels
from curate.progress import progress_callback
from curate.project import Project
from curate.select import make_strategy

STEP_CODES = {"embed": 7, "ceiling": 8, "split-test": 0, "score": 1, "evaluate": 2, "select": 3, "label": 4, "split": 5, "train": 6}
# Settings that may change between invocations of one run; any other change is refused.
MUTABLE = {("loop", "rounds"), ("loop", "patience"), ("loop", "min_delta"), ("loop", "total_budget"),
           ("loop", "bootstrap"), ("student", "threads"), ("oracle", "seconds_per_label"), ("oracle", "kind"),
           ("oracle", "assignment_timeout_s"), ("student", "device"), ("scout", "device"), ("scout", "concurrency"),
           ("scout", "timeout_s"), ("scout", "api_key_env"), ("scout", "endpoint_url")}


@dataclass
class RunResult:
    """What :func:`run_loop` did: per-round metrics and why it stopped (None if interrupted by the oracle)."""

    metrics: list[dict] = field(default_factory=list)
    stop_reason: str | None = None


def step_rng(seed: int, round_index: int, step: str) -> np.random.Generator:
    """The random generator of one step: a function of (seed, round, step) only, so resumes repeat it."""
    return np.random.default_rng([seed, round_index, STEP_CODES[step]])


def _flatten(config: ProjectConfig) -> dict[tuple[str, str], object]:
    out: dict[tuple[str, str], object] = {}
    for section, values in config.model_dump(mode="json").items():
        if isinstance(values, dict):
            out.update({(section, k): v for k, v in values.items()})
        else:  # a top-level setting such as ``database``
            out[(section, "")] = values
    return out


def check_settings(project: Project) -> None:
    """Refuse to continue a run whose defining settings changed since it started.

    Raises:
        CurateError: naming the first changed field, its old and new value.
    """
    stored = project.store.get_meta("settings")
    if stored is None:
        return
    from curate.config import validate_config

    old = _flatten(validate_config(stored, str(project.path / "curate.db")))
    new = _flatten(project.config)
    for key in sorted(set(old) | set(new)):
        if key not in MUTABLE and old.get(key) != new.get(key):
            raise CurateError(
                f"{project.path}: this run started with {key[0]}.{key[1]}={old.get(key)!r}, now {new.get(key)!r}; "
                "only rounds, patience, min_delta, total_budget, bootstrap, threads, devices and the endpoint's "
                "address may change mid-run "
                "(start a new project to change it)"
            )


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
                f"{project.path}: the simulated oracle answers from a gold column; pass --gold-field COLUMN "
                "(e.g. --gold-field label)"
            )
        t = self.config.task
        self.positive = t.positive
        self.labels = t.labels
        self.crowd = (
            crowd_labels(project.column(t.crowd_field), project.ids, t.labels, t.positive, seed=self.config.loop.seed)
            if t.crowd_field
            else None
        )

    # -- helpers ----------------------------------------------------------------------------
    def _timed_step(self, round_index: int, step: str, fn: Callable[[], tuple[dict, Callable]]) -> dict:
        """Run ``fn`` unless the step is recorded; ``fn`` returns (info, write(conn)) and the write
        plus the step record are committed in one transaction."""
        if self.store.step_done(round_index, step):
            rec = [r for r in self.store.step_records() if r["round"] == round_index and r["step"] == step][0]
            return rec["info"]
        start = time.perf_counter()
        info, write = fn()
        seconds = time.perf_counter() - start
        with self.store.transaction() as conn:
            write(conn)
            self.store.mark_step(conn, round_index, step, seconds, info)
        return info

    def embeddings(self) -> np.ndarray:
        """``(N, d)`` float16 unit embeddings of every item (cached in the project)."""
        s = self.config.student
        return cached_embeddings(
            self.project.path, self.project.ids, self.project.texts, model=self.config.selection.embedding_model,
            precision=s.precision, threads=s.threads, progress=self.progress,
        )

    def predicted_labels(self, proba: np.ndarray) -> np.ndarray:
        """``(N,)`` label strings: the positive label where p(positive) >= threshold, else the best other label."""
        pi = self.config.task.positive_index
        others = np.delete(np.arange(len(self.labels)), pi)
        best_other = others[np.argmax(proba[:, others], axis=1)]
        idx = np.where(proba[:, pi] >= self.config.loop.threshold, pi, best_other)
        return np.asarray(self.labels, dtype=object)[idx]

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

    # -- steps -------------------------------------------------------------------------------
    def split_test(self) -> None:
        """Hold out ``test_fraction`` of the items (gold runs only); never selected, used for test kappa."""
        def fn():
            lc = self.config.loop
            n = len(self.project.ids)
            if self.gold is None or lc.test_fraction == 0:
                return {"test_items": 0}, lambda conn: None
            rng = step_rng(lc.seed, 0, "split-test")
            test = rng.permutation(n)[: int(round(lc.test_fraction * n))]
            rows = [(self.project.ids[i], "test", 0) for i in sorted(test)]
            return {"test_items": len(rows)}, lambda conn: self.store.add_splits(conn, rows)

        self._timed_step(-1, "split-test", fn)

    def model_dir(self, round_index: int) -> Path:
        return self.project.round_dir(round_index) / "model"

    def score(self, t: int, emb: np.ndarray) -> np.ndarray:
        """Step 1: ``(N, K)`` probabilities of ``M_t`` for every item, cached in ``scores.parquet``."""
        path = self.project.round_dir(t) / "scores.parquet"
        if self.store.step_done(t, "score") and path.is_file():
            return self.stored_scores(t)

        def fn():
            if t == 0 and self.config.scout.kind == "embedding":
                scout = self._scout(emb)
                proba = scout.proba_from_embeddings(emb)
                info = {"model": "scout:embedding", "prior": scout.prior}
            elif t == 0:
                scorer = self._lm_scout()
                proba = scorer.predict_proba(self.project.texts, progress=self.progress)
                info = {"model": f"scout:{self.config.scout.kind}", **scorer.info}
            else:
                student = EncoderClassifier.load(self.model_dir(t), self.labels, self.config.student)
                proba = student.predict_proba(self.project.texts, progress=self.progress)
                info = {"model": str(self.model_dir(t))}
            cols = {"id": self.project.ids, **{f"p_{lab}": proba[:, j] for j, lab in enumerate(self.labels)}}
            tmp = path.with_suffix(".tmp.parquet")
            pq.write_table(pa.table(cols), tmp)
            os.replace(tmp, path)
            self._proba = proba
            return info, lambda conn: None

        if self.store.step_done(t, "score"):  # recorded but the file is gone: recompute without re-recording
            fn()
        else:
            self._timed_step(t, "score", fn)
        return self._proba

    def stored_scores(self, t: int) -> np.ndarray:
        """``(N, K)`` float32 probabilities of ``M_t`` as recorded by its ``score`` step."""
        table = pq.read_table(self.project.round_dir(t) / "scores.parquet")
        return np.stack([table.column(f"p_{lab}").to_numpy() for lab in self.labels], axis=1).astype(np.float32)

    def _lm_scout(self):
        """The prompted causal LM (``prompted-lm``) or OpenAI-compatible endpoint (``endpoint``) scout."""
        sc, task = self.config.scout, self.config.task
        if sc.kind == "prompted-lm":
            from curate.models.prompted_lm import PromptedLMScorer

            return PromptedLMScorer.from_config(self.labels, self.positive, task.prompt, sc)
        from curate.models.endpoint import EndpointScorer

        return EndpointScorer.from_config(self.labels, self.positive, task.prompt, sc)

    def _scout(self, emb: np.ndarray) -> EmbeddingScout:
        sc, task = self.config.scout, self.config.task

        def embed(texts):
            return embed_texts(texts, model=self.config.selection.embedding_model,
                               precision=self.config.student.precision, progress=False)

        vectors = build_label_vectors(
            self.labels, self.positive, task.prompt, negative_description=sc.negative_description,
            seed_examples=sc.seed_examples, embed=embed,
        )
        return EmbeddingScout(self.labels, self.positive, vectors, embed=embed, prior=sc.prior).calibrate(emb)

    def evaluate(self, t: int, proba: np.ndarray) -> dict:
        """Step 2: the metrics of ``M_t`` (kappa with 95 % bootstrap CIs), written to ``metrics.json``."""
        lc = self.config.loop

        def fn():
            rng = step_rng(lc.seed, t, "evaluate")
            pred = dict(zip(self.project.ids, self.predicted_labels(proba)))
            splits = self.store.splits()
            experts = self.expert_labels()
            eval_ids = sorted(i for i, s in splits.items() if s == "eval")
            ft_ids = sorted(i for i, s in splits.items() if s == "finetune")
            test_ids = sorted(i for i, s in splits.items() if s == "test")
            labelled = sorted({i for labels in experts.values() for i in labels})
            m: dict = {
                "round": t,
                "model": "scout" if t == 0 else f"student M_{t}",
                "items_labelled": len(labelled),
                "annotations": sum(len(v) for v in experts.values()),
                "finetune_items": len(ft_ids),
                "eval_items": len(eval_ids),
                "train_items_used": len(ft_ids),
                "positive_share_curated": (
                    float(self.vote_targets(labelled)[:, self.config.task.positive_index].mean()) if labelled else math.nan
                ),
                "predicted_positive_share": float(np.mean(proba[:, self.config.task.positive_index] >= lc.threshold)),
            }
            eval_experts = {a: {i: v[i] for i in eval_ids if i in v} for a, v in experts.items()}
            m["kappa_eval"] = model_expert_kappa(pred, eval_experts, rng=rng, n_boot=lc.bootstrap).to_dict()
            # Every earlier student on today's eval set (from its stored scores), for a fair plateau test.
            m["kappa_eval_by_model"] = {
                s: model_expert_kappa(
                    dict(zip(self.project.ids, self.predicted_labels(self.stored_scores(s)))), eval_experts,
                    rng=rng, n_boot=0,
                ).kappa
                for s in range(1, t)
            } | ({t: m["kappa_eval"]["kappa"]} if t >= 1 else {})
            ceiling = pairwise_kappa(experts)
            m["expert_expert_kappa"] = ceiling["mean"]
            m["expert_pairs_items"] = ceiling["n_items"]
            if self.gold is not None and test_ids:
                m["kappa_test"] = kappa_with_ci(
                    [pred[i] for i in test_ids], [self.gold[i] for i in test_ids], rng=rng, n_boot=lc.bootstrap
                ).to_dict()
                y = np.array([self.gold[i] == self.positive for i in test_ids])
                p = proba[[self.project.position[i] for i in test_ids], self.config.task.positive_index]
                m["auroc_test"] = _auroc(y, p)
            if self.crowd is not None:
                if self.gold is not None and test_ids:
                    ids = [i for i in test_ids if i in self.crowd]
                    m["crowd_gold_kappa_test"] = kappa_with_ci(
                        [self.crowd[i] for i in ids], [self.gold[i] for i in ids], rng=rng, n_boot=lc.bootstrap
                    ).to_dict()
                m["crowd_expert_kappa"] = model_expert_kappa(self.crowd, experts, rng=rng, n_boot=lc.bootstrap).to_dict()
            path = self.project.round_dir(t) / "metrics.json"
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(m, indent=2, default=_json_default))
            os.replace(tmp, path)
            return json.loads(json.dumps(m, default=_json_default)), lambda conn: None

        return self._timed_step(t, "evaluate", fn)

    def stop_reason(self, t: int, history: list[dict]) -> str | None:
        """Step 3, the stopping rule, checked after evaluating ``M_t``; None means go on."""
        lc = self.config.loop
        m = history[-1]
        k, ceiling = m["kappa_eval"]["kappa"], m["expert_expert_kappa"]
        if t >= 1 and np.isfinite(k) and np.isfinite(ceiling) and k >= ceiling:
            return f"ceiling reached: model-expert kappa {k:.3f} >= expert-expert kappa {ceiling:.3f}"
        # Plateau: none of the last `patience` students beats the best earlier one, all measured on the
        # current (largest) eval set, since the eval sets of earlier rounds were smaller and different.
        kappas = [v for _, v in sorted((int(s), v) for s, v in m.get("kappa_eval_by_model", {}).items())]
        if len(kappas) > lc.patience:
            before, recent = np.nanmax(kappas[: -lc.patience] + [-1.0]), np.nanmax(kappas[-lc.patience:] + [-1.0])
            if recent <= before + lc.min_delta:
                return (f"plateau: on the current eval set no student of the last {lc.patience} rounds beats "
                        f"{before:.3f} by more than {lc.min_delta}")
        if t >= lc.rounds:
            return f"round limit: {lc.rounds} rounds"
        if lc.total_budget is not None and m["items_labelled"] >= lc.total_budget:
            return f"budget spent: {m['items_labelled']} of {lc.total_budget} items labelled"
        return None

    def select(self, t: int, proba: np.ndarray, emb: np.ndarray) -> list[dict]:
        """Step 4: the query strategy chooses this round's items among unlabelled, non-test pool items."""
        lc, sc = self.config.loop, self.config.selection

        def fn():
            splits = self.store.splits()
            pool_pos = np.array([i for i, item in enumerate(self.project.ids) if splits.get(item) != "test"])
            done = {a["item_id"] for a in self.store.annotations()}
            for r in range(t):
                done |= {row["item_id"] for row in self.store.selection(r)}
            labelled = np.array([self.project.ids[i] in done for i in pool_pos], dtype=bool)
            budget = lc.budget
            if lc.total_budget is not None:
                budget = min(budget, max(lc.total_budget - len(done), 0))
            params = sc.model_dump(exclude={"strategy", "embedding_model"})
            strategy = make_strategy(sc.strategy, **params)
            scores = proba[pool_pos, self.config.task.positive_index].astype(np.float32)
            chosen = strategy.query(
                scores=scores, embeddings=emb[pool_pos], labelled=labelled, budget=budget,
                rng=step_rng(lc.seed, t, "select"), threshold=lc.threshold,
            )
            # A ceiling_share of the groups gets experts_per_item independent labels, the rest one.
            oc = self.config.oracle
            groups = np.unique(chosen.groups)
            rng = step_rng(lc.seed, t, "ceiling")
            double = set(rng.permutation(groups)[: int(round(oc.ceiling_share * len(groups)))].tolist())
            rows = [
                {"item_id": self.project.ids[pool_pos[j]], "position": k, "group_id": int(g),
                 "strategy": sc.strategy, "score": float(scores[j]),
                 "labels_needed": oc.experts_per_item if int(g) in double else 1}
                for k, (j, g) in enumerate(zip(chosen.indices, chosen.groups))
            ]
            info = {"strategy": sc.strategy, "selected": len(rows), **chosen.info}
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
        with progress_callback("labelling", total=missing, enabled=self.progress and missing > 0) as advance:
            for ann in oracle.annotate(needs, have, t):
                if delay:
                    time.sleep(delay)
                with self.store.transaction() as conn:
                    if self.store.add_annotation(conn, ann):
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

    def train(self, t: int) -> dict:
        """Step 7: fine-tune ``M_{t+1}`` on every fine-tune label so far; save it to ``rounds/r(t+1)/model``."""
        lc, st = self.config.loop, self.config.student

        def fn():
            ft_ids = sorted(i for i, s in self.store.splits().items() if s == "finetune")
            targets = self.vote_targets(ft_ids)
            keep = targets.sum(axis=1) > 0
            ft_ids = [i for i, k in zip(ft_ids, keep) if k]
            init = None if st.from_base or t == 0 else self.model_dir(t)
            student = EncoderClassifier(self.labels, st, init_from=init)
            texts = [self.project.texts[self.project.position[i]] for i in ft_ids]
            info = student.fit(texts, targets[keep], seed=lc.seed * 1000 + t, progress=self.progress)
            student.save(self.model_dir(t + 1))
            return info, lambda conn: None

        return self._timed_step(t, "train", fn)

    # -- the loop ------------------------------------------------------------------------------
    def make_oracle(self):
        oc = self.config.oracle
        if oc.kind == "web":
            return WebOracle()
        return SimulatedExperts(self.gold, self.labels, n_experts=oc.experts_per_item, target_kappa=oc.expert_kappa,
                                seed=self.config.loop.seed)

    def run(self) -> RunResult:
        """Run (or resume) rounds until the stopping rule says stop."""
        check_settings(self.project)
        with self.store.transaction() as conn:  # the latest settings (only mutable ones can differ)
            self.store.set_meta(conn, "settings", self.config.model_dump(mode="json"))
        self.split_test()
        start = time.perf_counter()
        emb = self.embeddings()
        if not self.store.step_done(-1, "embed"):
            with self.store.transaction() as conn:
                self.store.mark_step(conn, -1, "embed", time.perf_counter() - start, {"shape": list(emb.shape)})
        oracle = self.make_oracle()
        result = RunResult()
        t = 0
        while True:
            proba = self.score(t, emb)
            metrics = self.evaluate(t, proba)
            result.metrics.append(metrics)
            self.log(_summary_line(metrics))
            reason = self.stop_reason(t, result.metrics)
            if reason:
                result.stop_reason = reason
                with self.store.transaction() as conn:
                    self.store.set_meta(conn, "stop_reason", reason)
                self.log(f"stopped: {reason}")
                return result
            selection = self.select(t, proba, emb)
            if not selection:
                result.stop_reason = "pool exhausted: no unlabelled items left"
                self.log(f"stopped: {result.stop_reason}")
                return result
            missing = self.label(t, selection, oracle)
            if missing:
                self.log(f"round {t}: waiting for {missing} labels; run again once they are in")
                return result
            self.split(t, selection)
            self.train(t)
            t += 1


def _summary_line(m: dict) -> str:
    parts = [f"round {m['round']}: {m['items_labelled']} items labelled"]
    if np.isfinite(m["kappa_eval"]["kappa"]):
        parts.append(f"kappa vs experts (eval, {m['eval_items']} items) {m['kappa_eval']['kappa']:.3f}")
    if np.isfinite(m["expert_expert_kappa"]):
        parts.append(f"expert-expert {m['expert_expert_kappa']:.3f}")
    if "kappa_test" in m:
        k = m["kappa_test"]
        parts.append(f"kappa vs gold (test) {k['kappa']:.3f} [{k['low']:.3f}, {k['high']:.3f}]")
    return "; ".join(parts)


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else math.nan


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
