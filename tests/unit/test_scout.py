import numpy as np
import pytest

from curate.models.scout import EmbeddingScout, build_label_vectors


def _unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_scout_calibration_places_the_prior_and_orders_by_similarity():
    rng = np.random.default_rng(0)
    pos, neg = _unit([1, 0, 0]), _unit([0, 1, 0])
    emb = _unit(rng.normal(size=(1000, 3)))
    scout = EmbeddingScout(["no", "yes"], "yes", np.stack([neg, pos]), embed=lambda t: None, prior=0.3)
    with pytest.raises(RuntimeError):
        scout.proba_from_embeddings(emb)
    proba = scout.calibrate(emb).proba_from_embeddings(emb)
    assert proba.shape == (1000, 2) and proba.dtype == np.float32
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert (proba[:, 1] >= 0.5).mean() == pytest.approx(0.3, abs=0.01)
    raw = emb @ pos - emb @ neg
    assert np.all(np.diff(proba[np.argsort(raw), 1]) >= -1e-6)  # monotone in the raw score


def test_label_vectors_average_description_and_seed_examples():
    table = {"policy": [1, 0], "benign": [0, 1], "ex": [1, 1]}
    vecs = build_label_vectors(
        ["no", "yes"], "yes", "policy", negative_description="benign", seed_examples={"yes": ["ex"]},
        embed=lambda texts: _unit([table[t] for t in texts]),
    )
    assert np.allclose(vecs[0], [0, 1])
    assert np.allclose(vecs[1], _unit(_unit([1, 0]) + _unit([1, 1])))
