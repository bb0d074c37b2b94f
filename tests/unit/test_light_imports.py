"""Heavy imports happen where they are used (issue 14): choosing a strategy, random sampling or uncertainty
sampling loads neither faiss nor torch; the strategies that cluster or search load them when they run."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("modules", ["curate.select", "curate.select.random, curate.select.uncertainty",
                                     "curate.select.boundary, curate.select.regions, curate.select.typiclust"])
def test_importing_the_strategies_loads_neither_faiss_nor_torch(modules):
    code = (f"import sys, {modules}; import curate.select as s; s.make_strategy('random'); "
            "print('faiss' in sys.modules, 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"], f"import {modules} loaded (faiss, torch) = {proc.stdout}"
