"""The ``prompted-lm`` round-0 scorer ("LLM-0"): a local causal LM reads the policy prompt and answers.

The prompt is the policy prompt, an instruction naming the answers, optionally ``k`` demonstrations per label
(a seed example followed by its label's verbalizer as the answer) and then the item. The score of label ``k``
is the log-probability the LM gives to that label's *verbalizer* (its answer text) at the answer position.
A verbalizer that tokenises to several tokens is scored by the **sum** of its tokens' log-probabilities (the
log-probability of the whole answer; ``score="first"`` scores the first token only). Class probabilities are
the softmax of those ``K`` scores, after contextual calibration.

Contextual calibration (Zhao, Wallace, Feng, Klein, Singh 2021, "Calibrate Before Use: Improving Few-Shot
Performance of Language Models", ICML): the same prompt is scored with content-free inputs (``"N/A"``, ``""``,
``"[MASK]"``); their label log-probabilities, normalised over the ``K`` labels, are averaged into an offset
vector that is subtracted from every item's normalised label log-probabilities. This removes the prompt's
preference for a label (majority-label, recency and common-token biases). The paper averages the content-free
*probabilities* and divides by them; here the *log*-probabilities are averaged (a geometric mean), which is the
same when the content-free inputs agree and less sensitive to one outlying input. Calibration makes the scores
label-neutral (a content-free input scores 1/K for every label); ``prior`` (the project's expected share of
the positive class, ``scout.prior``) then shifts them by the log prior, so a rare positive class is not
predicted for about half of the pool.

Speed: the part of the prompt shared by every item (system/policy turn, demonstrations, the opening of the
user turn) is run once and its key/value cache is copied into every batch (``past_key_values``), so the cost
per item is its own tokens. Items are batched by length with right padding; the answer logits are read at each
row's last real token. ``use_cache_prefix=False`` runs the full prompt per item instead (the reference path the
tests compare against).

Tokenisation boundary: tokenising the prefix and the item separately can differ from tokenising the whole
string at the seam (BPE merges across it). The prompt is split where the seam is clean (after the newline that
opens the chat user turn; in a custom template a space before ``{text}`` is moved into the item, so the text
is tokenised as ``" word"`` the way it would be in running text), and *both* paths build a row by
concatenating the same token ids: ``prefix ids + item text ids (truncated to max_length) + the rest of the
prompt's ids + the verbalizer's ids``. The cached and uncached paths therefore score identical token
sequences and agree to float tolerance.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np

from curate.errors import CurateError
from curate.models.calibration import label_log_prior, log_softmax, select_demonstrations, softmax
from curate.progress import batches_by_length
from curate.runtime import configure_threads, pick_precision, quiet_hf

if TYPE_CHECKING:  # pragma: no cover
    from curate.config import ScoutConfig

TEXT_SLOT = "{text}"
PROMPT_SLOT = "{prompt}"
DEMOS_SLOT = "{demonstrations}"
_SENTINEL = "\u2063CURATE-ITEM-TEXT\u2063"  # stands for the item's text while the chat template is rendered
DEFAULT_CONTENT_FREE = ("N/A", "", "[MASK]")


@dataclass(frozen=True)
class PromptParts:
    """A rendered prompt split around the item.

    Attributes:
        prefix_ids: token ids of everything before the item's text (shared by all items; cached once).
        lead: text glued to the front of the item's text before tokenising (a space moved out of the prefix).
        tail_ids: token ids of everything after the item's text up to the answer position.
        rendered: the whole prompt as text, with ``{text}`` where the item goes (for ``info`` and debugging).
    """

    prefix_ids: list[int]
    lead: str
    tail_ids: list[int]
    rendered: str


class PromptedLMScorer:
    """Class probabilities from a prompted local causal LM, with contextual calibration (Zhao et al. 2021).

    Args:
        labels: the task's ``K`` labels, in column order.
        positive: the positive label (recorded in ``info``).
        prompt: the policy prompt (what the positive class is).
        model: a local Hugging Face causal-LM folder, or ``bundled:SmolLM2-135M-Instruct``.
        template: ``None`` renders the prompt with the model's chat template (system turn: policy and
            instruction; each demonstration a user turn answered by an assistant turn; the item a user turn;
            the answer is read at the opening of the assistant turn). Otherwise a string with ``{text}``
            (exactly once) and optionally ``{prompt}`` and ``{demonstrations}`` (both before ``{text}``);
            each demonstration is rendered with the template's part after ``{demonstrations}``, with its text
            in ``{text}``, followed by its answer and a blank line.
        verbalizers: label -> answer text; default: the label itself (in template mode, preceded by a space
            when the template does not end in whitespace, e.g. ``"Answer:"`` -> ``" clickbait"``).
        demonstrations: ``(text, label)`` pairs shown before the item (see :func:`select_demonstrations`).
        calibrate: apply contextual calibration in :meth:`predict_proba`.
        content_free: the content-free inputs whose scores calibrate.
        batch_size: items per forward pass.
        max_length: an item's text is truncated to this many tokens.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        precision: ``auto`` (bf16 where the CPU supports it), ``bf16`` (autocast) or ``fp32``.
        score: ``"sum"`` (log-probability of the whole verbalizer) or ``"first"`` (its first token only).
        prior: the expected share of the positive class; with calibration, the calibrated (label-neutral)
            scores are shifted by the log prior (``prior`` for ``positive``, ``(1 - prior) / (K - 1)`` for each
            other label). ``None`` or 0.5 with two labels: no shift.
        threads: torch intra-op threads on CPU (default: every core the process may use).
        preloaded: an already loaded ``(model, tokenizer)`` pair for ``model`` (shares weights between scorers).

    Raises:
        CurateError: a bad template, verbalizer or device; see :meth:`from_config`.
    """

    def __init__(
        self,
        labels: Sequence[str],
        positive: str,
        prompt: str,
        *,
        model: str | Path,
        template: str | None = None,
        verbalizers: dict[str, str] | None = None,
        demonstrations: Sequence[tuple[str, str]] = (),
        calibrate: bool = True,
        content_free: Sequence[str] = DEFAULT_CONTENT_FREE,
        batch_size: int = 16,
        max_length: int = 128,
        device: str = "cpu",
        precision: str = "auto",
        score: Literal["sum", "first"] = "sum",
        prior: float | None = None,
        threads: int | None = None,
        preloaded: tuple[Any, Any] | None = None,
    ) -> None:
        self.labels = list(labels)
        self.positive = positive
        self.prompt = prompt
        self.template = template
        self.demonstrations = [(str(t), str(lab)) for t, lab in demonstrations]
        self.calibrate = bool(calibrate)
        self.content_free = list(content_free)
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.score = score
        self.threads = threads
        if prior is not None and not 0.0 < prior < 1.0:
            raise CurateError(f"scout.prior must be between 0 and 1, got {prior}")
        if positive not in self.labels:
            raise CurateError(f"the positive label {positive!r} is not one of the labels {self.labels}")
        self.prior = prior
        if score not in ("sum", "first"):
            raise CurateError(f"score must be 'sum' or 'first', got {score!r}")
        if self.calibrate and not self.content_free:
            raise CurateError("scout.content_free is empty but scout.calibrate is true; give content-free inputs "
                              "such as [\"N/A\", \"\", \"[MASK]\"] or set calibrate = false")
        unknown = sorted({lab for _, lab in self.demonstrations} - set(self.labels))
        if unknown:
            raise CurateError(f"demonstrations have labels {unknown} not in the task's labels {self.labels}")
        self.device = self._check_device(device)
        self.precision = pick_precision(precision, self.threads)
        if preloaded is not None:
            self.model_path = str(model)
            self._model, self._tokenizer = preloaded
        else:
            from curate.models.resolve import resolve_model_path

            self.model_path = str(resolve_model_path(str(model)))
            self._model = None
            self._tokenizer = self._load_tokenizer(self.model_path)
        self.verbalizers = self._default_verbalizers(verbalizers or {})
        self.verbalizer_ids = self._tokenize_verbalizers()
        self.parts = self._build_prompt()
        self._prefix_cache = None
        self._offsets: np.ndarray | None = None
        self._cf_log_probs: np.ndarray | None = None
        self._stats: dict[str, Any] = {}

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, labels: Sequence[str], positive: str, prompt: str, settings: "ScoutConfig") -> "PromptedLMScorer":
        """The scorer described by a project's ``[scout]`` settings (``kind = "prompted-lm"``).

        Raises:
            CurateError: ``scout.demonstrations`` exceeds a label's seed examples; ``scout.template`` lacks
                ``{text}``; a verbalizer is unknown, empty or tokenises to nothing; ``scout.device`` asks for
                CUDA where none is available; the model folder cannot be read.
        """
        demos = select_demonstrations(labels, settings.seed_examples, settings.demonstrations)
        return cls(
            labels, positive, prompt,
            model=settings.model, template=settings.template, verbalizers=settings.verbalizers,
            demonstrations=demos, calibrate=settings.calibrate, content_free=settings.content_free,
            batch_size=settings.batch_size, max_length=settings.max_length, device=settings.device,
            precision=settings.precision, prior=settings.prior,
        )

    @staticmethod
    def _check_device(device: str) -> str:
        import torch

        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError):
            raise CurateError(f"scout.device = {device!r} is not a device; use \"cpu\" or \"cuda\"") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise CurateError(f"scout.device = {device!r} but CUDA is not available on this machine; use \"cpu\"")
        if dev.type not in ("cpu", "cuda"):
            raise CurateError(f"scout.device = {device!r} is not supported; use \"cpu\" or \"cuda\"")
        return str(dev)

    @staticmethod
    def _load_tokenizer(path: str):
        from transformers import AutoTokenizer

        quiet_hf()
        try:
            return AutoTokenizer.from_pretrained(path, local_files_only=True)
        except Exception as exc:  # noqa: BLE001  (any reader failure is the same user-facing problem)
            raise CurateError(f"{path}: could not load a tokenizer for scout.model ({exc})") from None

    @staticmethod
    def load_model(path: str | Path, device: str = "cpu") -> tuple[Any, Any]:
        """Load ``(model, tokenizer)`` from a local causal-LM folder (or a ``bundled:`` name), in eval mode,
        float32, on ``device``; pass the pair as ``preloaded=`` to share it between scorers.

        Raises:
            CurateError: the folder cannot be read as a causal LM.
        """
        from transformers import AutoModelForCausalLM

        from curate.models.resolve import resolve_model_path

        path = str(resolve_model_path(str(path)))
        tok = PromptedLMScorer._load_tokenizer(path)
        quiet_hf()
        try:
            import torch

            import transformers

            # float32 weights; bf16 runs under autocast. (transformers < 4.56 names the argument torch_dtype.)
            key = "dtype" if tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (4, 56) else "torch_dtype"
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, **{key: torch.float32})
        except Exception as exc:  # noqa: BLE001
            raise CurateError(f"{path}: could not load scout.model as a causal LM ({exc})") from None
        model.eval()
        model.to(device)
        return model, tok

    def _ensure_model(self) -> None:
        import torch

        configure_threads(self.threads)
        if self._model is None:
            self._model, _ = self.load_model(self.model_path, self.device)
        self._model.eval()
        if next(self._model.parameters()).device != torch.device(self.device):
            self._model.to(self.device)

    def _default_verbalizers(self, given: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(given) - set(self.labels))
        if unknown:
            raise CurateError(f"scout.verbalizers has labels {unknown} not in task.labels {self.labels}")
        lead = ""
        if self.template is not None:
            after = self.template.split(TEXT_SLOT)[-1]
            if after and not after[-1].isspace():
                lead = " "
        return {lab: given.get(lab, lead + lab) for lab in self.labels}

    def _tokenize_verbalizers(self) -> list[list[int]]:
        ids = []
        for lab in self.labels:
            v = self.verbalizers[lab]
            toks = self._tokenizer(v, add_special_tokens=False)["input_ids"] if v else []
            if not toks:
                raise CurateError(f"scout.verbalizers[{lab!r}] = {v!r} tokenises to nothing; give a non-empty answer text")
            ids.append(list(toks[:1] if self.score == "first" else toks))
        seen: dict[tuple[int, ...], str] = {}
        for lab, toks in zip(self.labels, ids):
            if tuple(toks) in seen:
                what = "first token" if self.score == "first" else "tokens"
                raise CurateError(f"scout.verbalizers for {seen[tuple(toks)]!r} and {lab!r} have the same {what} "
                                  f"{toks}; give answers that differ")
            seen[tuple(toks)] = lab
        return ids

    # -- prompt --------------------------------------------------------------------------------------
    def instruction(self) -> str:
        """The sentence after the policy that names the answers, e.g. ``Answer with one of: a, b.``"""
        return "Answer with one of: " + ", ".join(self.verbalizers[lab].strip() for lab in self.labels) + "."

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def _build_prompt(self) -> PromptParts:
        if self.template is None:
            rendered = self._render_chat()
        else:
            rendered = self._render_template()
        before, after = rendered.split(_SENTINEL)
        lead = ""
        if self.template is not None and before.endswith(" "):
            # "Tweet: {text}": tokenise the item as " word" (as in running text), not "Tweet: " + "word".
            stripped = before.rstrip(" ")
            lead, before = before[len(stripped):], stripped
        prefix_ids = self._encode(before)
        if self.template is not None:
            bos = self._tokenizer.bos_token_id
            probe = self._tokenizer("x")["input_ids"]
            if bos is not None and probe and probe[0] == bos and (not prefix_ids or prefix_ids[0] != bos):
                prefix_ids = [bos] + prefix_ids
        return PromptParts(prefix_ids, lead, self._encode(after), rendered.replace(_SENTINEL, TEXT_SLOT))

    def _render_chat(self) -> str:
        tok = self._tokenizer
        if not getattr(tok, "chat_template", None):
            raise CurateError(f"{self.model_path}: the model has no chat template; set scout.template, "
                              f"e.g. \"{{prompt}}\\n\\n{{demonstrations}}Text: {{text}}\\nAnswer:\"")
        system = self.prompt.strip() + "\n\n" + self.instruction()
        turns: list[dict[str, str]] = []
        for text, lab in self.demonstrations:
            turns += [{"role": "user", "content": text}, {"role": "assistant", "content": self.verbalizers[lab]}]
        turns.append({"role": "user", "content": _SENTINEL})
        try:
            rendered = tok.apply_chat_template([{"role": "system", "content": system}, *turns],
                                               tokenize=False, add_generation_prompt=True)
        except Exception:  # noqa: BLE001  (templates without a system role: put the policy into the first user turn)
            turns[0] = {"role": "user", "content": system + "\n\n" + turns[0]["content"]}
            try:
                rendered = tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
            except Exception as exc:  # noqa: BLE001
                raise CurateError(f"{self.model_path}: its chat template failed ({exc}); set scout.template") from None
        if rendered.count(_SENTINEL) != 1:
            raise CurateError(f"{self.model_path}: its chat template does not keep the item text intact; set scout.template")
        return rendered

    def _render_template(self) -> str:
        t = self.template or ""
        n = t.count(TEXT_SLOT)
        if n != 1:
            raise CurateError(f"scout.template must contain {TEXT_SLOT} exactly once (found {n} times): {t!r}")
        if t.count(DEMOS_SLOT) > 1 or (DEMOS_SLOT in t and t.index(DEMOS_SLOT) > t.index(TEXT_SLOT)):
            raise CurateError(f"scout.template must have {DEMOS_SLOT} at most once, before {TEXT_SLOT}: {t!r}")
        if self.demonstrations and DEMOS_SLOT not in t:
            raise CurateError(f"scout.demonstrations = {len(self.demonstrations) // len(self.labels)} but scout.template "
                              f"has no {DEMOS_SLOT} placeholder; add it before {TEXT_SLOT} or set demonstrations = 0")
        item_part = t.split(DEMOS_SLOT, 1)[1] if DEMOS_SLOT in t else t
        item_part = item_part.replace(PROMPT_SLOT, self.prompt.strip())
        demos = "".join(item_part.replace(TEXT_SLOT, text) + self.verbalizers[lab] + "\n\n"
                        for text, lab in self.demonstrations)
        # Substitute in one pass so braces inside the prompt or the demonstrations are left alone.
        out, rest = [], t
        while rest:
            hits = [(rest.find(s), s) for s in (PROMPT_SLOT, DEMOS_SLOT, TEXT_SLOT) if s in rest]
            if not hits:
                out.append(rest)
                break
            i, slot = min(hits)
            out.append(rest[:i])
            out.append({PROMPT_SLOT: self.prompt.strip(), DEMOS_SLOT: demos, TEXT_SLOT: _SENTINEL}[slot])
            rest = rest[i + len(slot):]
        return "".join(out)

    # -- token rows ----------------------------------------------------------------------------------
    def _item_ids(self, text: str) -> list[int]:
        """The row's tokens after the cached prefix: ``lead+text`` (truncated to ``max_length``) + the tail."""
        return self._encode(self.parts.lead + text)[: self.max_length] + self.parts.tail_ids

    def _split_prefix(self) -> tuple[list[int], int | None]:
        """The cached prefix and the token moved from its end to the front of every row (so that no row is
        empty: the answer logits always come from a token of the row itself)."""
        ids = self.parts.prefix_ids
        return (ids[:-1], ids[-1]) if ids else ([], None)

    def _rows(self, texts: Sequence[str]) -> list[list[int]]:
        _, moved = self._split_prefix()
        head = [moved] if moved is not None else []
        rows = [head + self._item_ids(t) for t in texts]
        for t, r in zip(texts, rows):
            if not r:
                raise CurateError(f"the prompt leaves nothing to read the answer from for the item {t!r}: "
                                  f"scout.template needs text before {TEXT_SLOT} or after it")
        return rows

    def _autocast(self):
        import torch

        dev = torch.device(self.device).type
        return torch.autocast(dev, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def _get_prefix_cache(self):
        """The key/value cache of the shared prefix for batch size 1 (computed once)."""
        import torch

        prefix, _ = self._split_prefix()
        if not prefix:
            return None
        if self._prefix_cache is None:
            ids = torch.tensor([prefix], device=self.device)
            with self._autocast():
                out = self._model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
            self._prefix_cache = out.past_key_values
        return self._prefix_cache

    def _verbalizer_tensors(self):
        import torch

        vmax = max(len(v) for v in self.verbalizer_ids)
        ids = torch.full((len(self.labels), vmax), self._pad_id(), dtype=torch.long)
        mask = torch.zeros((len(self.labels), vmax), dtype=torch.long)
        for k, v in enumerate(self.verbalizer_ids):
            ids[k, : len(v)] = torch.tensor(v)
            mask[k, : len(v)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _pad_id(self) -> int:
        tok = self._tokenizer
        for cand in (tok.pad_token_id, tok.eos_token_id, 0):
            if cand is not None:
                return int(cand)
        return 0

    def _forward(self, ids, attn, pos, cache, keep):
        try:
            return self._model(input_ids=ids, attention_mask=attn, position_ids=pos, past_key_values=cache,
                               use_cache=cache is not None, logits_to_keep=keep)
        except TypeError:  # a model without logits_to_keep: keep every position
            out = self._model(input_ids=ids, attention_mask=attn, position_ids=pos, past_key_values=cache,
                              use_cache=cache is not None)
            if not isinstance(keep, int):
                out.logits = out.logits[:, keep]
            return out

    def _score_cached(self, rows: list[list[int]]) -> np.ndarray:
        """``(B, K)`` verbalizer log-probabilities for one batch, reusing the prefix cache.

        Pass 1 runs the rows (right padded) after a copy of the prefix cache and reads the first verbalizer
        token at each row's last real token. For multi-token verbalizers, pass 2 repeats each row's cache
        ``K`` times and feeds the verbalizers' tokens after the row's last real token (padding masked out,
        positions continuing from the row's length)."""
        import torch

        B, K = len(rows), len(self.labels)
        prefix_cache = self._get_prefix_cache()
        P = prefix_cache.get_seq_length() if prefix_cache is not None else 0
        lengths = torch.tensor([len(r) for r in rows], device=self.device)
        L = int(lengths.max())
        ids = torch.full((B, L), self._pad_id(), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        ids = ids.to(self.device)
        suffix_mask = (torch.arange(L, device=self.device)[None, :] < lengths[:, None]).long()
        attn = torch.cat([torch.ones((B, P), dtype=torch.long, device=self.device), suffix_mask], dim=1)
        pos = (P + torch.arange(L, device=self.device))[None, :].expand(B, L)
        cache = None
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)  # forward passes extend a cache in place
            cache.batch_repeat_interleave(B)
        last = lengths - 1
        keep = torch.unique(last)
        vids, vmask = self._verbalizer_tensors()
        vmax = vids.shape[1]
        if vmax > 1 and cache is None:
            from transformers import DynamicCache

            cache = DynamicCache()
        with self._autocast():
            out = self._forward(ids, attn, pos, cache, keep)
        col = torch.searchsorted(keep, last)
        first = torch.log_softmax(out.logits[torch.arange(B, device=self.device), col].float(), dim=-1)  # (B, V)
        total = first[:, vids[:, 0]]  # (B, K)
        if vmax > 1:
            cache = out.past_key_values
            cache.batch_repeat_interleave(K)  # row b*K + k continues with verbalizer k
            cont = vids[:, :-1].repeat(B, 1)  # (B*K, vmax-1)
            cont_mask = vmask[:, :-1].repeat(B, 1)
            attn2 = torch.cat([attn.repeat_interleave(K, dim=0), cont_mask], dim=1)
            pos2 = (P + lengths).repeat_interleave(K)[:, None] + torch.arange(vmax - 1, device=self.device)[None, :]
            with self._autocast():
                out2 = self._forward(cont, attn2, pos2, cache, 0)
            lp = torch.log_softmax(out2.logits.float(), dim=-1)  # (B*K, vmax-1, V)
            target = vids[:, 1:].repeat(B, 1)
            got = lp.gather(-1, target[..., None])[..., 0] * vmask[:, 1:].repeat(B, 1)
            total = total + got.sum(dim=1).view(B, K)
        self._stats["tokens"] = self._stats.get("tokens", 0) + int(lengths.sum()) + (B * int(vmask[:, :-1].sum()))
        return total.double().cpu().numpy()

    def _score_uncached(self, rows: list[list[int]]) -> np.ndarray:
        """``(B, K)`` verbalizer log-probabilities for one batch, running the full prompt per row (the reference
        path): one row per item and label, ``prefix + row + verbalizer[:-1]``, right padded."""
        import torch

        prefix, _ = self._split_prefix()
        K = len(self.labels)
        multi = max(len(v) for v in self.verbalizer_ids) > 1
        full, starts, labels_of = [], [], []
        for r in rows:
            for k in range(K if multi else 1):
                v = self.verbalizer_ids[k]
                full.append(prefix + r + (v[:-1] if multi else []))
                starts.append(len(prefix) + len(r) - 1)
                labels_of.append(k)
        n, L = len(full), max(len(f) for f in full)
        ids = torch.full((n, L), self._pad_id(), dtype=torch.long)
        attn = torch.zeros((n, L), dtype=torch.long)
        for i, f in enumerate(full):
            ids[i, : len(f)] = torch.tensor(f)
            attn[i, : len(f)] = 1
        vmax = max(len(v) for v in self.verbalizer_ids) if multi else 1
        need = torch.tensor(starts)[:, None] + torch.arange(vmax)[None, :]  # (n, vmax) positions predicting v[j]
        keep = torch.unique(need.clamp(max=L - 1))
        pos = torch.arange(L)[None, :].expand(n, L)
        with self._autocast():
            out = self._forward(ids.to(self.device), attn.to(self.device), pos.to(self.device), None, keep.to(self.device))
        lp = torch.log_softmax(out.logits.float(), dim=-1).cpu()  # (n, |keep|, V)
        res = np.zeros((len(rows), K))
        for i in range(n):
            b = i // (K if multi else 1)
            for k in ([labels_of[i]] if multi else range(K)):
                v = self.verbalizer_ids[k]
                cols = torch.searchsorted(keep, need[i, : len(v)])
                res[b, k] = float(lp[i, cols, torch.tensor(v)].double().sum())
        self._stats["tokens"] = self._stats.get("tokens", 0) + int(attn.sum())
        return res

    # -- scoring -------------------------------------------------------------------------------------
    def label_log_probs(self, texts: Sequence[str], *, use_cache_prefix: bool = True, progress: bool = False) -> np.ndarray:
        """The log-probability (nats) of each label's verbalizer at the answer position, per item.

        Args:
            texts: ``N`` item texts (each truncated to ``max_length`` tokens).
            use_cache_prefix: reuse the shared prefix's key/value cache (fast); False runs the full prompt
                per item (the reference path; same tokens, same scores up to float rounding).
            progress: show a progress bar.

        Returns:
            ``(N, K)`` float64, unnormalised over the labels (rows do not sum to 1 after exp).
        """
        import torch

        self._ensure_model()
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        if len(texts) == 0:
            return out
        rows = self._rows(texts)
        fn = self._score_cached if use_cache_prefix else self._score_uncached
        with torch.inference_mode():
            for idx in batches_by_length(rows, self.batch_size, "scoring (prompted LM)", enabled=progress):
                out[idx] = fn([rows[i] for i in idx])
        return out

    def raw_log_probs(self, texts: Sequence[str], *, use_cache_prefix: bool = True, progress: bool = False) -> np.ndarray:
        """Uncalibrated label log-probabilities normalised over the ``K`` labels (log-softmax of
        :meth:`label_log_probs`): ``(N, K)`` float64, ``exp`` of each row sums to 1."""
        return log_softmax(self.label_log_probs(texts, use_cache_prefix=use_cache_prefix, progress=progress))

    def calibration_offsets(self) -> np.ndarray:
        """Contextual-calibration offsets (Zhao et al. 2021): the mean over ``content_free`` inputs of their
        normalised label log-probabilities, ``(K,)`` float64 (nats). Computed once per scorer.

        Raises:
            CurateError: ``content_free`` is empty.
        """
        if not self.content_free:
            raise CurateError("scout.content_free is empty; give content-free inputs such as [\"N/A\", \"\", \"[MASK]\"]")
        if self._offsets is None:
            self._cf_log_probs = self.raw_log_probs(self.content_free)
            self._offsets = self._cf_log_probs.mean(axis=0)
        return self._offsets

    def log_prior(self) -> np.ndarray:
        """``(K,)`` log prior added to calibrated scores (:func:`curate.models.calibration.label_log_prior`)."""
        return label_log_prior(self.labels, self.positive, self.prior)

    def predict_proba(
        self,
        texts: Sequence[str],
        *,
        progress: bool = True,
        calibrated: bool | None = None,
        use_cache_prefix: bool = True,
    ) -> np.ndarray:
        """Class probabilities: softmax over the labels of the (calibrated) label log-probabilities.

        Args:
            texts: ``N`` item texts.
            progress: show a progress bar.
            calibrated: subtract the content-free offsets (:meth:`calibration_offsets`) and add the log prior
                (:meth:`log_prior`); default: ``calibrate``.
            use_cache_prefix: see :meth:`label_log_probs`.

        Returns:
            ``(N, K)`` float32, rows summing to 1, columns in label order.
        """
        calibrated = self.calibrate if calibrated is None else calibrated
        log_prior = self.log_prior() if calibrated else np.zeros(len(self.labels))
        t0 = time.perf_counter()
        self._stats = {"tokens": 0}
        offsets = self.calibration_offsets() if calibrated else np.zeros(len(self.labels))
        t1 = time.perf_counter()
        self._stats = {"tokens": 0}
        raw = self.raw_log_probs(texts, use_cache_prefix=use_cache_prefix, progress=progress)
        seconds = time.perf_counter() - t1
        proba = softmax(raw - offsets + log_prior).astype(np.float32)
        self._stats.update({
            "items": len(texts),
            "seconds": round(seconds, 3),
            "calibration_seconds": round(t1 - t0, 3),
            "items_per_s": round(len(texts) / seconds, 2) if seconds > 0 else math.nan,
            "tokens_per_s": round(self._stats["tokens"] / seconds, 1) if seconds > 0 else math.nan,
            "calibrated": bool(calibrated),
            "cached_prefix": bool(use_cache_prefix),
        })
        return proba

    @property
    def info(self) -> dict[str, Any]:
        """What was run, JSON-serialisable: model, prompt, verbalizers, demonstrations, calibration, timing."""
        d: dict[str, Any] = {
            "model_path": self.model_path,
            "device": self.device,
            "precision": self.precision,
            "template": self.template if self.template is not None else "chat",
            "prompt_rendered": self.parts.rendered,
            "prefix_tokens": len(self.parts.prefix_ids),
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "verbalizers": dict(self.verbalizers),
            "verbalizer_tokens": {lab: ids for lab, ids in zip(self.labels, self.verbalizer_ids)},
            "score": self.score,
            "demonstrations": [{"text": t, "label": lab} for t, lab in self.demonstrations],
            "calibrate": self.calibrate,
            "prior": self.prior,
            "content_free": list(self.content_free),
        }
        if self._offsets is not None:
            d["calibration_offsets"] = {lab: float(x) for lab, x in zip(self.labels, self._offsets)}
            d["content_free_log_probs"] = self._cf_log_probs.tolist()
        d.update({k: v for k, v in self._stats.items() if not (isinstance(v, float) and math.isnan(v))})
        return d
