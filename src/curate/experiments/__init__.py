"""Reproducible experiments that measure the method against its baselines (METHOD.md sections 1 and 4).

Imported lazily: ``curate.experiments.label_efficiency`` runs conditions through the real loop on any pool;
``curate.experiments.cost_sweep`` runs the cost sweep (expert against weak labels at a fixed budget) through it too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_label_efficiency"]


def __getattr__(name: str) -> Any:
    if name == "run_label_efficiency":
        from curate.experiments.label_efficiency import run_label_efficiency

        return run_label_efficiency
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
