"""The ``endpoint`` scout against a real OpenAI-compatible server: llama-cpp-python's server with the bundled
SmolLM2-135M-Instruct GGUF, started by ``python -m curate.models.endpoint`` (the launcher behind
``scripts/llama-server.sh``) on a free 127.0.0.1 port. The fake-transport tests at the end need no server."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from curate.config import ScoutConfig
from curate.errors import CurateError
from curate.models import endpoint
from curate.models.endpoint import EndpointScorer, normalise_token

from tests.conftest import LABELS, REPO, webis_rows

POLICY = (REPO / "examples" / "webis" / "policy.txt").read_text(encoding="utf-8").strip()
SEEDS = json.loads((REPO / "examples" / "webis" / "seed_examples.json").read_text(encoding="utf-8"))
SERVED = endpoint.BUNDLED_SERVED_NAME


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a llama-cpp-python server on the bundled GGUF."""
    try:
        import llama_cpp.server.app  # noqa: F401  (fastapi, uvicorn, sse-starlette, starlette-context, ...)
    except ImportError as exc:
        reason = f"llama-cpp-python's server cannot be imported ({exc}); pip install -e '.[llm]' (compiles llama.cpp, about 12 CPU-minutes; CI leaves it out)"
        print(reason)
        pytest.skip(reason)
    try:
        from curate.models.resolve import bundled_gguf_path

        bundled_gguf_path()
    except CurateError as exc:
        print(exc)
        pytest.skip(str(exc))
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("w") as fh:
        # One thread: llama.cpp's spinning worker threads slow down badly when the 2 cores are shared.
        proc = subprocess.Popen(
            [sys.executable, "-m", "curate.models.endpoint", "--port", str(port), "--n-ctx", "1024", "--threads", "1"],
            stdout=fh, stderr=subprocess.STDOUT, cwd=REPO,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the llama server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the llama server did not answer within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _scorer(url: str, **kw) -> EndpointScorer:
    return EndpointScorer(LABELS, "clickbait", POLICY, endpoint_url=url, model="bundled:SmolLM2-135M-Instruct", **kw)


@pytest.mark.slow
def test_scores_webis_tweets(server):
    texts = [r["text"] for r in webis_rows(20)]
    scorer = _scorer(server, concurrency=4)
    lp = scorer.label_logprobs(texts)
    assert lp.shape == (20, 2) and np.isfinite(lp).all() and (lp <= 0).all()
    proba = scorer.proba_from_logprobs(lp)
    assert proba.shape == (20, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # Contextual calibration moved the scores: the raw softmax differs from the calibrated one.
    offsets = scorer.calibration_offsets()
    assert offsets.shape == (2,) and np.isfinite(offsets).all() and abs(offsets[0] - offsets[1]) > 1e-3
    raw = scorer.proba_from_logprobs(lp, calibrated=False)
    np.testing.assert_allclose(raw.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(raw - proba).max() > 1e-3
    # Determinism: the same texts again (in another order, so the server's prompt cache differs) through
    # predict_proba give the same probabilities (temperature 0; float noise of the KV-cache reuse only).
    again = scorer.predict_proba(texts[:6][::-1], progress=False)[::-1]
    np.testing.assert_allclose(again, proba[:6], atol=1e-3)
    info = scorer.info
    json.dumps(info)
    assert info["endpoint_url"] == server and info["served_model"] == SERVED
    assert info["requests"] >= 20 + 3 + 6 and info["errors"] == 0 and info["items_per_s"] > 0
    assert set(info["calibration_offsets"]) == set(LABELS)
    print(f"\nendpoint scout: {info['items_per_s']} items/s, offsets {info['calibration_offsets']}")


@pytest.mark.slow
def test_completions_api_with_template_and_demonstrations(server):
    settings = ScoutConfig(
        kind="endpoint", endpoint_url=server, seed_examples=SEEDS, demonstrations=1, calibrate=False,
        template="{prompt}\n\n{demonstrations}Text: {text}\nIs this text clickbait or no-clickbait? It is",
    )
    scorer = EndpointScorer.from_config(LABELS, "clickbait", POLICY, settings)
    assert "Answer: clickbait" in scorer.render("x") and "Answer: no-clickbait" in scorer.render("x")
    proba = scorer.predict_proba([r["text"] for r in webis_rows(3)], progress=False)
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert scorer.info["api"] == "completions" and scorer.info["calibration_offsets"] == {lab: 0.0 for lab in LABELS}


@pytest.mark.slow
def test_unknown_model_is_a_clear_error(server):
    scorer = EndpointScorer(LABELS, "clickbait", POLICY, endpoint_url=server, model="no-such-model")
    with pytest.raises(CurateError, match="model 'no-such-model' is not served") as err:
        scorer.predict_proba(["a headline"], progress=False)
    assert SERVED in str(err.value) and "\n" not in str(err.value)


def test_unreachable_server_names_the_url(monkeypatch):
    monkeypatch.setattr(endpoint, "_RETRY_DELAYS", (0.05, 0.1))
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    scorer = _scorer(url, timeout_s=5)
    with pytest.raises(CurateError, match="cannot connect") as err:
        scorer.predict_proba(["a headline"], progress=False)
    msg = str(err.value)
    assert url in msg and "3 attempts" in msg and "\n" not in msg


# ------------------------------------------------------------------------- without a server (fake transport)


def _chat_answer(top: list[tuple[str, float]] | None, finish: str = "length") -> dict:
    logprobs = None if top is None else {"content": [{"token": top[0][0], "logprob": top[0][1], "top_logprobs": [
        {"token": t, "logprob": lp, "bytes": None} for t, lp in top]}] if top else []}
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": top[0][0] if top else ""},
                         "logprobs": logprobs, "finish_reason": finish}]}


def _fake(handler) -> httpx.MockTransport:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": [{"id": "m", "object": "model"}]})
        return handler(request)

    return httpx.MockTransport(route)


def test_fake_server_probabilities_and_calibration():
    def handler(request):
        text = json.loads(request.content)["messages"][0]["content"].rsplit("Text: ", 1)[1]
        if text.startswith(("N/A", "\nAnswer", "[MASK]")):  # content-free: the model leans to "no"
            return httpx.Response(200, json=_chat_answer([("No", math.log(0.6)), ("click", math.log(0.2))]))
        return httpx.Response(200, json=_chat_answer([("click", math.log(0.5)), (" no", math.log(0.3)),
                                                      ("No", math.log(0.1)), ("The", math.log(0.05))]))

    scorer = EndpointScorer(LABELS, "clickbait", "policy", endpoint_url="http://fake/v1", model="m",
                            transport=_fake(handler))
    proba = scorer.predict_proba(["x", "y", "x"], progress=False)
    # raw: no = 0.3 + 0.1 = 0.4, clickbait = 0.5; calibration divides by the content-free (0.75, 0.25).
    np.testing.assert_allclose(scorer.proba_from_logprobs(scorer.label_logprobs(["x"]), calibrated=False),
                               [[0.4 / 0.9, 0.5 / 0.9]], rtol=1e-5)
    expected = np.array([0.4 / 0.75, 0.5 / 0.25])
    np.testing.assert_allclose(proba, np.tile(expected / expected.sum(), (3, 1)), rtol=1e-5)
    info = scorer.info
    assert info["unique_items"] == 3 and info["items"] == 4  # "x" twice in one call was sent once
    # A prior of 0.25 maps content-free inputs to (0.75, 0.25) instead of uniform.
    scorer.prior = 0.25
    shifted = expected * [0.75, 0.25]
    np.testing.assert_allclose(scorer.proba_from_logprobs(scorer.label_logprobs(["x"])), [shifted / shifted.sum()],
                               rtol=1e-5)


def test_token_matching_rules():
    scorer = EndpointScorer(["no", "not sure", "yes"], "yes", "p", endpoint_url="http://fake/v1", model="m")
    lp, missing = scorer.label_logprobs_from_top([("Ġno", -1.0), ("▁No", -2.0), ("not", -3.0), ("Yes.", -4.0),
                                                  ("y", -5.0), ("maybe", -6.0)])
    # "no"/"No": exactly "no" (also a prefix of "not sure": the exact match wins); "not": only "not sure";
    # "Yes." and "y": "yes".
    np.testing.assert_allclose(lp, [np.logaddexp(-1, -2), -3.0, np.logaddexp(-4, -5)])
    assert not missing.any()
    lp, missing = scorer.label_logprobs_from_top([("maybe", -0.5), ("no", -1.5)])
    np.testing.assert_allclose(lp, [-1.5, -1.5 - math.log(2), -1.5 - math.log(2)])
    assert missing.tolist() == [False, True, True]
    assert normalise_token("  ĠClickbait\n") == "clickbait"
    with pytest.raises(CurateError, match="differ after case-folding"):
        EndpointScorer(["a", "b"], "a", "p", endpoint_url="u", model="m", verbalizers={"a": "Yes", "b": "yes"})


def test_server_without_logprobs_is_a_clear_error():
    transport = _fake(lambda request: httpx.Response(200, json=_chat_answer(None)))
    scorer = EndpointScorer(LABELS, "clickbait", "p", endpoint_url="http://fake/v1", model="m", transport=transport)
    with pytest.raises(CurateError, match="must support logprobs"):
        scorer.predict_proba(["x"], progress=False)


def test_end_of_text_first_gives_equal_scores_and_5xx_is_retried(monkeypatch):
    monkeypatch.setattr(endpoint, "_RETRY_DELAYS", (0.01, 0.01, 0.01))
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] <= 2:
            return httpx.Response(503, json={"error": {"message": "loading"}})
        return httpx.Response(200, json=_chat_answer([], finish="stop"))

    scorer = EndpointScorer(LABELS, "clickbait", "p", endpoint_url="http://fake/v1", model="m", calibrate=False,
                            transport=_fake(handler), concurrency=1)
    np.testing.assert_allclose(scorer.predict_proba(["x"], progress=False), [[0.5, 0.5]])
    assert scorer.info["retries"] == 2 and scorer.info["empty_answers"] == 1

    always = EndpointScorer(LABELS, "clickbait", "p", endpoint_url="http://fake/v1", model="m", calibrate=False,
                            transport=_fake(lambda r: httpx.Response(500, text="boom")))
    with pytest.raises(CurateError, match="HTTP 500: boom after 4 attempts"):
        always.predict_proba(["x"], progress=False)


def test_from_config_errors(monkeypatch):
    with pytest.raises(CurateError, match="needs scout.endpoint_url"):
        EndpointScorer.from_config(LABELS, "clickbait", "p", ScoutConfig(kind="endpoint"))
    monkeypatch.delenv("CURATE_TEST_NO_SUCH_KEY", raising=False)
    settings = ScoutConfig(kind="endpoint", endpoint_url="http://x/v1", api_key_env="CURATE_TEST_NO_SUCH_KEY")
    with pytest.raises(CurateError, match="CURATE_TEST_NO_SUCH_KEY"):
        EndpointScorer.from_config(LABELS, "clickbait", "p", settings)
    monkeypatch.setenv("CURATE_TEST_NO_SUCH_KEY", "sk-test")
    scorer = EndpointScorer.from_config(LABELS, "clickbait", "p", settings)
    assert scorer.api_key == "sk-test" and scorer.model == SERVED
