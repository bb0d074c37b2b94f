"""Multi-annotator agreement: kappa matrix, Fleiss' kappa, Krippendorff's alpha.

The reference values are computed in the tests directly with statsmodels and krippendorff from the
raw data, not copied from the functions under test. The data is a simulated crowd shaped like Snow et al. (2008)
RTE (tests/unit/synthetic.py); the same checks on the real RTE judgments are in tests/integration/test_real_data.py.
"""

import math
from functools import lru_cache

import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from curate.agreement import fleiss_kappa, kappa_matrix, krippendorff_alpha
from tests.checks import (
    check_fleiss_matches_statsmodels,
    check_kappa_matrix_gold_vs_workers,
    check_krippendorff_matches_package,
    crowd_by_worker,
)
from tests.unit.synthetic import crowd_rows

N_ITEMS, N_WORKERS, PER_ITEM = 150, 40, 10


@lru_cache(maxsize=1)
def _crowd_rows() -> tuple[dict, ...]:
    """A simulated crowd: 150 items, 10 judgments each by distinct workers among 40, each right 75 % of the time
    (two workers agree with probability 0.75^2 + 0.25^2 = 0.625: pairwise kappa about 0.25)."""
    return tuple(crowd_rows(n_items=N_ITEMS, n_workers=N_WORKERS, per_item=PER_ITEM, accuracy=0.75, seed=0))


def _crowd() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """``({worker: {item: "0"|"1"}}, {item: gold})`` of the simulated crowd."""
    return crowd_by_worker(_crowd_rows())


# -- kappa_matrix -------------------------------------------------------------------------------


def test_kappa_matrix_hand_checked():
    # a and b share items 1-4: agree on 1, 2, 3, differ on 4. Contingency (a rows, b cols; x, y):
    # [[2, 0], [1, 1]] -> p_o = 3/4, p_e = (2*3 + 2*1)/16 = 1/2, kappa = (3/4 - 1/2)/(1/2) = 0.5.
    # c shares only item 5 with a (one identical label: perfect agreement, 1.0) and nothing with b.
    data = {
        "b": {"1": "x", "2": "x", "3": "y", "4": "x"},
        "a": {"1": "x", "2": "x", "3": "y", "4": "y", "5": "y"},
        "c": {"5": "y"},
    }
    km = kappa_matrix(data)
    assert km["annotators"] == ["a", "b", "c"]
    assert km["matrix"][0][1] == pytest.approx(0.5)
    assert km["matrix"][1][0] == pytest.approx(0.5)
    assert km["matrix"][0][2] == 1.0
    assert km["matrix"][1][2] is None and km["matrix"][2][1] is None
    assert [km["matrix"][i][i] for i in range(3)] == [1.0, 1.0, 1.0]
    assert km["n"] == [[5, 4, 1], [4, 4, 0], [1, 0, 1]]


def test_kappa_matrix_on_crowd_gold_vs_workers():
    by_worker, gold = _crowd()
    check_kappa_matrix_gold_vs_workers(by_worker, gold, N_ITEMS)


def test_fleiss_kappa_on_crowd_matches_statsmodels():
    value = check_fleiss_matches_statsmodels(_crowd_rows(), N_ITEMS, PER_ITEM, N_WORKERS)
    # Two noisy workers agree less with each other than each with the truth: about 0.25 here.
    assert 0.15 < value < 0.35


def test_fleiss_kappa_uses_the_most_common_rater_count():
    labels = ["x", "y"]
    # items 1-3 have 3 raters, item 4 has 2, item 5 has 1: only items 1-3 count.
    data = {
        "a": {"1": "x", "2": "y", "3": "x", "4": "x", "5": "y"},
        "b": {"1": "x", "2": "y", "3": "y", "4": "y"},
        "c": {"1": "x", "2": "x", "3": "y"},
    }
    table = np.array([[3, 0], [1, 2], [1, 2]], dtype=float)
    assert fleiss_kappa(data, labels) == pytest.approx(sm_fleiss_kappa(table))
    # A tie (two items with 2 raters, two with 3): the larger count, items 3 and 4.
    tie = {
        "a": {"1": "x", "2": "y", "3": "x", "4": "y"},
        "b": {"1": "x", "2": "x", "3": "x", "4": "y"},
        "c": {"3": "y", "4": "y"},
    }
    assert fleiss_kappa(tie, labels) == pytest.approx(sm_fleiss_kappa(np.array([[2, 1], [0, 3]], dtype=float)))
    assert math.isnan(fleiss_kappa({"a": {"1": "x"}, "b": {"2": "y"}}, labels))
    assert math.isnan(fleiss_kappa({}, labels))
    assert fleiss_kappa({"a": {"1": "x", "2": "x"}, "b": {"1": "x", "2": "x"}}, labels) == 1.0
    with pytest.raises(ValueError, match="not one of"):
        fleiss_kappa({"a": {"1": "z"}, "b": {"1": "x"}}, labels)


# -- Krippendorff's alpha -----------------------------------------------------------------------------


def test_krippendorff_alpha_on_crowd_matches_package():
    assert 0.15 < check_krippendorff_matches_package(_crowd_rows()) < 0.35


def test_krippendorff_alpha_small_cases():
    labels = ["x", "y", "z"]
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the nominal example
    # (also the krippendorff package's doctest): 0.691358.
    raw = [
        [None, None, None, None, None, 3, 4, 1, 2, 1, 1, 3, 3, None, 3],
        [1, None, 2, 1, 3, 3, 4, 3, None, None, None, None, None, None, None],
        [None, None, 2, 1, 3, 4, 4, None, 2, 1, 1, 3, 3, None, 4],
    ]
    four = ["a", "b", "c", "d"]
    data = {
        f"coder{r}": {f"u{u}": four[v - 1] for u, v in enumerate(row) if v is not None} for r, row in enumerate(raw)
    }
    assert krippendorff_alpha(data, four) == pytest.approx(0.691358, abs=1e-6)
    assert math.isnan(krippendorff_alpha({"a": {"1": "x"}, "b": {"2": "y"}}, labels))
    assert math.isnan(krippendorff_alpha({}, labels))
    assert krippendorff_alpha({"a": {"1": "y", "2": "y"}, "b": {"1": "y", "2": "y"}}, labels) == 1.0
    with pytest.raises(ValueError, match="not one of"):
        krippendorff_alpha({"a": {"1": "q"}, "b": {"1": "x"}}, labels)
