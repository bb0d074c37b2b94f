import numpy as np
import pytest

from curate.agreement import cohen_kappa, pairwise_kappa
from curate.errors import CurateError
from curate.oracle.simulated import SimulatedExperts, crowd_labels, expected_pairwise_kappa, flip_rate_for_kappa
from tests.unit.synthetic import LABELS, webis_like_rows


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_flip_rate_solves_the_target_kappa(target):
    f = flip_rate_for_kappa(target, [0.76, 0.24])
    assert 0 < f < 0.5
    assert expected_pairwise_kappa(f, [0.76, 0.24]) == pytest.approx(target, abs=1e-9)
    assert flip_rate_for_kappa(1.0, [0.5, 0.5]) == 0.0
    with pytest.raises(ValueError):
        flip_rate_for_kappa(0.0, [0.5, 0.5])


def test_simulated_experts_reach_the_target_kappa_and_are_deterministic():
    rng = np.random.default_rng(0)
    gold = {f"i{k}": ("clickbait" if rng.random() < 0.24 else "no-clickbait") for k in range(20000)}
    oracle = SimulatedExperts(gold, LABELS, n_experts=2, target_kappa=0.8, seed=7)
    requests = [(i, who) for i in gold for who in oracle.annotators]
    answers = list(oracle.annotate([(i, 2) for i in gold], {}, 0))
    assert [(a.item_id, a.annotator) for a in answers] == requests
    # Only the missing labels are asked: one item already has expert-1, another needs one label.
    partial = list(oracle.annotate([("i0", 2), ("i1", 1)], {"i0": {"expert-1"}}, 3))
    assert [(a.item_id, a.annotator, a.round) for a in partial] == [("i0", "expert-2", 3), ("i1", "expert-1", 3)]
    by = {}
    for a in answers:
        by.setdefault(a.annotator, {})[a.item_id] = a.label
    assert pairwise_kappa(by)["mean"] == pytest.approx(0.8, abs=0.02)
    # Each expert alone agrees with gold better than with the other expert.
    assert cohen_kappa([by["expert-1"][i] for i in gold], list(gold.values())) > 0.85
    again = SimulatedExperts(gold, LABELS, n_experts=2, target_kappa=0.8, seed=7)
    assert [again.answer(i, w) for i, w in requests[:500]] == [a.label for a in answers[:500]]
    other_seed = SimulatedExperts(gold, LABELS, n_experts=2, target_kappa=0.8, seed=8)
    assert [other_seed.answer(i, w) for i, w in requests[:2000]] != [a.label for a in answers[:2000]]
    perfect = SimulatedExperts(gold, LABELS, n_experts=3, target_kappa=1.0, seed=7)
    assert all(perfect.answer(i, "expert-3") == g for i, g in list(gold.items())[:1000])


def test_crowd_labels_draw_one_judgment_per_item():
    """(On the real Webis judgments, against the documented kappa: tests/integration/test_real_data.py.)"""
    rows = webis_like_rows(2000, seed=3)
    ids = [r["id"] for r in rows]
    crowd = crowd_labels([r["judgments"] for r in rows], ids, LABELS, "clickbait", seed=0)
    assert set(crowd) == set(ids) and set(crowd.values()) == set(LABELS)
    assert crowd == crowd_labels([r["judgments"] for r in rows], ids, LABELS, "clickbait", seed=0)  # deterministic
    assert crowd != crowd_labels([r["judgments"] for r in rows], ids, LABELS, "clickbait", seed=1)
    # the drawn judgment is one of the item's: unanimous items get that label
    for r in rows:
        if min(r["judgments"]) >= 0.5:
            assert crowd[r["id"]] == "clickbait"
        if max(r["judgments"]) < 0.5:
            assert crowd[r["id"]] == "no-clickbait"
    # each judgment is drawn about equally often: one positive judgment in five gives about 20 % positives
    n = 3000
    one_in_five = crowd_labels([[1.0, 0.0, 0.0, 0.0, 0.0]] * n, [f"x{k}" for k in range(n)], LABELS, "clickbait",
                               seed=0)
    assert sum(v == "clickbait" for v in one_in_five.values()) / n == pytest.approx(0.2, abs=0.03)
    # one crowd label agrees with the majority label far better than chance, and worse than perfectly
    k = cohen_kappa([crowd[i] for i in ids], [r["label"] for r in rows])
    assert 0.3 < k < 0.95
    # String judgments and scalars work too; empty judgments give no crowd label.
    out = crowd_labels([["clickbait"], None, [], 0.9], ["a", "b", "c", "d"], LABELS, "clickbait", seed=0)
    assert out == {"a": "clickbait", "d": "clickbait"}
    with pytest.raises(CurateError, match="more than two labels"):
        crowd_labels([[0.5]], ["a"], ["x", "y", "z"], "x", seed=0)
