"""Unit-level functions checked on the real data sets in ../shared/data (skipped without them): Snow et al. (2008)
RTE crowd judgments for the agreement statistics, Webis Clickbait 2017 for crowd labels and pool reading.

Moved here from tests/unit, whose tests build their own small data (tests/unit/synthetic.py); the reference values
are computed directly with statsmodels and krippendorff, or are the figures documented in the data's SOURCE.md.
"""

from __future__ import annotations

import csv
import json
from functools import lru_cache

import krippendorff
import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from curate.agreement import (
    cohen_kappa,
    fleiss_kappa,
    kappa_matrix,
    krippendorff_alpha,
    majority_vote,
    model_expert_kappa,
)
from curate.oracle.simulated import crowd_labels
from curate.pool import read_pool
from tests.conftest import LABELS, RTE, WEBIS, webis_rows

# -- Snow et al. 2008 RTE ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _rte_rows() -> tuple[dict, ...]:
    if not RTE.is_file():
        pytest.skip(f"shared data not found at {RTE}")
    with RTE.open(encoding="utf-8") as fh:
        return tuple(csv.DictReader(fh))


def _rte() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """``({worker: {item: "0"|"1"}}, {item: gold})`` from Snow et al. 2008 RTE."""
    by_worker: dict[str, dict[str, str]] = {}
    gold: dict[str, str] = {}
    for row in _rte_rows():
        by_worker.setdefault(row["!amt_worker_ids"], {})[row["orig_id"]] = row["response"]
        gold[row["orig_id"]] = row["gold"]
    return by_worker, gold


def test_agreement_on_real_crowd_annotations_snow_rte():
    """Snow et al. 2008 RTE: one worker vs the expert gold about 0.46; majority of 10 about 0.84 (SOURCE.md)."""
    by_worker, gold = _rte()
    assert sum(len(v) for v in by_worker.values()) == 8000 and len(by_worker) == 164
    # Every single worker judgment against the expert gold.
    assert model_expert_kappa(gold, by_worker, rng=np.random.default_rng(0), n_boot=0).kappa == pytest.approx(0.46, abs=0.01)
    majority = majority_vote(by_worker, ["0", "1"], tie="0")  # 5-5 ties count as 0, as in SOURCE.md's figure
    items = sorted(gold)
    assert cohen_kappa([majority[i] for i in items], [gold[i] for i in items]) == pytest.approx(0.84, abs=0.015)
    assert len(majority_vote(by_worker, ["0", "1"])) == 800 - 65  # the 65 ties left out


def test_kappa_matrix_on_rte_gold_vs_workers():
    by_worker, gold = _rte()
    workers = sorted(by_worker, key=lambda w: -len(by_worker[w]))[:3]
    data = {"gold": gold, **{w: by_worker[w] for w in workers}}
    km = kappa_matrix(data)
    names = km["annotators"]
    assert names == sorted(data)
    g = names.index("gold")
    for w in workers:
        i = names.index(w)
        shared = sorted(by_worker[w])
        assert km["n"][g][i] == len(shared)
        assert km["matrix"][g][i] == pytest.approx(
            cohen_kappa_score([gold[s] for s in shared], [by_worker[w][s] for s in shared])
        )
        assert -1 <= km["matrix"][g][i] <= 1
    assert km["n"][g][g] == 800


def test_fleiss_kappa_on_rte_matches_statsmodels():
    rows = _rte_rows()
    items = sorted({r["orig_id"] for r in rows})
    pos = {item: k for k, item in enumerate(items)}
    table = np.zeros((len(items), 2))
    for r in rows:
        table[pos[r["orig_id"]], int(r["response"])] += 1
    assert table.shape == (800, 2) and (table.sum(axis=1) == 10).all()
    reference = sm_fleiss_kappa(table, method="fleiss")
    by_worker, _ = _rte()
    assert len(by_worker) == 164
    value = fleiss_kappa(by_worker, ["0", "1"])
    print(f"RTE Fleiss' kappa: {value:.4f} (statsmodels directly: {reference:.4f})")
    assert value == pytest.approx(reference, abs=1e-12)
    # One worker against the gold is about 0.46 (above); two noisy workers agree less with
    # each other than each with the truth: about 0.24 here.
    assert 0.15 < value < 0.35


def test_krippendorff_alpha_on_rte_matches_package():
    rows = _rte_rows()
    workers = sorted({r["!amt_worker_ids"] for r in rows})
    items = sorted({r["orig_id"] for r in rows})
    wi = {w: k for k, w in enumerate(workers)}
    ii = {x: k for k, x in enumerate(items)}
    matrix = np.full((len(workers), len(items)), np.nan)
    for r in rows:
        matrix[wi[r["!amt_worker_ids"]], ii[r["orig_id"]]] = int(r["response"])
    reference = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    by_worker, _ = _rte()
    value = krippendorff_alpha(by_worker, ["0", "1"])
    print(f"RTE Krippendorff's alpha (nominal): {value:.4f} (krippendorff directly: {reference:.4f})")
    assert value == pytest.approx(reference, abs=1e-9)
    assert 0.15 < value < 0.35
    # With 10 raters on every item, alpha and Fleiss' kappa differ only by a small-sample correction.
    assert value == pytest.approx(fleiss_kappa(by_worker, ["0", "1"]), abs=0.005)


# -- Webis Clickbait 2017 ------------------------------------------------------------------------------


def test_crowd_labels_from_webis_judgments_match_the_documented_kappa():
    """One judgment vs the majority of all 5 has kappa 0.54 on the full corpus (SOURCE.md); a 4,000-item slice."""
    rows = webis_rows(4000)
    ids = [r["id"] for r in rows]
    crowd = crowd_labels([r["judgments"] for r in rows], ids, LABELS, "clickbait", seed=0)
    assert set(crowd) == set(ids)
    k = cohen_kappa([crowd[i] for i in ids], [r["label"] for r in rows])
    assert k == pytest.approx(0.54, abs=0.05)


def test_webis_slice(tmp_path):
    if not WEBIS.is_file():
        pytest.skip(f"shared data not found at {WEBIS}")
    lines = []
    with WEBIS.open(encoding="utf-8") as fh:
        for _ in range(200):
            lines.append(fh.readline())
    path = tmp_path / "webis.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    table = read_pool(path, labels=LABELS, gold_field="label", crowd_field="judgments")
    assert table.num_rows == 200
    assert table.column_names[:2] == ["id", "text"]
    assert {"judgments", "truth_mean", "label"} <= set(table.column_names)
    assert table.schema.field("judgments").type == pa.list_(pa.float64())
    judgments = table.column("judgments").to_pylist()
    assert all(isinstance(j, list) and j and all(isinstance(v, float) for v in j) for j in judgments)
    assert set(table.column("label").to_pylist()) <= set(LABELS)
    first = json.loads(lines[0])
    assert table.column("id")[0].as_py() == str(first["id"])
    assert table.column("judgments")[0].as_py() == first["judgments"]
