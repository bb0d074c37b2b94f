"""k-center greedy (Sener & Savarese 2018) checked against a brute-force reimplementation on small data."""

from __future__ import annotations

import numpy as np
import pytest

from curate.select import coreset
from curate.select.coreset import CoreSetGreedy


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _query(emb, labelled, budget, seed=0):
    return CoreSetGreedy().query(
        scores=np.zeros(len(emb), np.float32), embeddings=emb, labelled=labelled, budget=budget,
        rng=np.random.default_rng(seed),
    )


@pytest.mark.parametrize("n_labelled", [0, 1, 7])
def test_each_pick_is_the_farthest_item_by_brute_force(n_labelled, monkeypatch):
    monkeypatch.setattr(coreset, "_CHUNK", 13)  # exercise the chunked updates
    monkeypatch.setattr(coreset, "_BLOCK", 3)
    emb = _unit(200, 8, 1)
    labelled = np.zeros(200, bool)
    labelled[np.random.default_rng(2).choice(200, n_labelled, replace=False)] = True
    sel = _query(emb, labelled, 25)
    assert sel.indices.size == 25 and not labelled[sel.indices].any()
    dist = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=2)
    centres = list(np.flatnonzero(labelled))
    for step, pick in enumerate(sel.indices):
        if step == 0 and n_labelled == 0:
            centres.append(pick)  # the first centre is drawn at random
            continue
        free = np.setdiff1d(np.flatnonzero(~labelled), centres)
        min_d = dist[np.ix_(free, centres)].min(axis=1)
        assert pick in free
        assert dist[pick, centres].min() >= min_d.max() - 1e-5
        centres.append(pick)


def test_picks_are_spread_further_apart_than_random():
    emb = _unit(500, 16, 3)
    sel = _query(emb, np.zeros(500, bool), 20)
    pairwise = np.linalg.norm(emb[sel.indices, None] - emb[None, sel.indices], axis=2)
    rand = np.random.default_rng(4).choice(500, 20, replace=False)
    rand_pw = np.linalg.norm(emb[rand, None] - emb[None, rand], axis=2)
    off = ~np.eye(20, dtype=bool)
    assert pairwise[off].min() > rand_pw[off].min()


def test_deterministic_float16_and_budget_bounds():
    emb = _unit(300, 12, 5).astype(np.float16)
    labelled = np.zeros(300, bool)
    labelled[:290] = True
    a, b = _query(emb, labelled, 5, seed=7), _query(emb, labelled, 5, seed=8)
    assert np.array_equal(a.indices, b.indices)  # labelled items exist: rng unused
    assert np.array_equal(_query(emb, labelled[::-1] & False, 6, 9).indices, _query(emb, labelled & False, 6, 9).indices)
    assert _query(emb, labelled, 50).indices.size == 10  # only 10 unlabelled
    assert _query(emb, labelled, 0).indices.size == 0
    assert np.array_equal(a.groups, np.arange(5))
    with pytest.raises(ValueError):
        _query(emb, labelled, -1)
