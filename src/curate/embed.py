"""Sentence embeddings of the pool, computed once and cached on disk (float16, memory-mapped).

The same embedding is used in every round so that clusters and regions are comparable across
rounds (METHOD.md section 1: "an embedding function ... the same in every round").
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from curate.models.resolve import resolve_model_path
from curate.progress import batches_by_length, token_lengths
from curate.runtime import configure_threads, pick_precision, quiet_hf

EMBEDDINGS_NAME = "embeddings.npy"
META_NAME = "embeddings.json"


@functools.lru_cache(maxsize=2)
def load_sentence_model(model: str, *, precision: str = "auto", device: str = "cpu"):
    """Load a sentence-transformers model from a local folder (or the bundled MiniLM); cached per process.

    Returns:
        A ``SentenceTransformer`` in eval mode, in bfloat16 where ``precision`` resolves to bf16.

    Raises:
        CurateError: the model folder does not exist.
    """
    from sentence_transformers import SentenceTransformer

    quiet_hf()

    path = resolve_model_path(model)
    st = SentenceTransformer(str(path), device=device, local_files_only=True)
    if pick_precision(precision) == "bf16":
        st = st.to(dtype=__import__("torch").bfloat16)
    st.eval()
    return st


def embed_texts(
    texts: Sequence[str],
    *,
    model: str,
    precision: str = "auto",
    batch_size: int = 128,
    threads: int | None = None,
    progress: bool = True,
    backend: str = "torch",
    out: Callable[[int, int], np.ndarray] | None = None,
) -> np.ndarray:
    """Embed texts as unit vectors.

    Args:
        texts: ``N`` strings.
        model: a local sentence-transformers folder or ``bundled:all-MiniLM-L6-v2``.
        precision: ``auto`` (bf16 where it measures faster than fp32 here), ``bf16`` or ``fp32``; the torch
            backend's only.
        backend: ``torch``, ``onnx`` (ONNX Runtime fp32) or ``onnx-int8`` (dynamic int8), see
            :mod:`curate.models.onnx_backend` (``selection.embedding_backend``).
        out: ``out(N, d)`` returns the array to fill (e.g. a float16 memory map, so that 10,000,000 rows never exist
            in float32); each batch's float32 vectors are assigned into it (a float16 array holds what
            ``astype(np.float16)`` of the float32 result holds). None: a new float32 array.

    Returns:
        ``(N, d)`` array of unit-norm rows: float32, or the array ``out`` made.

    Raises:
        CurateError: the model folder does not exist; an unknown backend; an ONNX backend without onnxruntime.
    """
    from curate.models.onnx_backend import check_backend, sentence_encoder

    check_backend(backend, "selection.embedding_backend")
    configure_threads(threads)
    if backend != "torch":  # the ONNX export is made from the fp32 model
        precision = "fp32"
    st = load_sentence_model(model, precision=pick_precision(precision, threads))  # measured at these threads
    fast = None if backend == "torch" else sentence_encoder(st, model, backend=backend, threads=threads)
    shape = (len(texts), st.get_embedding_dimension())
    if out is None:
        out = np.zeros(shape, dtype=np.float32)
    else:
        out = out(*shape)
        if out.shape != shape:
            raise ValueError(f"out must make an array of shape {shape}, got {out.shape}")
    release = _page_release(out)
    lengths = token_lengths(st.tokenizer, texts, max_length=st.max_seq_length)
    for idx in batches_by_length(texts, batch_size, "embedding", enabled=progress, lengths=lengths):
        if fast is not None:
            out[idx] = fast([texts[i] for i in idx])
            continue
        vecs = st.encode([texts[i] for i in idx], batch_size=batch_size, convert_to_numpy=True,
                         normalize_embeddings=True, show_progress_bar=False)
        out[idx] = vecs.astype(np.float32)
        release(len(idx))
    return out


RELEASE_ROWS = 65_536  # rows written into a memory map between two releases of its pages


def _page_release(array: np.ndarray) -> Callable[[int], None]:
    """For a memory map: a function counting rows written that, every :data:`RELEASE_ROWS`, flushes the map and drops
    its pages from this process (the file and the page cache keep them), so filling a map larger than memory keeps a
    bounded resident set; for an in-memory array, a no-op."""
    import mmap

    from curate.select.base import _find_mmap

    mm = _find_mmap(array)
    if mm is None or not hasattr(mmap, "MADV_DONTNEED"):
        return lambda rows: None
    written = [0]

    def count(rows: int) -> None:
        written[0] += rows
        if written[0] >= RELEASE_ROWS:
            written[0] = 0
            mm.flush()
            try:
                mm.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):
                pass

    return count


def _fingerprint(ids: Sequence[str], texts: Sequence[str], model: str) -> str:
    h = hashlib.sha256(model.encode())
    for i, t in zip(ids, texts):
        h.update(i.encode())
        h.update(b"\0")
        h.update(t.encode())
        h.update(b"\1")
    return h.hexdigest()


def cached_embeddings(
    project: Path,
    ids: Sequence[str],
    texts: Sequence[str],
    *,
    model: str,
    precision: str = "auto",
    threads: int | None = None,
    progress: bool = True,
    backend: str = "torch",
) -> np.ndarray:
    """The pool's embeddings from ``PROJECT/embeddings.npy``, computing them on first use.

    The cache is keyed by a hash of the ids, the texts, the model name and the backend (``torch``, ``onnx``,
    ``onnx-int8``; see :func:`embed_texts`); a stale cache is recomputed. The file is written atomically (temporary
    name, then rename); ``embeddings.json`` records the fingerprint, the model, the shape, the precision and the
    backend that computed them (the loop pins ``auto`` once per project, :meth:`curate.loop.Loop.pin_precision`, so
    every later step uses the same one).

    Returns:
        ``(N, d)`` float16 memory-mapped array (read-only) of unit-norm rows.
    """
    project = Path(project)
    key = embeddings_key(ids, texts, model, backend)
    cached = read_cached_embeddings(project, key, len(ids))
    if cached is not None:
        return cached
    tmp = project / (EMBEDDINGS_NAME + ".tmp.npy")
    try:
        # written batch by batch into a float16 map: the bytes np.save(vecs.astype(np.float16)) wrote, without an
        # (N, d) float32 array (15 GiB at 10,000,000 x 384)
        vecs = embed_texts(texts, model=model, precision=precision, threads=threads, progress=progress,
                           backend=backend, out=lambda n, d: np.lib.format.open_memmap(tmp, mode="w+",
                                                                                        dtype=np.float16, shape=(n, d)))
        vecs.flush()
        shape = vecs.shape
        del vecs
        os.replace(tmp, project / EMBEDDINGS_NAME)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    write_embeddings_meta(project, key, model=model, shape=shape,
                          precision=pick_precision(precision, threads), backend=backend)
    return np.load(project / EMBEDDINGS_NAME, mmap_mode="r")


def embeddings_key(ids: Sequence[str], texts: Sequence[str], model: str, backend: str = "torch") -> str:
    """The embeddings cache's fingerprint: sha256 of the ids, the texts, the model and (other than ``torch``, so
    earlier caches stay valid) the backend."""
    return _fingerprint(ids, texts, model if backend == "torch" else f"{model}#{backend}")


def read_cached_embeddings(project: Path, key: str, n: int) -> np.ndarray | None:
    """``PROJECT/embeddings.npy`` as a read-only float16 ``(n, d)`` memory map when ``embeddings.json`` holds
    fingerprint ``key`` and the array has ``n`` rows; None otherwise (missing, stale or unreadable)."""
    path, meta_path = Path(project) / EMBEDDINGS_NAME, Path(project) / META_NAME
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        return None
    if meta.get("fingerprint") != key:
        return None
    arr = np.load(path, mmap_mode="r")
    return arr if arr.shape[0] == n else None


def write_embeddings_meta(project: Path, key: str, *, model: str, shape: Sequence[int], precision: str,
                          backend: str) -> None:
    """Write ``PROJECT/embeddings.json`` atomically (fingerprint, model, shape, the precision that computed the
    embeddings - ``fp32``/``int8`` for the ONNX backends - and the backend), after ``embeddings.npy`` is in place."""
    meta_path = Path(project) / META_NAME
    meta_tmp = meta_path.with_suffix(".json.tmp")
    used = {"onnx": "fp32", "onnx-int8": "int8"}.get(backend) or precision
    meta_tmp.write_text(json.dumps({"fingerprint": key, "model": model, "shape": list(shape),
                                    "precision": used, "backend": backend}))
    os.replace(meta_tmp, meta_path)
