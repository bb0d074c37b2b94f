"""A causal LM as the student: the bundled SmolLM2-135M-Instruct with a last-token head, LoRA and full fine-tunes.

Real weights, real Webis tweets, no mocks. Kept small (40 tweets, at most 32 tokens, batches of 8) so that the
file runs in about a minute and a half on 2 cores; one LoRA fine-tune is shared by the tests of this module.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from curate.config import BUNDLED_LLM, StudentConfig
from curate.errors import CurateError
from curate.models.encoder import EncoderClassifier, Student, is_adapter_folder
from tests.conftest import LABELS, webis_rows

pytestmark = pytest.mark.slow

N_PER_LABEL = 20
EPOCHS = 3


def _settings(**over) -> StudentConfig:
    base = dict(
        model=BUNDLED_LLM,
        finetune="lora",
        learning_rate=2e-3,  # LoRA wants a larger step than a full fine-tune (5e-5)
        max_length=32,
        batch_size=8,
        presentations=1,  # epochs = min_epochs = max_epochs = EPOCHS
        min_epochs=EPOCHS,
        max_epochs=EPOCHS,
        threads=1,  # robust on a shared 2-core machine: 2 threads under load ran 15x slower here
    )
    base.update(over)
    return StudentConfig(**base)


@pytest.fixture(scope="module")
def data():
    """40 Webis tweets, 20 per label (the first ones of each), in file order."""
    picked, counts = [], {lab: 0 for lab in LABELS}
    for row in webis_rows(400):
        if counts[row["label"]] < N_PER_LABEL:
            counts[row["label"]] += 1
            picked.append(row)
    texts = [r["text"] for r in picked]
    targets = np.array([[r["label"] == lab for lab in LABELS] for r in picked], dtype=np.float32)
    return texts, targets


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    """(classifier after a LoRA fit, fit info, untrained probabilities, trained probabilities, saved folder)."""
    import torch

    texts, targets = data
    untrained = EncoderClassifier(LABELS, _settings())
    torch.manual_seed(0)  # the same head initialisation as fit(seed=0); LoRA's B starts at 0, so this is step 0
    p0 = untrained.predict_proba(texts, progress=False)
    clf = Student(LABELS, _settings())
    info = clf.fit(texts, targets, seed=0, progress=False)
    p1 = clf.predict_proba(texts, progress=False)
    folder = tmp_path_factory.mktemp("lora") / "model"
    clf.save(folder)
    return clf, info, p0, p1, folder


def _log_loss(p: np.ndarray, targets: np.ndarray) -> float:
    return float(-(targets * np.log(np.clip(p, 1e-7, 1))).sum(axis=1).mean())


def test_lora_fit_lowers_loss_and_changes_predictions(data, fitted):
    texts, targets = data
    clf, info, p0, p1, _ = fitted
    assert info["finetune"] == "lora" and info["epochs"] == EPOCHS and info["steps"] == EPOCHS * 5
    losses = info["epoch_losses"]
    print(f"LoRA epoch losses {np.round(losses, 3).tolist()}, seconds/epoch {np.round(info['epoch_seconds'], 1).tolist()}")
    assert len(losses) == EPOCHS and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
    assert p1.shape == (len(texts), 2) and np.allclose(p1.sum(axis=1), 1, atol=1e-4)
    assert np.abs(p1 - p0).max() > 0.1  # the head and adapters moved
    assert _log_loss(p1, targets) < _log_loss(p0, targets)  # ... towards the training labels


def test_only_lora_and_head_are_trainable(fitted):
    clf, info, *_ = fitted
    cfg = clf._model.config
    h, inter, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    kv = cfg.num_key_value_heads * (getattr(cfg, "head_dim", None) or h // cfg.num_attention_heads)
    r = clf.settings.lora_rank
    # all-linear: q, k, v, o, gate, up, down in every layer get A (r x in) and B (out x r); the head is 2 x h, no bias
    per_layer = r * ((h + h) + (h + kv) + (h + kv) + (h + h) + 2 * (h + inter) + (inter + h))
    expected = layers * per_layer + len(LABELS) * h
    names = [n for n, p in clf._model.named_parameters() if p.requires_grad]
    assert all("lora_A" in n or "lora_B" in n or ".score." in n for n in names), names[:5]
    assert sum("score" in n for n in names) == 1
    counts = clf.parameter_counts()
    assert counts["trainable"] == info["trainable_parameters"] == expected  # 2,443,392 for SmolLM2-135M, r = 8
    assert counts["trainable"] < 0.02 * counts["total"]


def test_save_is_small_and_reload_gives_the_same_probabilities(data, fitted):
    texts, _ = data
    _, _, _, p1, folder = fitted
    files = {p.name: p.stat().st_size for p in Path(folder).iterdir()}
    assert is_adapter_folder(folder) and "adapter_model.safetensors" in files and "model.safetensors" not in files
    assert sum(files.values()) < 20 * 2**20, files
    again = EncoderClassifier.load(folder, LABELS, _settings())
    assert again.finetune == "lora"
    assert np.allclose(again.predict_proba(texts, progress=False), p1, atol=1e-4)


def test_padding_does_not_change_an_items_probabilities(data, fitted):
    texts, _ = data
    clf, *_ = fitted
    short = min(texts, key=len)
    alone = clf.predict_proba([short], progress=False)
    in_batch = clf.predict_proba([short, *sorted(texts, key=len)[-3:]], progress=False)[0]
    assert np.allclose(alone[0], in_batch, atol=0.02)  # bf16: batch shapes change rounding a little


def test_continue_from_a_saved_lora_round(data, fitted):
    texts, targets = data
    _, _, _, p1, folder = fitted
    # lr ~ 0: one step leaves the weights where they were, so the predictions show where training started
    cont = EncoderClassifier(LABELS, _settings(learning_rate=1e-12, min_epochs=1, max_epochs=1),
                             init_from=folder)
    info = cont.fit(texts[:8], targets[:8], seed=1, progress=False)
    assert info["finetune"] == "lora" and info["steps"] == 1
    assert info["trainable_parameters"] < 0.02 * info["total_parameters"]
    assert np.allclose(cont.predict_proba(texts, progress=False), p1, atol=1e-3)


def test_full_fine_tune_of_a_causal_lm(data):
    import torch

    texts, targets = data
    clf = EncoderClassifier(LABELS, _settings(finetune="full", learning_rate=1e-4, min_epochs=1, max_epochs=1))
    clf._load(seed=0, train=True)
    before = {n: p.detach().clone() for n, p in clf._model.named_parameters() if n.endswith("layers.0.mlp.up_proj.weight")}
    info = clf.fit(texts[:16], targets[:16], seed=0, progress=False)
    print(f"full fine-tune: loss {info['epoch_losses']}, seconds/epoch {np.round(info['epoch_seconds'], 1).tolist()}")
    assert info["finetune"] == "full" and info["steps"] == 2 and math.isfinite(info["final_loss"])
    assert info["trainable_parameters"] == info["total_parameters"] > 100_000_000
    (name, w0), = before.items()
    assert not torch.equal(dict(clf._model.named_parameters())[name].detach(), w0)  # backbone weights moved
    assert clf._model.config.pad_token_id is not None


def test_cuda_device_without_a_gpu_is_a_one_line_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the no-GPU error path cannot be exercised")
    with pytest.raises(CurateError, match="no CUDA GPU") as err:
        EncoderClassifier(LABELS, _settings(device="cuda"))
    assert "\n" not in str(err.value)


def test_lora_fit_on_cuda(data, tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip(f"no CUDA GPU: torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'}) sees none")
    texts, targets = data
    clf = EncoderClassifier(LABELS, _settings(device="cuda", threads=None))
    info = clf.fit(texts, targets, seed=0, progress=False)
    print(f"CUDA LoRA epoch losses {np.round(info['epoch_losses'], 3).tolist()}, "
          f"seconds/epoch {np.round(info['epoch_seconds'], 2).tolist()}")
    assert info["device"] == "cuda" and next(clf._model.parameters()).device.type == "cuda"
    assert info["epoch_losses"][-1] < info["epoch_losses"][0]
    p = clf.predict_proba(texts, progress=False)
    assert p.shape == (len(texts), 2) and np.allclose(p.sum(axis=1), 1, atol=1e-3)
    clf.save(tmp_path / "model")
    again = EncoderClassifier.load(tmp_path / "model", LABELS, _settings(device="cuda", threads=None))
    assert np.allclose(again.predict_proba(texts, progress=False), p, atol=1e-3)
