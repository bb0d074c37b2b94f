"""Stopping rules: pure functions over the round history, each returning why to stop or None.

The history is the list of per-round metrics dicts that :meth:`curate.loop.Loop.evaluate` records (oldest first,
the round just evaluated last; ``rounds/rTTT/metrics.json`` holds the same dicts). A rule reads only the keys it names
and never touches a model, the database or the disk, so each can be tested on a constructed history
(``tests/unit/test_stopping.py``). :func:`stop_reason` applies them in the loop's order. The layout follows
small-text's ``stopping_criteria`` (Schröder et al. 2023), one criterion per rule, as functions rather than stateful
objects: the loop's history already holds every state a rule needs, so a resumed run decides exactly as an
uninterrupted one.

Expert-based rules: the ceiling (model-expert kappa reaches the experts' own), the plateau (no recent student beats an
earlier one on the current evaluation set). Label-free: stabilising predictions (Bloodgood & Vijay-Shanker 2009).
Limits: the round limit and the label budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from curate.agreement import cohen_kappa
from curate.config import LoopConfig

History = Sequence[Mapping]
"""Per-round metrics dicts, oldest first; the last is the round just evaluated."""


def _finite(x) -> bool:
    """True for a finite number (None and NaN, as a resumed run may read them back, are not)."""
    return x is not None and bool(np.isfinite(x))


def ceiling_reached(history: History, *, enabled: bool = True) -> str | None:
    """Stop once a student agrees with the experts as well as they agree with each other.

    Reads the last round's ``round``, ``kappa_eval["kappa"]`` (model-expert kappa on the evaluation set) and
    ``expert_expert_kappa`` (the experts' mean pairwise kappa, the ceiling). Round 0 (the scout or weak-stage model)
    never stops the loop this way; an undefined (NaN or None) kappa never reaches the ceiling.

    Args:
        history: the rounds so far (non-empty).
        enabled: ``loop.stop_at_ceiling``; False: never stop here.

    Returns:
        ``"ceiling reached: model-expert kappa K >= expert-expert kappa C"`` or None.

    Raises:
        IndexError: ``history`` is empty.
    """
    m = history[-1]
    k, ceiling = m["kappa_eval"]["kappa"], m["expert_expert_kappa"]
    if enabled and m["round"] >= 1 and _finite(k) and _finite(ceiling) and k >= ceiling:
        return f"ceiling reached: model-expert kappa {k:.3f} >= expert-expert kappa {ceiling:.3f}"
    return None


def plateau(history: History, *, patience: int, min_delta: float) -> str | None:
    """Stop when none of the last ``patience`` students beats the best earlier student by more than ``min_delta``.

    Every model is measured on the *current* evaluation set (the last round's ``kappa_eval_by_model``, ``{round:
    kappa}``), since the evaluation sets of earlier rounds were smaller and different. Round 0 (the scout or
    weak-stage model) is not a student and is left out, and so is every student that predicts one class for every
    pool item (``one_class_by_model``, ``{round: label or None}``): such a student says nothing about whether more
    labels help. The keys of both maps may be ints or strings (JSON). NaN kappas are ignored; with no finite kappa on
    a side that side counts as -1.

    Args:
        history: the rounds so far (non-empty).
        patience: ``loop.patience`` (>= 1), the students that must fail to improve.
        min_delta: ``loop.min_delta`` (>= 0), the improvement that counts.

    Returns:
        ``"plateau: on the current eval set no student of the last P rounds beats B by more than D"`` or None
        (also while there are at most ``patience`` students to compare).

    Raises:
        IndexError: ``history`` is empty.
    """
    m = history[-1]
    one_class = m.get("one_class_by_model", {})
    kappas = [v for s, v in sorted((int(s), v) for s, v in m.get("kappa_eval_by_model", {}).items())
              if s >= 1 and not one_class.get(s, one_class.get(str(s)))]
    if len(kappas) > patience:
        before, recent = np.nanmax(kappas[:-patience] + [-1.0]), np.nanmax(kappas[-patience:] + [-1.0])
        if recent <= before + min_delta:
            return (f"plateau: on the current eval set no student of the last {patience} rounds beats "
                    f"{before:.3f} by more than {min_delta}")
    return None


def predictions_stable(history: History, *, min_kappa: float, window: int) -> str | None:
    """Stop once the model's predictions have stopped changing: a label-free rule.

    Bloodgood & Vijay-Shanker (2009), "A method for stopping active learning based on stabilizing predictions and
    the need for user-adjustable stopping" (CoNLL): Cohen's kappa between the labels that successive models predict
    on a fixed, unlabelled stop set; stop once its mean over the last ``window`` rounds reaches ``min_kappa`` (they use
    3 and 0.99). Here the stop set is the pool outside the test split, and each round records the kappa between its
    model's predictions and the previous round's as ``prediction_kappa_previous`` (None in round 0). small-text's
    ``KappaAverage`` implements the same idea (it compares the mean change of successive kappas with ``1 - kappa``).

    A round whose model predicts one class for every pool item (``one_class``) breaks the window, as two such rounds
    agree perfectly without having learnt anything; so does a round without the value (round 0, or a round evaluated
    before the value was recorded).

    Args:
        history: the rounds so far (non-empty).
        min_kappa: ``loop.stable_kappa`` in (0, 1].
        window: ``loop.stable_window`` (>= 1), the number of successive-round kappas averaged.

    Returns:
        ``"predictions stable: kappa between successive rounds' pool predictions averages K >= T over the last W
        rounds"`` or None.
    """
    if len(history) < window:
        return None
    recent = history[-window:]
    values = [m.get("prediction_kappa_previous") for m in recent]
    if any(not _finite(v) for v in values) or any(m.get("one_class") for m in recent):
        return None
    mean = float(np.mean(values))
    if mean >= min_kappa:
        return (f"predictions stable: kappa between successive rounds' pool predictions averages {mean:.3f} "
                f">= {min_kappa} over the last {window} rounds")
    return None


def round_limit(history: History, *, rounds: int) -> str | None:
    """Stop once round ``rounds`` has been evaluated (its model is the last; 0: the round-0 model only).

    Returns:
        ``"round limit: R rounds"`` or None.

    Raises:
        IndexError: ``history`` is empty.
    """
    if history[-1]["round"] >= rounds:
        return f"round limit: {rounds} rounds"
    return None


def budget_spent(history: History, *, total_budget: int | None) -> str | None:
    """Stop once at least ``total_budget`` items carry an expert label (the last round's ``items_labelled``).

    Returns:
        ``"budget spent: N of B items labelled"``, or None (always when ``total_budget`` is None).

    Raises:
        IndexError: ``history`` is empty.
    """
    n = history[-1]["items_labelled"]
    if total_budget is not None and n >= total_budget:
        return f"budget spent: {n} of {total_budget} items labelled"
    return None


def stop_reason(history: History, settings: LoopConfig) -> str | None:
    """The loop's stopping rule after evaluating the last round of ``history``: the first rule that fires, in the
    order ceiling (``stop_at_ceiling``), plateau (``patience``, ``min_delta``), stabilising predictions (only with
    ``stop_when_stable``: ``stable_kappa``, ``stable_window``), round limit (``rounds``), budget (``total_budget``).

    Args:
        history: the per-round metrics so far, oldest first (non-empty).
        settings: the ``[loop]`` settings.

    Returns:
        Why to stop (one line), or None to go on.

    Raises:
        IndexError: ``history`` is empty.
    """
    s = settings
    rules = [
        lambda: ceiling_reached(history, enabled=s.stop_at_ceiling),
        lambda: plateau(history, patience=s.patience, min_delta=s.min_delta),
        lambda: (predictions_stable(history, min_kappa=s.stable_kappa, window=s.stable_window)
                 if s.stop_when_stable else None),
        lambda: round_limit(history, rounds=s.rounds),
        lambda: budget_spent(history, total_budget=s.total_budget),
    ]
    for rule in rules:
        reason = rule()
        if reason:
            return reason
    return None


def prediction_kappa(current: Sequence, previous: Sequence) -> float:
    """Cohen's kappa between two rounds' ``(P,)`` predicted labels on the same pool items (the value
    :func:`predictions_stable` averages): 1.0 when they are identical, NaN for an empty pool.

    Raises:
        ValueError: the sequences differ in length.
    """
    return cohen_kappa(current, previous)
