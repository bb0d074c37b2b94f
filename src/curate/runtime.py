"""CPU runtime choices: threads and numeric precision."""

from __future__ import annotations

import functools
import os


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX), read from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# bf16 must beat fp32 by this factor before ``auto`` takes it: below that the speed is not worth the precision.
BF16_MIN_SPEEDUP = 1.2


@functools.lru_cache(maxsize=None)
def bf16_speedup(threads: int) -> float:
    """Measured bf16 / fp32 matrix-multiply throughput ratio of this CPU at ``threads`` torch threads.

    The CPU flags do not say whether bf16 pays off: on an AMD EPYC (Zen 5, AVX512-BF16) bf16 matmul ran at 4.1x the
    fp32 rate, on an Intel Xeon whose virtual machine hides AMX (AVX512-BF16 only) at 0.54-0.66x. So this times a
    (1024 x 384) @ (384 x 1536) product, the shape of a MiniLM feed-forward layer on 64 texts of 16 tokens,
    best of 3 repeats of 4 products per dtype (about 0.2 s once per process; cached per thread count).

    Returns:
        fp32 seconds / bf16 seconds (> 1: bf16 is faster); 0.0 when the CPU has no native bf16.
    """
    if not cpu_supports_bf16():
        return 0.0
    import time

    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a32 = torch.randn(1024, 384, generator=gen)
        b32 = torch.randn(384, 1536, generator=gen)
        best = {}
        for name, (a, b) in {"fp32": (a32, b32), "bf16": (a32.bfloat16(), b32.bfloat16())}.items():
            torch.mm(a, b)  # warm-up: kernel selection and first-touch
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(4):
                    torch.mm(a, b)
                times.append(time.perf_counter() - t0)
            best[name] = min(times)
    finally:
        torch.set_num_threads(previous)
    return best["fp32"] / max(best["bf16"], 1e-9)


def pick_precision(precision: str, threads: int | None = None) -> str:
    """Resolve ``auto`` on CPU: ``bf16`` where the CPU has native bf16 and it measures at least
    ``BF16_MIN_SPEEDUP`` times faster than fp32 (``bf16_speedup`` at ``threads``, the count the model will run
    with; None: the default of :func:`configure_threads`), else ``fp32``.

    Raises:
        ValueError: ``precision`` is not one of auto, bf16, fp32.
    """
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_speedup(_thread_count(threads)) >= BF16_MIN_SPEEDUP else "fp32"
    return precision


def _thread_count(threads: int | None) -> int:
    return threads or len(os.sched_getaffinity(0))


def configure_threads(threads: int | None) -> None:
    """Set torch's intra-op threads (default: all cores the process may use)."""
    import torch

    n = _thread_count(threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def quiet_hf() -> None:
    """Silence transformers' per-load progress bars and expected warnings (our own bars show the work)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def import_faiss():
    """Import faiss after torch.

    faiss-cpu's wheel bundles its own OpenMP runtime; imported before torch, its idle worker threads
    compete with torch's and a fine-tune in the same process ran 4x slower here (12 s -> 50 s for the
    same 22 steps, measured on 2 cores). Importing torch first avoids it (11.4 s).
    """
    import torch  # noqa: F401  (load order matters, see above)
    import faiss

    return faiss
