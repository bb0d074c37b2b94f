"""Unit-level functions checked on the real data sets in ../shared/data (skipped without them): Snow et al. (2008)
RTE crowd judgments for the agreement statistics, Webis Clickbait 2017 for crowd labels and pool reading.

Moved here from tests/unit, whose tests build their own small data (tests/unit/synthetic.py); the reference values
are computed directly with statsmodels and krippendorff, or are the figures documented in the data's SOURCE.md.
"""

from __future__ import annotations

import csv
from functools import lru_cache

import numpy as np
import pytest

from curate.agreement import (
    cohen_kappa,
    majority_vote,
    model_expert_kappa,
)
from curate.oracle.simulated import crowd_labels
from curate.pool import read_pool
from tests.checks import (
    check_fleiss_matches_statsmodels,
    check_kappa_matrix_gold_vs_workers,
    check_krippendorff_matches_package,
    check_webis_pool,
    crowd_by_worker,
)
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
    return crowd_by_worker(_rte_rows())


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
    check_kappa_matrix_gold_vs_workers(by_worker, gold, 800)


def test_fleiss_kappa_on_rte_matches_statsmodels():
    value = check_fleiss_matches_statsmodels(_rte_rows(), 800, 10, 164)
    print(f"RTE Fleiss' kappa: {value:.4f}")
    # One worker against the gold is about 0.46 (above); two noisy workers agree less with
    # each other than each with the truth: about 0.24 here.
    assert 0.15 < value < 0.35


def test_krippendorff_alpha_on_rte_matches_package():
    value = check_krippendorff_matches_package(_rte_rows())
    print(f"RTE Krippendorff's alpha (nominal): {value:.4f}")
    assert 0.15 < value < 0.35


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
    check_webis_pool(table, lines, LABELS)
