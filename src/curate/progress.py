"""Progress on long work: rich bars in a terminal; plain lines in a log file or under a scheduler.

Without a terminal (output redirected to a file, a batch job), each stage prints a line when it starts, one every
``CURATE_PROGRESS_INTERVAL`` seconds (default 30) while it runs (done/total, rate, time left) and one when it ends.
``enabled=False`` silences both.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from curate.errors import CurateError

INTERVAL_ENV = "CURATE_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 30.0


def progress_interval() -> float:
    """Seconds between two progress lines without a terminal: ``CURATE_PROGRESS_INTERVAL``, default 30.

    Raises:
        CurateError: the variable is set to something other than a number of seconds >= 0.
    """
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise CurateError(f"{INTERVAL_ENV}={raw!r}: give the seconds between progress lines, a number >= 0 "
                          f"(e.g. {INTERVAL_ENV}=60; 0: a line at every step)")
    return value


def _duration(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 04 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _per_second(rate: float) -> str:
    """``1,234``, ``12.3``, ``0.0512``: three significant digits or whole numbers."""
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


class ProgressLines:
    """Progress of one stage as plain lines on a stream (for logs): at :meth:`start`, every ``interval_s`` seconds
    of :meth:`advance`, and at :meth:`finish`.

    Args:
        description: the stage, e.g. ``embedding``.
        total: the units the stage does.
        unit: what it counts, e.g. ``items`` or ``steps``.
        stream: where the lines go.
        interval_s: seconds between two lines while the stage runs (0: a line at every advance).
        clock: the time in seconds (``time.monotonic``; a test may pass its own).
    """

    def __init__(self, description: str, *, total: int, unit: str, stream: TextIO, interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.stream, self.interval_s, self.clock = stream, interval_s, clock
        self.done = 0
        self.started = self.last = clock()

    def _print(self, text: str) -> None:
        print(f"{self.description}: {text}", file=self.stream, flush=True)

    def _rate(self, elapsed: float) -> float:
        return self.done / elapsed if elapsed > 0 else 0.0

    def start(self) -> None:
        """Print the stage's first line."""
        self._print(f"started, {self.total:,} {self.unit}")

    def advance(self, n: int) -> None:
        """Count ``n`` more units done; print a line once ``interval_s`` seconds passed since the last one."""
        self.done += n
        now = self.clock()
        if now - self.last < self.interval_s or self.done >= self.total:
            return
        self.last = now
        rate = self._rate(now - self.started)
        left = f"about {_duration((self.total - self.done) / rate)} left" if rate > 0 else "time left unknown"
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        self._print(f"{self.done:,}/{self.total:,} {self.unit}{share}, {_per_second(rate)} {self.unit}/s, {left}")

    def finish(self) -> None:
        """Print the stage's last line: units done, time taken and rate."""
        elapsed = self.clock() - self.started
        done = f"{self.done:,}" if self.done == self.total else f"{self.done:,} of {self.total:,}"
        self._print(f"done, {done} {self.unit} in {_duration(elapsed)} ({_per_second(self._rate(elapsed))} "
                    f"{self.unit}/s)")


@contextmanager
def progress_callback(description: str, *, total: int, enabled: bool = True, unit: str = "items",
                      stream: TextIO | None = None) -> Iterator[Callable[[int], None]]:
    """A context giving ``advance(n)``, which counts ``n`` more ``unit`` done.

    On a terminal: a rich progress bar (``12/40 steps``, elapsed, time left). Otherwise (a log file, a scheduler):
    plain lines (:class:`ProgressLines`) every ``CURATE_PROGRESS_INTERVAL`` seconds (:func:`progress_interval`).

    Args:
        description: the stage, e.g. ``embedding``.
        total: the units the stage does.
        enabled: False shows nothing.
        unit: what ``advance`` counts, e.g. ``items``, ``steps`` (training batches) or ``labels``.
        stream: where the progress goes (default: standard output).
    """
    if not enabled:
        yield lambda n: None
        return
    stream = stream if stream is not None else sys.stdout
    console = Console(file=stream)
    if not (console.is_terminal or console.is_jupyter):
        lines = ProgressLines(description, total=total, unit=unit, stream=stream, interval_s=progress_interval())
        lines.start()
        yield lines.advance
        lines.finish()  # not after an error: the error is the last word
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total, unit=unit)
        yield lambda n: bar.advance(task, n)


def batches_by_length(texts, batch_size: int, description: str, *, enabled: bool = True,
                      lengths=None) -> Iterator:
    """Yield ``(b,)`` int64 index arrays covering ``texts`` in batches of similar length (little padding),
    moving a progress bar as each batch is consumed. Callers write results back at those indices.

    ``lengths``: ``(N,)`` sort keys, best the token counts (:func:`token_lengths`); default the character
    counts. Sorting by tokens left 16.6 padded tokens per Webis tweet against 24.3 when sorted by characters
    (benchmarks/results/throughput.md)."""
    import numpy as np

    keys = [len(t) for t in texts] if lengths is None else lengths
    order = np.argsort(np.asarray(keys), kind="stable")
    with progress_callback(description, total=len(texts), enabled=enabled) as advance:
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            yield idx
            advance(len(idx))


def token_lengths(tokenizer, texts, *, max_length: int | None = None, chunk: int = 4096) -> list[int]:
    """Token counts of ``N`` texts (``(N,)`` ints, clipped to ``max_length``) from a Hugging Face tokenizer,
    tokenised in chunks without padding; used to sort texts into batches (:func:`batches_by_length`)."""
    out: list[int] = []
    for start in range(0, len(texts), chunk):
        enc = tokenizer(list(texts[start:start + chunk]), add_special_tokens=True, truncation=max_length is not None,
                        max_length=max_length, padding=False, return_attention_mask=False)
        out.extend(len(ids) for ids in enc["input_ids"])
    return out
