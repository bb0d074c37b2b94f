"""Round-0 scorer that asks an OpenAI-compatible server (vLLM, llama.cpp's server, llama-cpp-python,
Ollama, a hosted API) for the log-probabilities of the label answers.

For each item one request is sent, with the policy prompt, ``demonstrations`` seed examples per label and
the item, ``max_tokens=1``, ``temperature=0``, ``logprobs=true`` and ``top_logprobs=k``:

- ``template = None``: ``POST {url}/chat/completions`` with one user message (the server applies the
  model's chat template); the scores are read from ``choices[0].logprobs.content[0].top_logprobs``
  (a list of ``{token, logprob}``), as in the OpenAI chat-completions API reference ("logprobs",
  "top_logprobs": at most 20 per position).
- ``template`` given (placeholders ``{prompt}`` ``{demonstrations}`` ``{text}``): ``POST {url}/completions``
  with the filled-in template as the raw prompt and ``logprobs=k`` (the legacy completions API); the scores
  are read from ``choices[0].logprobs.top_logprobs[0]`` (a ``{token: logprob}`` map).

**Label log-probabilities (natural log).** Only the first generated position is read. A returned token
matches a label when, after *normalisation* (leading/trailing white space and the byte-level BPE / SentencePiece
word markers ``Ġ`` ``▁`` removed, then ``str.casefold``), it is a non-empty prefix of the label's normalised
verbalizer (``verbalizers[label]``, default the label itself), or it is the whole verbalizer followed only by
punctuation (``"Yes."``). So ``"No"``, ``" no"`` and ``"no"`` all count for the verbalizer ``no-clickbait``, and
``"click"`` for ``clickbait``. A token that is a prefix of several verbalizers counts for the one it equals
exactly, else for none (it cannot tell them apart). A label's log-probability is the log-sum-exp of its
matching entries (the case and spacing variants of the same first answer token). A label with no matching
entry among the top ``k`` gets a floor: the smallest returned log-probability minus ``log 2`` (its true value is
below every returned one; half the smallest returned probability is a conservative guess). When the model
ends at once (end-of-text as the first token, so the server reports no position), every label gets the same
value (counted in ``info["empty_answers"]``). The ``K`` label log-probabilities are then normalised with a
log-softmax.

**Contextual calibration** (Zhao, Wallace, Feng, Klein and Singh 2021, "Calibrate Before Use: Improving
Few-Shot Performance of Language Models", ICML): the same prompt is sent with each ``content_free`` input
(``"N/A"``, ``""``, ``"[MASK]"``) in place of the item; the offset ``c`` is the mean of their normalised label
log-probability vectors, and every item's normalised vector has ``c`` subtracted before the softmax (the
diagonal ``W = diag(p_cf)^-1`` of the paper in log space, with ``p_cf`` the geometric rather than the
arithmetic mean over the content-free inputs). A content-free input is thereby mapped to the uniform
distribution; with ``prior`` other than ``1/K`` it is mapped instead to ``prior`` on the positive label and
``(1 - prior) / (K - 1)`` on each other label (``log`` of that vector is added). Without calibration the
prior is not used: ``p = softmax(label log-probabilities)``.

Requests run ``concurrency`` at a time on a thread pool sharing one ``httpx.Client``; identical texts are sent
once. Connection errors, time-outs, HTTP 429 and 5xx are retried with exponential back-off (0.5, 1, 2 s, plus
jitter). Before scoring, ``GET {url}/models`` checks that ``model`` is served (the llama-cpp-python server
silently answers with its default model for an unknown name). llama.cpp's own server
(https://github.com/ggml-org/llama.cpp/tree/master/tools/server) and llama-cpp-python's
(``python -m llama_cpp.server``, which needs ``logits_all`` for logprobs; it is on by default) both return
``top_logprobs``.

``python -m curate.models.endpoint [--port 8080]`` serves the bundled SmolLM2-135M-Instruct GGUF with
llama-cpp-python's server (``pip install 'llama-cpp-python[server]'``) on 127.0.0.1, under the model name
``SmolLM2-135M-Instruct`` (``scripts/llama-server.sh`` runs it).
"""

from __future__ import annotations

import math
import os
import random
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from curate.errors import CurateError
from curate.models.calibration import label_log_prior, log_softmax, select_demonstrations
from curate.progress import progress_callback

if TYPE_CHECKING:
    import httpx

    from curate.config import ScoutConfig

BUNDLED_PREFIX = "bundled:"
BUNDLED_SERVED_NAME = "SmolLM2-135M-Instruct"
DEFAULT_CONTENT_FREE = ("N/A", "", "[MASK]")
_MARKERS = " \t\r\n\u0120\u2581\u010a"  # white space, byte-level BPE "Ġ"/"Ċ", SentencePiece "▁"
_RETRY_DELAYS = (0.5, 1.0, 2.0)
_PUNCT_ONLY = re.compile(r"^[\W_]*$")


def normalise_token(token: str) -> str:
    """A returned token or a verbalizer as compared: outer white space and word markers removed, case-folded."""
    return token.strip(_MARKERS).casefold()


def _logsumexp(values: Sequence[float]) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


class EndpointScorer:
    """Class probabilities from an OpenAI-compatible server's top log-probabilities (see the module docstring).

    Args:
        labels: the ``K`` task labels, in the column order of the returned probabilities.
        positive: the positive label (receives ``prior`` under calibration).
        prompt: the policy prompt.
        endpoint_url: base URL of the API, up to and including ``/v1`` (``http://127.0.0.1:8080/v1``).
        model: the served model name (``bundled:NAME`` is sent as ``NAME``).
        template: ``None`` for the chat API, else a completions prompt with ``{prompt}``
            ``{demonstrations}`` ``{text}``.
        verbalizers: label -> answer text (default: the label).
        seed_examples: label -> example texts; the first ``demonstrations`` of each are shown.
        demonstrations: examples per label in the prompt.
        calibrate: apply contextual calibration with ``content_free`` inputs.
        content_free: the content-free inputs.
        prior: the positive share a content-free input is calibrated to (``0 < prior < 1``).
        api_key: sent as ``Authorization: Bearer KEY`` when given.
        top_logprobs: ``k``, 1..20.
        concurrency: requests in flight.
        timeout_s: per-request time-out in seconds.
        transport: an ``httpx`` transport to send the requests through (tests, proxies); default: the network.

    Raises:
        CurateError: verbalizers empty or not distinct after normalisation, or an invalid argument.
    """

    def __init__(
        self,
        labels: Sequence[str],
        positive: str,
        prompt: str,
        *,
        endpoint_url: str,
        model: str,
        template: str | None = None,
        verbalizers: Mapping[str, str] | None = None,
        seed_examples: Mapping[str, Sequence[str]] | None = None,
        demonstrations: int = 0,
        calibrate: bool = True,
        content_free: Sequence[str] = DEFAULT_CONTENT_FREE,
        prior: float = 0.5,
        api_key: str | None = None,
        top_logprobs: int = 20,
        concurrency: int = 4,
        timeout_s: float = 60.0,
        transport: "httpx.BaseTransport | None" = None,
    ) -> None:
        self.labels = list(labels)
        if positive not in self.labels:
            raise CurateError(f"positive label {positive!r} is not one of the labels {self.labels}")
        if not 1 <= top_logprobs <= 20:
            raise CurateError(f"scout.top_logprobs must be in 1..20 (the OpenAI API's limit), got {top_logprobs}")
        if not 0 < prior < 1:
            raise CurateError(f"scout.prior must be in (0, 1), got {prior}")
        if calibrate and not content_free:
            raise CurateError("scout.calibrate is on but scout.content_free is empty; give content-free inputs")
        self.positive = positive
        self.prompt = prompt
        self.url = endpoint_url.rstrip("/")
        self.model = model[len(BUNDLED_PREFIX):] if model.startswith(BUNDLED_PREFIX) else model
        self.template = template
        self.verbalizers = {lab: (verbalizers or {}).get(lab, lab) for lab in self.labels}
        norm = [normalise_token(v) for v in self.verbalizers.values()]
        if any(not v for v in norm):
            raise CurateError(f"scout.verbalizers: every label needs a non-empty answer text, got {self.verbalizers}")
        if len(set(norm)) != len(norm):
            raise CurateError(f"scout.verbalizers must differ after case-folding, got {self.verbalizers}")
        self._norm_verbalizers = norm
        self.demonstrations = self._demonstration_text(seed_examples or {}, demonstrations)
        self.calibrate = calibrate
        self.content_free = list(content_free)
        self.prior = prior
        self.api_key = api_key
        self.top_logprobs = top_logprobs
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.transport = transport
        k = len(self.labels)
        self._offsets: np.ndarray | None = None
        self._lock = threading.Lock()
        self._stats = {"requests": 0, "retries": 0, "errors": 0, "missing": np.zeros(k, dtype=np.int64),
                       "no_label_in_top_k": 0, "empty_answers": 0, "items": 0, "unique_items": 0, "sent": 0,
                       "seconds": 0.0}

    @property
    def log_prior(self) -> np.ndarray:
        """``(K,)`` log of the calibration target: ``prior`` on the positive label, the rest shared equally
        (:func:`curate.models.calibration.label_log_prior`)."""
        return label_log_prior(self.labels, self.positive, self.prior)

    @classmethod
    def from_config(cls, labels: list[str], positive: str, prompt: str, settings: "ScoutConfig") -> "EndpointScorer":
        """Build from ``[scout]`` settings (``kind = "endpoint"``).

        Raises:
            CurateError: ``endpoint_url`` is not set, ``api_key_env`` names an unset variable, or the
                verbalizers are invalid.
        """
        if not settings.endpoint_url:
            raise CurateError("scout.kind = 'endpoint' needs scout.endpoint_url (e.g. http://127.0.0.1:8080/v1); "
                              "set it in curate.toml")
        api_key = None
        if settings.api_key_env:
            api_key = os.environ.get(settings.api_key_env)
            if not api_key:
                raise CurateError(f"scout.api_key_env is {settings.api_key_env!r} but that environment variable is "
                                  "not set; export it with the endpoint's API key")
        return cls(
            labels, positive, prompt,
            endpoint_url=settings.endpoint_url, model=settings.model, template=settings.template,
            verbalizers=settings.verbalizers, seed_examples=settings.seed_examples,
            demonstrations=settings.demonstrations, calibrate=settings.calibrate,
            content_free=settings.content_free, prior=settings.prior, api_key=api_key,
            top_logprobs=settings.top_logprobs, concurrency=settings.concurrency, timeout_s=settings.timeout_s,
        )

    # ----------------------------------------------------------------------------------------- prompts

    def _demonstration_text(self, seeds: Mapping[str, Sequence[str]], k: int) -> str:
        """The first ``k`` seed examples of each label, interleaved across labels, as ``Text/Answer`` blocks.

        Raises:
            CurateError: a label has fewer than ``k`` seed examples.
        """
        return "".join(f"Text: {text}\nAnswer: {self.verbalizers[lab]}\n\n"
                       for text, lab in select_demonstrations(self.labels, seeds, k))

    def render(self, text: str) -> str:
        """The prompt sent for ``text``: the chat API's user message, or the filled-in ``template``."""
        if self.template is not None:
            return (self.template.replace("{prompt}", self.prompt)
                    .replace("{demonstrations}", self.demonstrations).replace("{text}", text))
        choices = ", ".join(self.verbalizers[lab] for lab in self.labels)
        return (f"{self.prompt}\n\nAnswer with exactly one of: {choices}.\n\n{self.demonstrations}"
                f"Text: {text}\nAnswer:")

    def _body(self, text: str) -> tuple[str, dict]:
        common = {"model": self.model, "max_tokens": 1, "temperature": 0}
        if self.template is None:
            return "/chat/completions", {**common, "messages": [{"role": "user", "content": self.render(text)}],
                                         "logprobs": True, "top_logprobs": self.top_logprobs}
        return "/completions", {**common, "prompt": self.render(text), "logprobs": self.top_logprobs}

    # ----------------------------------------------------------------------------------------- HTTP

    def _client(self) -> "httpx.Client":
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        return httpx.Client(headers=headers, timeout=self.timeout_s, limits=limits, transport=self.transport)

    def _request(self, client: "httpx.Client", method: str, path: str, body: dict | None = None) -> "httpx.Response":
        """One request with retries on connection errors, time-outs, 429 and 5xx.

        Raises:
            CurateError: unreachable after the retries, or a 5xx/429 after the retries.
        """
        import httpx

        url = self.url + path
        for attempt in range(len(_RETRY_DELAYS) + 1):
            with self._lock:
                self._stats["requests"] += 1
            try:
                resp = client.request(method, url, json=body)
            except httpx.TimeoutException as exc:
                problem = f"no answer within scout.timeout_s = {self.timeout_s:g} s ({type(exc).__name__})"
            except httpx.TransportError as exc:  # connection refused, DNS, reset, ...
                problem = f"cannot connect ({type(exc).__name__}: {exc})"
            else:
                if resp.status_code < 500 and resp.status_code != 429:
                    return resp
                problem = f"HTTP {resp.status_code}: {_snippet(resp)}"
            with self._lock:
                self._stats["errors"] += 1
            if attempt < len(_RETRY_DELAYS):
                with self._lock:
                    self._stats["retries"] += 1
                time.sleep(_RETRY_DELAYS[attempt] * (1 + 0.25 * random.random()))
        hint = ("start the server (e.g. scripts/llama-server.sh) or fix scout.endpoint_url"
                if problem.startswith("cannot connect") else "check the server's log")
        raise CurateError(f"endpoint {url}: {problem} after {len(_RETRY_DELAYS) + 1} attempts; {hint}")

    def _check_model(self, client: "httpx.Client") -> None:
        """``GET /models``: the server is reachable, the key accepted, and ``model`` is served.

        Raises:
            CurateError: unreachable, key rejected, or ``model`` not among the served models.
        """
        resp = self._request(client, "GET", "/models")
        if resp.status_code in (401, 403):
            raise CurateError(f"endpoint {self.url}/models: HTTP {resp.status_code}, the API key was rejected; "
                              "set scout.api_key_env to the variable holding a valid key")
        if resp.status_code != 200:  # not every server lists models; the completion request will tell
            return
        try:
            served = [str(m["id"]) for m in resp.json().get("data", [])]
        except (ValueError, TypeError, KeyError, AttributeError):
            return
        if served and self.model not in served and f"{self.model}:latest" not in served:  # Ollama's tags
            raise CurateError(f"endpoint {self.url}: model {self.model!r} is not served there; the server has "
                              f"{served}; set scout.model to one of them")

    def _label_logprobs_one(self, client: "httpx.Client", text: str) -> tuple[np.ndarray, np.ndarray]:
        """``(K,)`` label log-probabilities of one text and ``(K,)`` bool "was a floor"."""
        path, body = self._body(text)
        resp = self._request(client, "POST", path, body)
        if resp.status_code != 200:
            detail = _snippet(resp)
            if resp.status_code in (401, 403):
                raise CurateError(f"endpoint {self.url}{path}: HTTP {resp.status_code}, the API key was rejected; "
                                  "set scout.api_key_env to the variable holding a valid key")
            if "model" in detail.lower() and resp.status_code in (400, 404):
                raise CurateError(f"endpoint {self.url}{path}: model {self.model!r} rejected "
                                  f"(HTTP {resp.status_code}: {detail}); set scout.model to a served model")
            if "logprob" in detail.lower():
                raise CurateError(f"endpoint {self.url}{path}: the server refused logprobs (HTTP {resp.status_code}: "
                                  f"{detail}); the endpoint scout needs a server that returns top_logprobs")
            raise CurateError(f"endpoint {self.url}{path}: HTTP {resp.status_code}: {detail}")
        try:
            top = _top_logprobs(resp.json(), chat=self.template is None)
        except ValueError:
            top = None
        if top is None:
            raise CurateError(f"endpoint {self.url}{path}: the answer has no log-probabilities; the server must "
                              "support logprobs/top_logprobs (vLLM, llama.cpp's server, llama-cpp-python with "
                              "logits_all, OpenAI chat models)")
        if not top:  # the model ended at once (end-of-text first): no label was chosen; all labels get the floor
            with self._lock:
                self._stats["empty_answers"] += 1
        return self.label_logprobs_from_top(top)

    def label_logprobs_from_top(self, top: Sequence[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Map one position's ``(token, logprob)`` pairs to the labels (rules in the module docstring).

        Returns:
            ``(K,)`` float64 natural-log probabilities (floors where a label is missing) and ``(K,)`` bool,
            True where the floor was used.
        """
        matched: list[list[float]] = [[] for _ in self.labels]
        for token, lp in top:
            t = normalise_token(token)
            if not t or not math.isfinite(lp):
                continue
            hits = [j for j, v in enumerate(self._norm_verbalizers)
                    if v.startswith(t) or (t.startswith(v) and _PUNCT_ONLY.match(t[len(v):]))]
            if len(hits) > 1:
                exact = [j for j in hits if self._norm_verbalizers[j] == t]
                hits = exact if len(exact) == 1 else []
            if len(hits) == 1:
                matched[hits[0]].append(float(lp))
        finite = [float(lp) for _, lp in top if math.isfinite(lp)]
        floor = (min(finite) if finite else 0.0) - math.log(2.0)  # only differences between labels matter
        missing = np.array([not m for m in matched])
        return np.array([_logsumexp(m) if m else floor for m in matched]), missing

    # ----------------------------------------------------------------------------------------- scoring

    def label_logprobs(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """The ``(N, K)`` float64 label log-probabilities (natural log, unnormalised, floors included).
        Identical texts are sent once.

        Raises:
            CurateError: server unreachable, model not served, no logprobs returned, or an HTTP error.
        """
        return self._label_logprobs(texts, progress=progress, description="scoring with the endpoint")

    def _label_logprobs(self, texts: Sequence[str], *, progress: bool, description: str,
                        content_free: bool = False) -> np.ndarray:
        texts = [str(t) for t in texts]
        unique = list(dict.fromkeys(texts))
        out = np.zeros((len(unique), len(self.labels)))
        missing = np.zeros((len(unique), len(self.labels)), dtype=bool)
        t0 = time.perf_counter()
        with self._client() as client:
            self._check_model(client)
            with progress_callback(description, total=len(unique), enabled=progress) as advance, \
                    ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                futures: dict[Future, int] = {pool.submit(self._label_logprobs_one, client, t): i
                                              for i, t in enumerate(unique)}
                pending = set(futures)
                try:
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            out[futures[fut]], missing[futures[fut]] = fut.result()
                        advance(len(done))
                except BaseException:
                    for fut in pending:
                        fut.cancel()
                    raise
        with self._lock:
            self._stats["seconds"] += time.perf_counter() - t0
            self._stats["sent"] += len(unique)
            if not content_free:
                self._stats["items"] += len(texts)
                self._stats["unique_items"] += len(unique)
                self._stats["missing"] += missing.sum(axis=0)
                self._stats["no_label_in_top_k"] += int(missing.all(axis=1).sum())
        index = {t: i for i, t in enumerate(unique)}
        return out[[index[t] for t in texts]] if texts else np.zeros((0, len(self.labels)))

    def calibration_offsets(self) -> np.ndarray:
        """``(K,)`` mean normalised label log-probabilities of the content-free inputs (zeros when
        ``calibrate`` is off); computed once.

        Raises:
            CurateError: as ``label_logprobs``.
        """
        if not self.calibrate:
            return np.zeros(len(self.labels))
        if self._offsets is None:
            lp = self._label_logprobs(self.content_free, progress=False, description="content-free inputs",
                                      content_free=True)
            self._offsets = log_softmax(lp).mean(axis=0)
        return self._offsets

    def proba_from_logprobs(self, logprobs: np.ndarray, *, calibrated: bool | None = None) -> np.ndarray:
        """``(N, K)`` float32 probabilities from ``(N, K)`` label log-probabilities: the softmax, after
        subtracting the calibration offsets and adding the log prior when ``calibrated`` (default:
        ``self.calibrate``)."""
        z = log_softmax(np.asarray(logprobs, dtype=np.float64).reshape(-1, len(self.labels)))
        if self.calibrate if calibrated is None else calibrated:
            z = z - self.calibration_offsets() + self.log_prior
        return np.exp(log_softmax(z)).astype(np.float32)

    def predict_proba(self, texts: Sequence[str], *, progress: bool = True) -> np.ndarray:
        """Class probabilities for ``N`` texts.

        Args:
            texts: ``N`` strings.
            progress: show a progress bar (``curate.progress``).

        Returns:
            ``(N, K)`` float32, rows summing to 1, columns in ``labels`` order.

        Raises:
            CurateError: the server is unreachable (the message has the URL), the model is not served,
                the server returns no log-probabilities, or an HTTP error persists after retries.
        """
        self.calibration_offsets()
        return self.proba_from_logprobs(self.label_logprobs(texts, progress=progress))

    @property
    def info(self) -> dict[str, Any]:
        """JSON-serialisable facts of the run: URL, model, API, calibration offsets, request counts, speed."""
        s = self._stats
        offsets = self._offsets if self._offsets is not None else np.zeros(len(self.labels))
        unique = max(int(s["unique_items"]), 1)
        return {
            "endpoint_url": self.url,
            "served_model": self.model,
            "api": "chat/completions" if self.template is None else "completions",
            "verbalizers": dict(self.verbalizers),
            "top_logprobs": self.top_logprobs,
            "calibrated": bool(self.calibrate),
            "calibration_offsets": {lab: round(float(c), 6) for lab, c in zip(self.labels, offsets)},
            "prior": self.prior if self.calibrate else None,
            "requests": int(s["requests"]),
            "retries": int(s["retries"]),
            "errors": int(s["errors"]),
            "items": int(s["items"]),
            "unique_items": int(s["unique_items"]),
            "label_missing_from_top_k": {lab: round(int(m) / unique, 4) for lab, m in zip(self.labels, s["missing"])},
            "no_label_in_top_k": int(s["no_label_in_top_k"]),
            "empty_answers": int(s["empty_answers"]),
            "seconds": round(float(s["seconds"]), 3),
            "items_per_s": round(s["sent"] / s["seconds"], 3) if s["seconds"] > 0 else None,  # content-free included
        }


def _snippet(resp: "httpx.Response", n: int = 300) -> str:
    try:
        data = resp.json()
        err = data.get("error", data.get("detail", data)) if isinstance(data, dict) else data
        if isinstance(err, dict):
            err = err.get("message", err)
        text = str(err)
    except ValueError:
        text = resp.text
    text = " ".join(text.split())
    return text[:n] + ("..." if len(text) > n else "")


def _top_logprobs(data: Any, *, chat: bool) -> list[tuple[str, float]] | None:
    """``(token, logprob)`` pairs at the first generated position of a (chat) completion response; ``[]`` when
    nothing was generated (end-of-text first), ``None`` when the response carries no log-probabilities."""
    try:
        choice = data["choices"][0]
        lp = choice.get("logprobs")
        if not lp:
            return None
        if chat:
            if not lp.get("content"):
                return [] if choice.get("finish_reason") == "stop" else None
            first = lp["content"][0]
            pairs = [(str(e["token"]), float(e["logprob"])) for e in first.get("top_logprobs") or []]
            if not pairs and "token" in first:
                pairs = [(str(first["token"]), float(first["logprob"]))]
            return pairs
        if not lp.get("top_logprobs"):
            return [] if choice.get("finish_reason") == "stop" and not lp.get("tokens") else None
        top = lp["top_logprobs"][0]
        if isinstance(top, dict):
            return [(str(t), float(v)) for t, v in top.items()]
        if isinstance(top, list):  # some servers send a list of {token, logprob}
            return [(str(e["token"]), float(e["logprob"])) for e in top]
        return None
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


# --------------------------------------------------------------------------------------------- server


def serve_llama_cpp(port: int = 8080, *, host: str = "127.0.0.1", model_path: str | None = None,
                    alias: str | None = None, n_ctx: int = 2048, n_threads: int | None = None) -> None:
    """Serve a GGUF (default: the bundled SmolLM2-135M-Instruct) with llama-cpp-python's OpenAI-compatible
    server on ``host:port`` until interrupted; the model is served as ``alias`` (default the file's name
    without ``.Q4_1.gguf``-style suffixes, ``SmolLM2-135M-Instruct`` for the bundled one).

    llama.cpp's CPU "extra buffer types" (weight repacking, the AMX path) are switched off
    (``llama_model_params.use_extra_bufts = False``): they segfault on some AMX CPUs, and llama-cpp-python
    neither exposes the flag in its server settings nor forwards it from ``Llama(**kwargs)``, so the default
    model parameters are patched before the model loads.

    Raises:
        CurateError: the server extra is not installed, or the bundled model is missing.
    """
    try:
        import uvicorn
        import llama_cpp.llama_cpp as llama_c
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError as exc:
        raise CurateError(f"serving a GGUF needs llama-cpp-python's server extra ({exc}): "
                          "pip install 'llama-cpp-python[server]'") from None
    if model_path is None:
        from curate.models.resolve import bundled_gguf_path

        model_path = str(bundled_gguf_path())
        alias = alias or BUNDLED_SERVED_NAME
    alias = alias or re.sub(r"(\.[A-Za-z0-9_]+)?\.gguf$", "", os.path.basename(model_path))
    default_params = llama_c.llama_model_default_params

    def params_without_extra_bufts():
        p = default_params()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False
        return p

    llama_c.llama_model_default_params = params_without_extra_bufts
    model = ModelSettings(model=model_path, model_alias=alias, n_ctx=n_ctx, logits_all=True, verbose=False,
                          **({"n_threads": n_threads, "n_threads_batch": n_threads} if n_threads else {}))
    app = create_app(server_settings=ServerSettings(host=host, port=port), model_settings=[model])
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m curate.models.endpoint",
                                 description="Serve a GGUF (default: the bundled SmolLM2-135M-Instruct) with "
                                             "llama-cpp-python's OpenAI-compatible server.")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--model", default=None, help="a GGUF file (default: the bundled SmolLM2)")
    ap.add_argument("--alias", default=None, help="the served model name")
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        serve_llama_cpp(args.port, host=args.host, model_path=args.model, alias=args.alias, n_ctx=args.n_ctx,
                        n_threads=args.threads)
    except CurateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
