"""Faster CPU scoring (issue 15, part 3): the fine-tuned student and the embedding model run by ONNX Runtime, fp32
and int8, against the torch fp32 path they replace. Real bundled MiniLM, real Webis texts, real ONNX export."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from tests.conftest import LABELS, run_cli, webis_rows

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory):
    """A fresh ``$CURATE_CACHE`` for this module (the embedding model's export goes there; CLI children inherit it)."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("curate-cache")
        mp.setenv("CURATE_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def saved_student(tmp_path_factory) -> tuple[Path, list[str]]:
    """A MiniLM student fine-tuned for a few steps on 96 Webis posts and saved, and 50 other posts to score."""
    from curate.config import StudentConfig
    from curate.models.encoder import EncoderClassifier

    rows = webis_rows(150)
    texts = [r["text"] for r in rows[:96]]
    targets = np.array([[r["label"] == lab for lab in LABELS] for r in rows[:96]], dtype=np.float32)
    clf = EncoderClassifier(LABELS, StudentConfig(presentations=192, min_epochs=1, max_epochs=2, precision="fp32"))
    clf.fit(texts, targets, seed=0, progress=False)
    folder = tmp_path_factory.mktemp("student") / "model"
    clf.save(folder)
    return folder, [r["text"] for r in rows[100:150]]


def _scores(folder: Path, texts: list[str], backend: str, precision: str = "fp32") -> np.ndarray:
    from curate.config import StudentConfig
    from curate.models.encoder import EncoderClassifier

    settings = StudentConfig(precision=precision, backend=backend)
    return EncoderClassifier.load(folder, LABELS, settings).predict_proba(texts, progress=False)


def test_onnx_fp32_matches_torch_fp32_and_is_exported_once(saved_student):
    folder, texts = saved_student
    torch_p = _scores(folder, texts, "torch")
    onnx_p = _scores(folder, texts, "onnx")
    assert onnx_p.shape == torch_p.shape == (50, 2) and onnx_p.dtype == torch_p.dtype == np.float32
    assert np.abs(onnx_p - torch_p).max() < 1e-4
    assert np.abs(torch_p[:, 1] - 0.5).max() > 0.05  # a trained head: the comparison is not between two coin flips
    cache = folder / "onnx" / "model.onnx"
    assert cache.is_file() and json.loads((folder / "onnx" / "onnx.json").read_text())["labels"] == LABELS
    stamp = cache.stat().st_mtime_ns
    order = np.arange(len(texts))[::-1]  # the same rows come back in the order of the texts given
    again = _scores(folder, [texts[i] for i in order], "onnx")
    np.testing.assert_allclose(again, onnx_p[order], atol=1e-5)
    assert cache.stat().st_mtime_ns == stamp  # read from the cache, not exported again


def test_onnx_int8_is_close_to_fp32_with_the_same_decisions(saved_student):
    folder, texts = saved_student
    torch_p = _scores(folder, texts, "torch")
    int8_p = _scores(folder, texts, "onnx-int8")
    assert int8_p.shape == torch_p.shape and int8_p.dtype == np.float32
    diff = np.abs(int8_p - torch_p).max()
    assert 0 < diff < 0.05  # quantized (not the fp32 graph), and close
    assert np.mean(int8_p.argmax(axis=1) == torch_p.argmax(axis=1)) >= 0.9
    assert (folder / "onnx" / "model.int8.onnx").is_file()


def test_a_refit_model_is_exported_again(saved_student, tmp_path):
    """Scores follow the weights: after fit() the ONNX session of the old weights is dropped."""
    from curate.config import StudentConfig
    from curate.models.encoder import EncoderClassifier

    folder, texts = saved_student
    clf = EncoderClassifier.load(folder, LABELS, StudentConfig(precision="fp32", backend="onnx", learning_rate=1e-4,
                                                               presentations=96, min_epochs=1, max_epochs=3))
    before = clf.predict_proba(texts[:8], progress=False)
    targets = np.tile(np.array([[0.0, 1.0]], dtype=np.float32), (32, 1))
    clf.fit(texts[:32], targets, seed=1, progress=False)  # everything "clickbait": the scores move up
    after = clf.predict_proba(texts[:8], progress=False)  # an unsaved model: exported to a temporary folder
    assert after[:, 1].mean() > before[:, 1].mean()
    clf.settings = clf.settings.model_copy(update={"backend": "torch"})
    np.testing.assert_allclose(after, clf.predict_proba(texts[:8], progress=False), atol=1e-4)


def test_onnx_embeddings_match_torch_fp32():
    from curate.embed import embed_texts

    texts = [r["text"] for r in webis_rows(50)]
    ref = embed_texts(texts, model="bundled:all-MiniLM-L6-v2", precision="fp32", progress=False)
    fast = embed_texts(texts, model="bundled:all-MiniLM-L6-v2", progress=False, backend="onnx")
    assert fast.shape == ref.shape == (50, 384) and fast.dtype == np.float32
    assert np.min(np.sum(fast * ref, axis=1)) > 0.99999  # cosine of each row with its torch twin
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def test_an_unknown_backend_is_one_line_naming_the_setting(tmp_path):
    from curate.config import load_config
    from curate.errors import CurateError
    from curate.models.onnx_backend import check_backend

    with pytest.raises(CurateError) as err:
        check_backend("onnx-fp16", "selection.embedding_backend")
    assert str(err.value).startswith("selection.embedding_backend = 'onnx-fp16': not a scoring backend")
    (tmp_path / "curate.toml").write_text(tomli_w.dumps({"task": {"labels": LABELS, "positive": "clickbait",
                                                                  "prompt": "p"}, "student": {"backend": "onnx8"}}))
    with pytest.raises(CurateError) as err:
        load_config(tmp_path)
    message = str(err.value)
    assert "\n" not in message and "student.backend" in message and "'onnx-int8'" in message


def test_a_loop_round_scores_with_onnx_and_records_it(tmp_path):
    """`curate run --backend onnx-int8` on a 200-item Webis project with ONNX embeddings, one round: each round's
    metrics say what scored, the export sits in the model's folder; a misspelt backend is one line naming --backend."""
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in webis_rows(200)), encoding="utf-8")
    project = tmp_path / "p"
    run_cli("init", project, "--pool", pool, "--labels", ",".join(LABELS), "--positive", "clickbait", "--prompt",
            "A post is clickbait when it teases or withholds information to lure a click.", "--gold-field", "label",
            "--prior", "0.3", check=True)
    settings = tomllib.loads((project / "curate.toml").read_text(encoding="utf-8"))
    settings["selection"]["embedding_backend"] = "onnx"
    settings["loop"]["final_model"] = False  # the final model is scored as M_1 is (the test above: unsaved models)
    (project / "curate.toml").write_text(tomli_w.dumps(settings), encoding="utf-8")

    bad = run_cli("run", project, "--backend", "fast", "--quiet")
    assert bad.returncode != 0 and "--backend 'fast'" in bad.stderr and "onnx-int8" in bad.stderr

    proc = run_cli("run", project, "--rounds", "1", "--budget", "16", "--presentations", "32", "--seed", "1",
                   "--backend", "onnx-int8", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = [json.loads((project / "rounds" / f"r{t:03d}" / "metrics.json").read_text()) for t in (0, 1)]
    assert [m["scoring_backend"] for m in metrics] == ["embeddings:onnx", "onnx-int8"]
    assert json.loads((project / "embeddings.json").read_text())["backend"] == "onnx"
    assert (project / "rounds" / "r001" / "model" / "onnx" / "model.int8.onnx").is_file()
    assert -1 <= metrics[1]["kappa_test"]["kappa"] <= 1
