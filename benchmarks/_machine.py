"""What every benchmark records about the machine and its load (shared by the scripts in this folder)."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import sys
from pathlib import Path
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def machine_line() -> str:
    """CPU model and usable cores in one line, for a results file's header (no torch import)."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    return f"{model or platform.processor() or 'unknown CPU'}, {len(os.sched_getaffinity(0))} cores"


def machine_info(packages: Sequence[str] = ()) -> dict[str, Any]:
    """CPU model, cores, memory, bf16 support (flags, measured bf16/fp32 matmul ratio, what ``auto`` picks), CUDA,
    Python/torch/numpy versions, the versions of ``packages`` (distribution names) and the load average at the call."""
    import numpy as np
    import torch

    from curate.runtime import bf16_speedup, cpu_supports_bf16, pick_precision

    cpu: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            cpu.setdefault(key.strip(), value.strip())
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as fh:
        mem_kib = next((int(line.split()[1]) for line in fh if line.startswith("MemTotal:")), 0)
    model = cpu.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in cpu:
        model += f" (family {cpu['cpu family']}, model {cpu.get('model', '?')})"
    info: dict[str, Any] = {
        "cpu_model": model,
        "cores_logical": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kib / 2**20, 1),
        "bf16_native": cpu_supports_bf16(),
        "bf16_speedup": round(bf16_speedup(torch.get_num_threads()), 2),  # bf16/fp32 matmul rate, measured
        "auto_precision": pick_precision("auto", torch.get_num_threads()),
        "cuda": torch.cuda.is_available(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    for name in packages:
        try:
            info[name] = version(name)
        except PackageNotFoundError:
            info[name] = None
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def busy_cpu_seconds() -> float:
    """CPU seconds all processes of the machine have spent busy since boot (user, nice, system, irq, softirq)."""
    with open("/proc/stat", encoding="utf-8") as fh:
        user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fh.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Load:
    """Wall time and cores of a block: ``with Load() as load: ...`` then ``load.wall`` (s), ``load.own_cores``
    (this process and its children) and ``load.other_cores`` (other processes, from /proc/stat)."""

    def __enter__(self) -> "Load":
        import time

        self._t0, self._busy0, self._own0 = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        import time

        self.wall = time.perf_counter() - self._t0
        own = own_cpu_seconds() - self._own0
        other = max(busy_cpu_seconds() - self._busy0 - own, 0.0)
        self.own_cores, self.other_cores = own / self.wall, other / self.wall


def command_line(script: str, argv: Sequence[str]) -> str:
    """The command that ran ``script`` with ``argv``, as typed from the repository root (paths inside the repository
    made relative)."""
    def rel(p: str) -> str:
        with contextlib.suppress(ValueError):
            return str(Path(p).resolve().relative_to(REPO))
        return p

    py = sys.executable if not sys.executable.startswith(str(REPO)) else str(Path(sys.executable).relative_to(REPO))
    return shlex.join([py, rel(str(Path(script))), *argv])


def json_clean(x: Any) -> Any:
    """Numpy scalars to Python numbers, recursively (for JSON)."""
    if isinstance(x, dict):
        return {str(k): json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_clean(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x
