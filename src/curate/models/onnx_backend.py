"""Faster CPU scoring: the student and the embedding model run by ONNX Runtime, in fp32 or int8.

A setting picks the backend of each model (``[student] backend``, ``[selection] embedding_backend``):

- ``"torch"`` (default): the model itself, in the precision of ``student.precision`` (fp32 or bf16 autocast);
- ``"onnx"``: the same weights exported to ONNX (``torch.onnx.export(..., dynamo=True)``, the ``torch.export``-based
  exporter, https://docs.pytorch.org/docs/stable/onnx_export.html) and run by ONNX Runtime's CPU execution provider
  (https://onnxruntime.ai/docs/api/python/api_summary.html, ``InferenceSession``) in fp32: the same probabilities
  as torch fp32 up to float rounding (about 1e-6);
- ``"onnx-int8"``: that graph with dynamic int8 quantization of its matrix products
  (``onnxruntime.quantization.quantize_dynamic``, https://onnxruntime.ai/docs/performance/model-optimizations/
  quantization.html#dynamic-quantization): int8 weights (symmetric, one scale per output channel), activations
  quantized per batch at run time. Faster, and no longer exact: MiniLM's probabilities moved by up to 0.005 on
  Webis (benchmarks/fast_scoring.py); a LoRA-tuned SmolLM2-135M's by up to 0.28 (6 of 50 decisions changed), so a
  causal-LM student is better scored with ``"onnx"``.

Hugging Face ``optimum`` is not used: from version 2 its ONNX export and ONNX Runtime classes live in the package
``optimum-onnx``, whose only release (0.1.0) requires ``transformers < 4.58``, and curate runs on transformers 5.
The export and the quantization here are the two library calls that ``optimum``'s ``ORTModelFor...`` and
``ORTQuantizer`` wrap (quantization settings as ``AutoQuantizationConfig.avx512_vnni(is_static=False,
per_channel=True)``; ``reduce_range`` on a CPU without VNNI, as ONNX Runtime advises against saturation).

Each export happens once per saved model and is cached:

- a saved student (a folder written by ``EncoderClassifier.save``): in ``FOLDER/onnx/`` (``model.onnx``,
  ``model.int8.onnx``, ``onnx.json``), so the cache goes with the folder and a new save (which replaces the folder)
  drops it; a student fitted in memory and not saved is exported to a temporary folder that lives as long as it;
- an embedding model: under ``$CURATE_CACHE/onnx/`` (default ``~/.cache/curate``), keyed by the model folder's path
  and its files' sizes and modification times.

Exports are locked (``fcntl``) and written under temporary names, so processes that share a model (Ray actors on
one machine, two runs) export it once. ``onnxruntime`` and ``onnx`` are imported only here, when a backend other
than ``torch`` scores.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from curate.errors import CurateError

BACKENDS = ("torch", "onnx", "onnx-int8")
ONNX_DIR = "onnx"  # the cache folder inside a saved student's folder
FP32_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"
INFO_NAME = "onnx.json"
FORMAT = 1  # bump when the export changes, so older caches are rebuilt
INT8_OPS = ("MatMul", "Gemm")  # the operators quantize_dynamic turns into int8 (the linear layers)
PIP = "pip install onnxruntime==1.32.0 onnx==1.23.2 onnxscript==0.7.2"


def check_backend(backend: str, setting: str = "student.backend", device: str = "cpu") -> str:
    """Validate a scoring backend name; returns it unchanged.

    Args:
        backend: ``"torch"``, ``"onnx"`` or ``"onnx-int8"``.
        setting: the setting's dotted name, for the message (``student.backend``, ``selection.embedding_backend``).
        device: the model's torch device; the ONNX backends run on the CPU only.

    Raises:
        CurateError: an unknown name, or an ONNX backend with a non-CPU ``device`` (one line naming the setting).
    """
    if backend not in BACKENDS:
        raise CurateError(f"{setting} = {backend!r}: not a scoring backend; use \"torch\", \"onnx\" or \"onnx-int8\"")
    if backend != "torch" and device != "cpu":
        raise CurateError(f"{setting} = {backend!r} runs on the CPU, but the device is {device!r}; "
                          f"set {setting} = \"torch\" to score on the GPU")
    return backend


def import_onnxruntime(setting: str = "student.backend"):
    """Import ``onnxruntime`` (lazily: only an ONNX backend needs it).

    Raises:
        CurateError: the package is missing (the message names the setting and the pip command).
    """
    try:
        import onnxruntime
    except ModuleNotFoundError:
        raise CurateError(f"{setting} = \"onnx\"/\"onnx-int8\" needs ONNX Runtime: {PIP} "
                          f"(or set {setting} = \"torch\")") from None
    return onnxruntime


def has_vnni() -> bool:
    """True when the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX-INT8), from /proc/cpuinfo.

    Without them ONNX Runtime's u8 x s8 products can saturate, so weights are then quantized to 7 bits
    (``reduce_range``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def int8_settings() -> dict[str, Any]:
    """The dynamic-quantization settings used on this machine (recorded next to the int8 model)."""
    return {"weight_type": "QInt8", "per_channel": True, "reduce_range": not has_vnni(), "ops": list(INT8_OPS)}


# -- export -------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the exporter's expected chatter (torchvision ops it skips, deprecation warnings of its tracer)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "root")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
                yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(module, inputs: Mapping[str, Any], path: Path, *, output: str, setting: str) -> Path:
    """Export a torch module (in eval mode, fp32, on the CPU) to ONNX at ``path``.

    Args:
        module: called as ``module(**inputs)``; its first output is the graph's one output.
        inputs: example ``(B, T)`` int64 tensors (``input_ids``, ``attention_mask``, ...), ``B >= 2`` and ``T >= 2``
            so that neither dimension is specialised; both stay dynamic in the graph.
        output: the graph output's name (``logits``, ``sentence_embedding``).
        setting: the setting that asked for it, named in an error.

    Raises:
        CurateError: the exporter failed (the message keeps its first line and suggests ``torch``).
    """
    import torch

    names = list(inputs)
    dynamic = {name: {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC} for name in names}
    try:
        with _quiet_export():
            program = torch.onnx.export(module, (), kwargs=dict(inputs), dynamo=True, input_names=names,
                                        output_names=[output], dynamic_shapes=dynamic, verbose=False)
            program.save(str(path))
    except Exception as exc:  # noqa: BLE001  (any exporter failure is the same user-facing problem)
        cause = exc
        while cause.__cause__ is not None:  # the exporter wraps the tracer's error: name the innermost one
            cause = cause.__cause__
        text = str(cause).strip()
        first = text.splitlines()[0] if text else ""
        raise CurateError(f"{setting}: could not export the model to ONNX ({type(cause).__name__}: {first[:300]}); "
                          f"set {setting} = \"torch\"") from None
    return path


def quantize_int8(fp32: Path, int8: Path) -> Path:
    """Dynamic int8 quantization of an fp32 ONNX model (:func:`int8_settings`); writes ``int8``.

    ``onnxruntime.quantization.quantize_dynamic``: the weights of ``MatMul``/``Gemm`` become int8 with one scale per
    output channel; activations are quantized at run time per batch (``DynamicQuantizeLinear``).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    s = int8_settings()
    big = fp32.stat().st_size > 1_900_000_000  # protobuf's 2 GB limit: weights in a side file
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing" advice, logged on every call
    try:
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=s["per_channel"],
                         reduce_range=s["reduce_range"], op_types_to_quantize=list(s["ops"]),
                         use_external_data_format=big)
    finally:
        root.setLevel(level)
    return int8


def _read_info(folder: Path) -> dict:
    try:
        return json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def cached_model(folder: Path, backend: str, export: Callable[[Path], None], *, setting: str,
                 identity: dict | None = None) -> Path:
    """The ONNX file of ``backend`` in ``folder``, exporting (and quantizing) it first when it is not there.

    Args:
        folder: the cache folder (created).
        backend: ``"onnx"`` (``model.onnx``) or ``"onnx-int8"`` (``model.int8.onnx``, quantized from the fp32 one).
        export: writes the fp32 graph to the path it is given.
        setting: the setting that asked for it, named in errors.
        identity: what the cache must have been built from (compared with ``onnx.json``; a mismatch rebuilds).

    Returns:
        The path of the ``.onnx`` file.

    Raises:
        CurateError: the export failed, or the folder is not writable.
    """
    folder = Path(folder)
    want = {"format": FORMAT, **(identity or {})}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / ".lock", "w")
    except OSError as exc:
        raise CurateError(f"{setting}: cannot write the ONNX cache in {folder} ({exc})") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = _read_info(folder)
        fp32 = folder / FP32_NAME
        if {k: info.get(k) for k in want} != want or not fp32.is_file():
            tmp = folder / f"{FP32_NAME}.tmp"
            export(tmp)
            os.replace(tmp, fp32)
            (folder / INT8_NAME).unlink(missing_ok=True)  # quantized from the old export
            info = {**want}
            _write_info(folder, info)
        if backend == "onnx":
            return fp32
        int8 = folder / INT8_NAME
        if info.get("int8") != int8_settings() or not int8.is_file():
            tmp = folder / f"{INT8_NAME}.tmp.onnx"
            quantize_int8(fp32, tmp)
            os.replace(tmp, int8)
            _write_info(folder, {**info, "int8": int8_settings()})
        return int8


def _write_info(folder: Path, info: dict) -> None:
    tmp = folder / f"{INFO_NAME}.tmp"
    tmp.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder / INFO_NAME)


# -- running -----------------------------------------------------------------------------------------------------
class OnnxModel:
    """An ONNX Runtime CPU session over one exported model.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (None: every core this process may use, as torch's default here).
        setting: the setting that chose ONNX, named in errors.

    Raises:
        CurateError: onnxruntime is missing, or the file cannot be loaded.
    """

    def __init__(self, path: Path, threads: int | None = None, *, setting: str = "student.backend") -> None:
        ort = import_onnxruntime(setting)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001
            raise CurateError(f"{setting}: ONNX Runtime cannot load {path} ({exc}); delete {Path(path).parent} "
                              "to export again") from None
        self.path = Path(path)
        self.inputs = [i.name for i in self.session.get_inputs()]

    def run(self, encoded: Mapping[str, Any]) -> np.ndarray:
        """The graph's output for one tokenized batch, ``(B, ...)`` float32.

        Args:
            encoded: ``(B, T)`` integer arrays (numpy, or torch tensors) by input name; names the graph does not
                take are ignored.

        Raises:
            CurateError: an input the graph needs is missing.
        """
        feed = {}
        for name in self.inputs:
            if name not in encoded:
                raise CurateError(f"{self.path}: the ONNX model needs input {name!r}, the tokenizer gave "
                                  f"{sorted(encoded)}")
            value = encoded[name]
            value = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
            feed[name] = value.astype(np.int64, copy=False)
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(B, K)`` logits, float32 (as ``torch.softmax(logits.float(), -1)``)."""
    z = logits.astype(np.float32) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


# -- the student --------------------------------------------------------------------------------------------------
def _export_classifier(clf, path: Path) -> None:
    """Export the classifier's loaded model (LoRA merged into a copy) to ``path``."""
    import copy

    import torch

    model = clf._model
    if hasattr(model, "merge_and_unload"):  # a peft model: merge a copy, the loaded one stays an adapter
        model = copy.deepcopy(model).merge_and_unload()
    model = model.to("cpu").float().eval()
    sample = clf._tokenizer(["an example text to trace the graph with", "a short one"], padding=True,
                            truncation=True, max_length=clf.settings.max_length, return_tensors="pt")
    sample = {k: v.to(torch.int64) for k, v in sample.items()}
    # No key/value cache: a causal LM (Llama, Qwen, SmolLM2) builds one by default, and torch.export cannot trace it.
    configs = {id(c): c for c in (model.config, model.config.get_text_config()) if hasattr(c, "use_cache")}
    previous = {k: c.use_cache for k, c in configs.items()}
    try:
        for c in configs.values():
            c.use_cache = False
        # the model itself: its output's first field is ``logits`` (no labels given, so no loss)
        export_onnx(model, sample, path, output="logits", setting="student.backend")
    finally:
        for k, c in configs.items():
            c.use_cache = previous[k]


def student_scorer(clf) -> OnnxModel:
    """The ONNX Runtime session of an :class:`~curate.models.encoder.EncoderClassifier`'s loaded model, for
    ``clf.settings.backend`` (``onnx`` or ``onnx-int8``); exported on first use.

    The export is cached in ``FOLDER/onnx/`` when the loaded weights are a saved folder (``clf._saved_at``), else in a
    temporary folder kept on ``clf``.

    Raises:
        CurateError: onnxruntime is missing, or the export failed.
    """
    backend = clf.settings.backend
    folder = getattr(clf, "_saved_at", None)
    if folder is not None:
        cache = Path(folder) / ONNX_DIR
    else:
        if getattr(clf, "_onnx_tmp", None) is None:
            clf._onnx_tmp = tempfile.TemporaryDirectory(prefix="curate-onnx-")
        cache = Path(clf._onnx_tmp.name)
    import_onnxruntime("student.backend")
    path = cached_model(cache, backend, lambda p: _export_classifier(clf, p), setting="student.backend",
                        identity={"labels": list(clf.labels)})
    return OnnxModel(path, clf.settings.threads, setting="student.backend")


def student_predict_proba(clf, texts: Sequence[str], *, progress: bool = True, batch_size: int = 128) -> np.ndarray:
    """``EncoderClassifier.predict_proba`` through ONNX Runtime: ``(N, K)`` float32 class probabilities in the order
    of ``texts``, batched and truncated exactly as the torch path (same tokenizer, ``settings.max_length``).

    Raises:
        CurateError: see :func:`student_scorer`.
    """
    from curate.progress import batches_by_length

    if getattr(clf, "_onnx", None) is None:
        clf._onnx = student_scorer(clf)
    out = np.zeros((len(texts), len(clf.labels)), dtype=np.float32)
    for idx in batches_by_length(texts, batch_size, "scoring", enabled=progress):
        enc = clf._tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                             max_length=clf.settings.max_length, return_tensors="np")
        out[idx] = softmax(clf._onnx.run(enc))
    return out


# -- the embedding model ------------------------------------------------------------------------------------------
def _folder_key(folder: Path) -> str:
    """A hash of a model folder's path and its files' relative paths, sizes and modification times."""
    folder = Path(folder).resolve()
    h = hashlib.sha256(str(folder).encode())
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != ONNX_DIR and not d.startswith("."))
        for name in sorted(files):
            p = Path(root) / name
            st = p.stat()
            h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\1".encode())
    return h.hexdigest()[:16]


def sentence_encoder(st, model: str, *, backend: str, threads: int | None = None,
                     setting: str = "selection.embedding_backend") -> Callable[[Sequence[str]], np.ndarray]:
    """An ONNX Runtime twin of a sentence-transformers model's ``encode``: ``f(texts) -> (n, d)`` float32 unit rows.

    The whole model (transformer, pooling, normalisation) is exported, from ``st`` in fp32, once per model folder
    into ``$CURATE_CACHE/onnx/NAME-KEY/``; texts are tokenized by ``st.preprocess`` (its ``max_seq_length``), as
    ``SentenceTransformer.encode`` does, and the rows normalised to unit length (``normalize_embeddings=True``).

    Args:
        st: the loaded ``SentenceTransformer``, in fp32 (it is exported as it is).
        model: the model option (``bundled:all-MiniLM-L6-v2`` or a folder).
        backend: ``onnx`` or ``onnx-int8``.

    Raises:
        CurateError: unknown backend, onnxruntime missing, or the export failed.
    """
    import torch

    from curate.models.resolve import cache_dir, resolve_model_path

    check_backend(backend, setting)
    import_onnxruntime(setting)
    path = resolve_model_path(model)
    cache = cache_dir() / "onnx" / f"{Path(path).resolve().name}-{_folder_key(path)}"

    class Embed(torch.nn.Module):  # named arguments: torch.export takes no **kwargs
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            return self.inner(features)["sentence_embedding"]

    tokenize = getattr(st, "preprocess", None) or st.tokenize  # sentence-transformers 6 renamed it

    def export(p: Path) -> None:
        sample = tokenize(["an example text to trace the graph with", "a short one"])
        sample = {k: sample[k].to(torch.int64) for k in ("input_ids", "attention_mask", "token_type_ids")
                  if k in sample}
        export_onnx(Embed(st).eval(), sample, p, output="sentence_embedding", setting=setting)

    session = OnnxModel(cached_model(cache, backend, export, setting=setting, identity={"model": str(path)}),
                        threads, setting=setting)

    def encode(texts: Sequence[str]) -> np.ndarray:
        vecs = session.run(tokenize(list(texts)))
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)

    return encode
