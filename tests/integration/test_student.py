"""The real student (bundled all-MiniLM-L6-v2) learns from a few hundred Webis gold labels."""

import numpy as np
import pytest

from curate.agreement import cohen_kappa
from curate.config import StudentConfig
from curate.models.encoder import EncoderClassifier
from tests.conftest import LABELS, webis_rows

pytestmark = pytest.mark.slow


def test_fine_tune_learns_saves_and_reloads(tmp_path):
    rows = webis_rows(1000)
    train, test = rows[:250], rows[500:900]
    targets = np.array([[r["label"] == lab for lab in LABELS] for r in train], dtype=np.float32)
    clf = EncoderClassifier(LABELS, StudentConfig(presentations=3000))
    info = clf.fit([r["text"] for r in train], targets, seed=0, progress=False)
    assert info["epochs"] == 12 and info["examples"] == 250
    losses = info["epoch_losses"]
    assert len(losses) == 12 and losses[-1] < 0.75 * losses[0]  # the training loss falls
    texts = [r["text"] for r in test]
    proba = clf.predict_proba(texts, progress=False)
    assert proba.shape == (400, 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-4)
    pred = np.asarray(LABELS)[proba.argmax(axis=1)]
    assert cohen_kappa(pred, [r["label"] for r in test]) > 0.25
    clf.save(tmp_path / "model")
    again = EncoderClassifier.load(tmp_path / "model", LABELS, StudentConfig())
    assert np.allclose(again.predict_proba(texts[:50], progress=False), proba[:50], atol=0.02)
