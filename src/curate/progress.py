"""Progress bars on long work (rich), silenced with ``enabled=False`` or when not on a terminal."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def progress_callback(description: str, *, total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A context giving ``advance(n)``, which moves a rich progress bar by ``n`` units."""
    if not enabled:
        yield lambda n: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def batches_by_length(texts, batch_size: int, description: str, *, enabled: bool = True) -> Iterator:
    """Yield ``(b,)`` int64 index arrays covering ``texts`` in batches of similar length (little padding),
    moving a progress bar as each batch is consumed. Callers write results back at those indices."""
    import numpy as np

    order = np.argsort([len(t) for t in texts], kind="stable")
    with progress_callback(description, total=len(texts), enabled=enabled) as advance:
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            yield idx
            advance(len(idx))
