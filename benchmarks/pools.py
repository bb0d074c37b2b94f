"""The benchmark data sets as pools `curate init` reads, built from ../shared/data (never copied into the repo).

Each entry of ``DATASETS`` is what a user would pass to ``curate init`` (or ``curate experiment label-efficiency``):
the pool file, labels, positive label, gold and crowd columns, the policy prompt, seed examples and the expected
positive share (``--prior``). Pools that are not already a JSON Lines file are written once into ``--cache``
(default ``~/.cache/curate/data``):

- ``webis`` (majority label, 24 % positive) and ``webis-rare`` (``truth_mean >= 0.7``, 10.9 %): Webis Clickbait 2017,
  5 crowd judgments per tweet; ``webis-rare``'s crowd label is positive when the drawn judgment is 1 ("very
  clickbaiting"), the same threshold on the judgment scale as on the mean.
- ``chakraborty-5pct``: the Chakraborty et al. 2016 headlines with the clickbait class subsampled (seed 0) to 5 % of
  the pool, the source's "95 % benign" setting; no crowd column (the labels come from the source site).
- ``snow-rte``: Snow et al. 2008 RTE, 800 text/hypothesis pairs with the expert gold and the 10 workers' answers as
  the crowd column; the item text is ``Text: ... Hypothesis: ...``.

``python benchmarks/pools.py NAME`` builds one pool and prints the ``curate init`` options for it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import html
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CURATE_SHARED_DATA", REPO.parent / "shared" / "data"))
EXAMPLES = REPO / "examples"
DEFAULT_CACHE = Path(os.environ.get("CURATE_CACHE", Path.home() / ".cache" / "curate")) / "data"

DATASETS: dict[str, dict] = {
    "webis": {
        "labels": ["no-clickbait", "clickbait"], "positive": "clickbait", "gold_field": "label",
        "crowd_field": "judgments", "prompt_file": EXAMPLES / "webis" / "policy.txt",
        "seed_examples": EXAMPLES / "webis" / "seed_examples.json", "prior": 0.25,
        "negative_description": "A plain news headline that states what happened.",
    },
    "webis-rare": {
        "labels": ["not-strong-clickbait", "strong-clickbait"], "positive": "strong-clickbait", "gold_field": "label",
        "crowd_field": "judgments", "prompt_file": EXAMPLES / "webis" / "policy.txt",
        "seed_examples": EXAMPLES / "webis" / "seed_examples_rare.json", "prior": 0.1,
        "negative_description": "A plain news headline that states what happened.",
    },
    "chakraborty-5pct": {
        "labels": ["not-clickbait", "clickbait"], "positive": "clickbait", "gold_field": "label", "crowd_field": None,
        "prompt_file": EXAMPLES / "chakraborty" / "policy.txt",
        "seed_examples": EXAMPLES / "chakraborty" / "seed_examples.json", "prior": 0.05,
        "negative_description": "A plain news headline that reports an event.",
    },
    "snow-rte": {
        "labels": ["not-entailed", "entailed"], "positive": "entailed", "gold_field": "label",
        "crowd_field": "judgments", "prompt_file": EXAMPLES / "snow-rte" / "policy.txt",
        "seed_examples": EXAMPLES / "snow-rte" / "seed_examples.json", "prior": 0.5,
        "negative_description": "The hypothesis adds or changes facts that the text does not support.",
    },
}


def _write_jsonl(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def _webis_rows() -> list[dict]:
    src = SHARED / "webis-clickbait-17" / "webis-clickbait-17.jsonl"
    if not src.is_file():
        raise SystemExit(f"{src}: not found; put ../shared/data beside the repository or set CURATE_SHARED_DATA")
    with src.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _headlines(name: str) -> list[str]:
    with gzip.open(SHARED / "clickbait-chakraborty-2016" / name, "rt", encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def build_pool(name: str, cache: Path = DEFAULT_CACHE, *, positive_share: float = 0.05, seed: int = 0) -> Path:
    """Write (once) and return the JSON Lines pool of data set ``name``.

    Raises:
        KeyError: an unknown name. SystemExit: the shared data is missing.
    """
    import numpy as np

    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    if name == "webis":
        return SHARED / "webis-clickbait-17" / "webis-clickbait-17.jsonl"
    path = Path(cache) / f"{name}.jsonl"
    if path.is_file():
        return path
    if name == "webis-rare":
        rows = [{"id": r["id"], "text": r["text"], "truth_mean": r["truth_mean"],
                 "label": "strong-clickbait" if r["truth_mean"] >= 0.7 else "not-strong-clickbait",
                 # the drawn judgment counts as positive (>= 0.5 in crowd_labels) only when it is 1.0
                 "judgments": [1.0 if v >= 0.99 else 0.0 for v in r["judgments"]]} for r in _webis_rows()]
    elif name == "chakraborty-5pct":
        pos, neg = _headlines("clickbait_data.gz"), _headlines("non_clickbait_data.gz")
        n_pos = round(positive_share / (1 - positive_share) * len(neg))
        keep = np.sort(np.random.default_rng(seed).choice(len(pos), size=n_pos, replace=False))
        rows = [{"id": f"cb-{i}", "text": pos[i], "label": "clickbait"} for i in keep]
        rows += [{"id": f"nc-{i}", "text": t, "label": "not-clickbait"} for i, t in enumerate(neg)]
        rows = [rows[i] for i in np.random.default_rng(seed + 1).permutation(len(rows))]
    else:  # snow-rte
        items: dict[str, dict] = {}
        with (SHARED / "snow-2008-rte" / "rte.standardized.csv").open(encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh):
                it = items.setdefault(r["orig_id"], {
                    "id": f"rte-{r['orig_id']}",
                    "text": f"Text: {html.unescape(r['text'])} Hypothesis: {html.unescape(r['hypothesis'])}",
                    "label": "entailed" if r["gold"] == "1" else "not-entailed", "judgments": []})
                it["judgments"].append(float(r["response"]))
        rows = list(items.values())
    return _write_jsonl(rows, path)


def init_options(name: str, cache: Path = DEFAULT_CACHE) -> list[str]:
    """The ``curate init`` / ``curate experiment label-efficiency`` options for data set ``name``."""
    d = DATASETS[name]
    opts = ["--pool", str(build_pool(name, cache)), "--labels", ",".join(d["labels"]), "--positive", d["positive"],
            "--gold-field", d["gold_field"], "--prompt-file", str(d["prompt_file"]),
            "--seed-examples", str(d["seed_examples"]), "--prior", str(d["prior"]),
            "--negative-description", d["negative_description"]]
    if d["crowd_field"]:
        opts += ["--crowd-field", d["crowd_field"]]
    return opts


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(DATASETS))
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args()
    print(" ".join(json.dumps(o) if " " in o else o for o in init_options(args.name, args.cache)))
    sys.exit(0)
