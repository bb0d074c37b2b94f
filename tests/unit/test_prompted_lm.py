"""The prompted-lm scout with the real bundled SmolLM2-135M-Instruct on Webis-style headlines (no mocks)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curate.config import BUNDLED_LLM, ScoutConfig
from curate.errors import CurateError
from curate.models.prompted_lm import PromptedLMScorer, select_demonstrations
from tests.conftest import REPO
from tests.unit.synthetic import LABELS

pytestmark = pytest.mark.slow

POLICY = (REPO / "examples" / "webis" / "policy.txt").read_text(encoding="utf-8")
SEEDS = json.loads((REPO / "examples" / "webis" / "seed_examples.json").read_text(encoding="utf-8"))
# Eight headlines in the style of Webis Clickbait 2017 posts (written for this test), teasers and plain news mixed.
HEADLINES = [
    "Europol links 3,500 names in leaked files to suspected criminals",
    "The secret to truly great chicken soup",
    "Police recruits in Kabul face down their fears to serve",
    "Fewer viewers are watching football this season, ratings show",
    "You won't believe what this quarterback said about his struggles",
    "Nearly 2,000 residents sign up for a countrywide gift exchange",
    "Will the president-elect let his family run his business empire?",
    "Competition regulator does not oppose the gym chain takeover",
]


@pytest.fixture(scope="module")
def lm():
    """The bundled model and tokenizer, loaded once for the module."""
    return PromptedLMScorer.load_model(BUNDLED_LLM)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return list(HEADLINES)


def make(lm, k: int = 0, **kw) -> PromptedLMScorer:
    kw.setdefault("precision", "fp32")
    kw.setdefault("batch_size", 6)
    return PromptedLMScorer(LABELS, "clickbait", POLICY, model=BUNDLED_LLM, preloaded=lm,
                            demonstrations=select_demonstrations(LABELS, SEEDS, k), **kw)


@pytest.fixture(scope="module")
def zero_shot(lm):
    return make(lm)


@pytest.fixture(scope="module")
def zero_raw(zero_shot, texts):
    """``(N, K)`` uncalibrated normalised label log-probabilities of the zero-shot prompt."""
    return zero_shot.raw_log_probs(texts)


@pytest.fixture(scope="module")
def zero_cal(zero_shot, texts):
    """``(N, K)`` calibrated probabilities of the zero-shot prompt (the default)."""
    return zero_shot.predict_proba(texts, progress=False)


def test_proba_shape_rows_sum_to_one_deterministic_and_info(zero_shot, zero_cal, texts):
    assert zero_cal.shape == (len(texts), 2) and zero_cal.dtype == np.float32
    assert np.allclose(zero_cal.sum(axis=1), 1, atol=1e-5)
    again = zero_shot.predict_proba(texts, progress=True)
    assert np.array_equal(zero_cal, again)  # deterministic
    info = json.loads(json.dumps(zero_shot.info))  # JSON-serialisable
    assert info["items"] == len(texts) and info["items_per_s"] > 0 and info["tokens_per_s"] > 0
    assert set(info["calibration_offsets"]) == set(LABELS) and info["calibrated"] is True
    assert info["verbalizer_tokens"]["clickbait"] and info["score"] == "sum"
    assert info["model_path"].endswith("SmolLM2-135M-Instruct") and info["prefix_tokens"] > 50


def test_calibration_subtracts_the_content_free_mean(zero_shot, zero_raw, zero_cal, lm, texts):
    assert np.allclose(np.exp(zero_raw).sum(axis=1), 1)
    offsets = zero_shot.calibration_offsets()
    assert np.allclose(offsets, zero_shot.raw_log_probs(["N/A", "", "[MASK]"]).mean(axis=0))
    z = zero_raw - offsets
    assert np.allclose(zero_cal, np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), atol=1e-5)
    uncal = zero_shot.predict_proba(texts[:4], progress=False, calibrated=False)
    assert np.allclose(uncal, np.exp(zero_raw[:4]), atol=1e-5)
    assert np.abs(zero_cal - np.exp(zero_raw)).max() > 0.05  # calibration moves the scores
    raw_only = make(lm, calibrate=False)
    assert np.allclose(raw_only.predict_proba(texts[:4], progress=False), uncal, atol=1e-6)
    assert "calibration_offsets" not in raw_only.info  # the content-free inputs were never scored


def test_cached_prefix_matches_the_full_prompt(lm, texts):
    s = make(lm, k=1)  # demonstrations: a longer prefix, multi-token verbalizers: the second pass too
    cached = s.label_log_probs(texts[:4])
    full = s.label_log_probs(texts[:4], use_cache_prefix=False)
    assert np.allclose(cached, full, atol=1e-4, rtol=0)
    first = make(lm, score="first", template="{prompt}\n\n{demonstrations}Tweet: {text}\nAnswer:")
    assert first.verbalizers["clickbait"] == " clickbait" and first.parts.lead == " "
    assert np.allclose(first.label_log_probs(texts[:2]), first.label_log_probs(texts[:2], use_cache_prefix=False),
                       atol=1e-4, rtol=0)


def test_prompt_split_is_at_a_clean_token_boundary(zero_shot, texts):
    tok, parts = zero_shot._tokenizer, zero_shot.parts
    for t in texts:
        whole = tok(parts.rendered.replace("{text}", t), add_special_tokens=False)["input_ids"]
        assert whole == parts.prefix_ids + tok(t, add_special_tokens=False)["input_ids"] + parts.tail_ids


def test_demonstrations_change_the_scores(zero_raw, lm, texts):
    few = make(lm, k=2)
    assert len(few.demonstrations) == 4 and "You won't believe" in few.parts.rendered
    assert np.abs(few.raw_log_probs(texts[:4]) - zero_raw[:4]).max() > 0.05


def test_from_config_and_clear_errors(lm):
    settings = ScoutConfig(kind="prompted-lm", demonstrations=2, seed_examples=SEEDS,
                           verbalizers={"clickbait": "yes", "no-clickbait": "no"}, device="cpu")
    s = PromptedLMScorer.from_config(LABELS, "clickbait", POLICY, settings)
    assert [lab for _, lab in s.demonstrations] == LABELS * 2
    assert s.verbalizers == {"no-clickbait": "no", "clickbait": "yes"}
    with pytest.raises(CurateError, match="scout.demonstrations"):
        PromptedLMScorer.from_config(LABELS, "clickbait", POLICY, settings.model_copy(update={"demonstrations": 6}))
    with pytest.raises(CurateError, match=r"\{text\}"):
        make(lm, template="{prompt}\nAnswer:")
    with pytest.raises(CurateError, match="tokenises to nothing"):
        make(lm, verbalizers={"clickbait": ""})
    with pytest.raises(CurateError, match="not in task.labels"):
        make(lm, verbalizers={"spam": "spam"})
    with pytest.raises(CurateError, match="same first token"):
        make(lm, verbalizers={"clickbait": "no way", "no-clickbait": "no"}, score="first")
    with pytest.raises(CurateError, match=r"\{demonstrations\}"):
        make(lm, k=1, template="{prompt}\nTweet: {text}\nAnswer:")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(CurateError, match="CUDA is not available"):
            make(lm, device="cuda")
