"""Small constructed data sets for the unit tests (the real ones in ../shared/data are for tests/integration)."""

from __future__ import annotations

import numpy as np

LABELS = ["no-clickbait", "clickbait"]

_TEASERS = ["You won't believe what", "This is why", "What happens when", "The one thing", "Here's how",
            "Nobody expected what", "The reason why", "This simple trick shows how"]
_NEWS = ["Parliament passes the budget bill", "Storm closes schools across the region", "Central bank holds rates",
         "Court rules on the merger", "Minister resigns after the inquiry", "Rail strike ends after talks",
         "City council approves new housing", "Exports rise for the third month"]
_SUBJECTS = ["a cat", "the mayor", "a chef", "the team", "an old map", "the river", "a teacher", "the station"]


def webis_like_rows(n: int, *, seed: int = 0, positive_share: float = 0.3) -> list[dict]:
    """``n`` rows shaped like Webis Clickbait 2017's JSON Lines: ``id`` (a digit string), ``text``, ``judgments``
    (5 crowd values in {0, 1/3, 2/3, 1}), ``truth_mean`` and ``label`` (``"clickbait"`` when ``truth_mean >= 0.5``).

    Texts are distinct short headlines; about ``positive_share`` of the rows are clickbait teasers.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        bait = rng.random() < positive_share
        subject = _SUBJECTS[k % len(_SUBJECTS)]
        text = (f"{_TEASERS[k % len(_TEASERS)]} {subject} did next ({k})" if bait
                else f"{_NEWS[k % len(_NEWS)]}, {subject} reports ({k})")
        centre = 0.75 if bait else 0.2
        judgments = [float(np.round(np.clip(centre + rng.normal(0, 0.3), 0, 1) * 3) / 3) for _ in range(5)]
        judgments = [round(v, 4) for v in judgments]
        mean = round(float(np.mean(judgments)), 4)
        rows.append({"id": str(804100000000000000 + 7919 * k), "text": text, "judgments": judgments,
                     "truth_mean": mean, "label": LABELS[int(mean >= 0.5)]})
    return rows


def crowd(n_items: int = 150, n_workers: int = 40, per_item: int = 10, accuracy: float = 0.75,
          seed: int = 0) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """A simulated crowd shaped like Snow et al. (2008) RTE: ``({worker: {item: "0"|"1"}}, {item: gold})``.

    Every item gets ``per_item`` judgments from distinct workers drawn at random (so each worker labels a different,
    partly overlapping set of items); a worker answers the gold label with probability ``accuracy``.
    """
    rng = np.random.default_rng(seed)
    gold = {f"{k + 1}": str(int(rng.random() < 0.5)) for k in range(n_items)}
    by_worker: dict[str, dict[str, str]] = {}
    for item, truth in gold.items():
        for w in rng.choice(n_workers, size=per_item, replace=False):
            answer = truth if rng.random() < accuracy else str(1 - int(truth))
            by_worker.setdefault(f"W{w:03d}", {})[item] = answer
    return by_worker, gold


def crowd_rows(**kw) -> list[dict]:
    """:func:`crowd` as RTE's CSV rows: ``{"!amt_worker_ids", "orig_id", "response", "gold"}``."""
    by_worker, gold = crowd(**kw)
    return [{"!amt_worker_ids": w, "orig_id": i, "response": r, "gold": gold[i]}
            for w, items in sorted(by_worker.items()) for i, r in sorted(items.items())]
