"""CPU precision choice: ``auto`` follows a measured bf16/fp32 matmul ratio, not the CPU flags alone."""

from __future__ import annotations

import os

import pytest
import torch

from curate.runtime import BF16_MIN_SPEEDUP, bf16_speedup, cpu_supports_bf16, pick_precision


@pytest.mark.parametrize("threads", [1, None])
def test_auto_follows_the_measured_speedup(threads):
    ratio = bf16_speedup(threads or len(os.sched_getaffinity(0)))
    print(f"bf16/fp32 matmul throughput ratio here: {ratio:.2f} (native bf16: {cpu_supports_bf16()})")
    if not cpu_supports_bf16():
        assert ratio == 0.0
    else:
        assert 0.05 < ratio < 50  # a real timing, not a placeholder
    expected = "bf16" if ratio >= BF16_MIN_SPEEDUP else "fp32"
    assert pick_precision("auto", threads) == expected


def test_probe_is_cached_and_restores_threads():
    before = torch.get_num_threads()
    first = bf16_speedup(1)
    assert torch.get_num_threads() == before
    assert bf16_speedup(1) == first  # measured once per process and thread count


@pytest.mark.parametrize("value", ["bf16", "fp32"])
def test_explicit_precision_is_kept(value):
    assert pick_precision(value) == value


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="auto, bf16 or fp32"):
        pick_precision("fp16")
