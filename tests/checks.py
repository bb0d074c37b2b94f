"""Assertions shared by a unit test on small built data and its twin on the real data (tests/integration/
test_real_data.py): the same checks, two data sources."""

from __future__ import annotations

import json
from typing import Iterable

import krippendorff
import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from curate.agreement import fleiss_kappa, kappa_matrix, krippendorff_alpha


def crowd_by_worker(rows: Iterable[dict]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """``({worker: {item: "0"|"1"}}, {item: gold})`` of RTE-shaped rows (``!amt_worker_ids``, ``orig_id``,
    ``response``, ``gold``)."""
    by_worker: dict[str, dict[str, str]] = {}
    gold: dict[str, str] = {}
    for row in rows:
        by_worker.setdefault(row["!amt_worker_ids"], {})[row["orig_id"]] = row["response"]
        gold[row["orig_id"]] = row["gold"]
    return by_worker, gold


def check_kappa_matrix_gold_vs_workers(by_worker: dict, gold: dict, n_items: int) -> None:
    """The gold row of :func:`kappa_matrix` over gold and the 3 busiest workers equals sklearn's kappa per pair."""
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
    assert km["n"][g][g] == n_items


def check_fleiss_matches_statsmodels(rows: tuple[dict, ...], n_items: int, per_item: int, n_workers: int) -> float:
    """:func:`fleiss_kappa` equals statsmodels' on the items x labels count table; returns the value."""
    items = sorted({r["orig_id"] for r in rows})
    pos = {item: k for k, item in enumerate(items)}
    table = np.zeros((len(items), 2))
    for r in rows:
        table[pos[r["orig_id"]], int(r["response"])] += 1
    assert table.shape == (n_items, 2) and (table.sum(axis=1) == per_item).all()
    reference = sm_fleiss_kappa(table, method="fleiss")
    by_worker, _ = crowd_by_worker(rows)
    assert len(by_worker) == n_workers
    value = fleiss_kappa(by_worker, ["0", "1"])
    assert value == pytest.approx(reference, abs=1e-12)
    return value


def check_krippendorff_matches_package(rows: tuple[dict, ...]) -> float:
    """:func:`krippendorff_alpha` equals the krippendorff package's nominal alpha, and is within 0.005 of Fleiss'
    kappa (every item has the same number of raters); returns the value."""
    workers = sorted({r["!amt_worker_ids"] for r in rows})
    items = sorted({r["orig_id"] for r in rows})
    wi = {w: k for k, w in enumerate(workers)}
    ii = {x: k for k, x in enumerate(items)}
    matrix = np.full((len(workers), len(items)), np.nan)
    for r in rows:
        matrix[wi[r["!amt_worker_ids"]], ii[r["orig_id"]]] = int(r["response"])
    reference = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    by_worker, _ = crowd_by_worker(rows)
    value = krippendorff_alpha(by_worker, ["0", "1"])
    assert value == pytest.approx(reference, abs=1e-9)
    # With the same number of raters on every item, alpha and Fleiss' kappa differ only by a small-sample correction.
    assert value == pytest.approx(fleiss_kappa(by_worker, ["0", "1"]), abs=0.005)
    return value


def check_webis_pool(table: pa.Table, lines: list[str], labels: list[str]) -> None:
    """A pool read from Webis-shaped JSON Lines ``lines``: ids and text first, the crowd judgments as float lists,
    gold labels among ``labels``, the first row's id and judgments as written."""
    assert table.column_names[:2] == ["id", "text"]
    assert {"judgments", "truth_mean", "label"} <= set(table.column_names)
    assert table.schema.field("judgments").type == pa.list_(pa.float64())
    judgments = table.column("judgments").to_pylist()
    assert all(isinstance(j, list) and j and all(isinstance(v, float) for v in j) for j in judgments)
    assert set(table.column("label").to_pylist()) <= set(labels)
    first = json.loads(lines[0])
    assert table.column("id")[0].as_py() == str(first["id"])
    assert table.column("judgments")[0].as_py() == first["judgments"]
