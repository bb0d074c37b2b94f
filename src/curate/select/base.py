"""The contract every query strategy follows.

A query strategy works on positions (int64 indices) into the *selectable pool*: the caller
passes arrays for the pool items (the held-out test split excluded) and maps the returned
positions back to item ids. Strategies never copy texts; they see scores and embeddings only.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict


class StrategySettings(BaseModel):
    """Base of a strategy's settings model (its ``[selection.NAME]`` table in ``curate.toml``): unknown keys are
    refused. Each field is a keyword parameter of the strategy's constructor, with the same default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass
class Selection:
    """What a query strategy returns.

    Attributes:
        indices: ``(k,)`` int64 positions into the pool arrays, ``k <= budget``, no repeats,
            in the order chosen (most informative first).
        groups: ``(k,)`` int64 group id per selected item; items of one group (the two items of a
            boundary pair) must land on the same side of the fine-tune/eval split. Strategies
            without groups give every item its own group.
        info: JSON-serialisable diagnostics (for example how many cluster pairs overlapped,
            how many items were filled by the fallback), written into the round's metrics.
    """

    indices: np.ndarray
    groups: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.groups = np.asarray(self.groups, dtype=np.int64)
        if self.indices.shape != self.groups.shape or self.indices.ndim != 1:
            raise ValueError(
                f"indices {self.indices.shape} and groups {self.groups.shape} must be equal-length 1-D arrays"
            )
        if len(np.unique(self.indices)) != len(self.indices):
            raise ValueError("a selection must not repeat an item")


class QueryStrategy(Protocol):
    """One uniform signature (after scikit-activeml's ``query`` and small-text's query strategies).

    Strategy parameters go to the constructor; ``query`` takes the round's arrays.
    """

    name: str

    def query(
        self,
        *,
        scores: np.ndarray,
        embeddings: np.ndarray,
        labelled: np.ndarray,
        budget: int,
        rng: np.random.Generator,
        threshold: float = 0.5,
        expert_positive: np.ndarray | None = None,
    ) -> Selection:
        """Choose up to ``budget`` unlabelled items.

        Args:
            scores: ``(N,)`` float32 p(positive) from the current model.
            embeddings: ``(N, d)`` float16/float32 unit-norm rows (the same embedding in every round).
            labelled: ``(N,)`` bool, True for items that already have expert labels: never selected.
            budget: the number of items to return at most (``>= 0``).
            rng: the random generator; no global random state is used.
            threshold: predicted label is positive when ``scores >= threshold``.
            expert_positive: ``(N,)`` float, the experts' positive vote share of labelled items and NaN
                elsewhere, for strategies that read where the model is known to be wrong; None when not given.

        Returns:
            A :class:`Selection` of ``min(budget, number of unlabelled items)`` items.

        Raises:
            ValueError: when array shapes disagree or ``budget < 0``.
        """
        ...


def check_query_args(scores: np.ndarray, embeddings: np.ndarray, labelled: np.ndarray, budget: int) -> None:
    """Validate the shared arguments of :meth:`QueryStrategy.query`; raise ``ValueError`` naming the bad one."""
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D (N,), got shape {scores.shape}")
    n = scores.shape[0]
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise ValueError(f"embeddings must be (N, d) with N={n}, got shape {embeddings.shape}")
    if labelled.shape != (n,) or labelled.dtype != bool:
        raise ValueError(f"labelled must be a bool array of shape ({n},), got {labelled.dtype} {labelled.shape}")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")


RELEASE_BYTES = 256 * 2**20  # rows read from a memory map between two releases of its pages (see PoolRows)
FAULT_AROUND_BYTES = 64 * 2**10  # what one page fault of a file map may map (Linux fault_around_bytes default)


def _find_mmap(array: Any) -> mmap.mmap | None:
    """The ``mmap.mmap`` under ``array`` (a ``numpy.memmap`` or a view of one), or None."""
    seen = 0
    while array is not None and seen < 64:
        if isinstance(array, mmap.mmap):
            return array
        found = getattr(array, "_mmap", None)
        if isinstance(found, mmap.mmap):
            return found
        array, seen = getattr(array, "base", None), seen + 1
    return None


class PoolRows:
    """Read-only ``(n, d)`` rows of a pool's embeddings, optionally a subset of its positions, without a copy.

    What a query strategy receives as ``embeddings`` at scale: indexing it (an int, a slice, a list or an int/bool
    array, as on the first axis of an array) returns a new ``ndarray`` of those rows in the stored dtype, exactly the
    values ``base[positions][key]`` would give, but ``base[positions]`` (``(n, d)``, 7.3 GiB for 10,000,000 float16
    rows of 384) is never built. When ``base`` is a memory map of a file (``numpy.load(..., mmap_mode="r")``), rows are
    read from the file with ``pread`` (through the page cache, never mapped into this process: a mapped page counts
    in the resident set, and one fault may map megabytes around it), so a full pass over a map larger than memory
    keeps a bounded resident set. Another memory map is indexed directly and its pages dropped from this process
    (``madvise(MADV_DONTNEED)``) after every :data:`RELEASE_BYTES` bytes read.

    Args:
        base: ``(N, d)`` array or ``numpy.memmap`` (float16/float32 rows).
        positions: ``(n,)`` int64 positions into ``base`` (the rows this view shows, in this order); None: all ``N``.

    Raises:
        ValueError: ``base`` is not 2-D, or ``positions`` is not 1-D or out of ``[0, N)``.
    """

    def __init__(self, base: np.ndarray, positions: np.ndarray | None = None) -> None:
        if np.ndim(base) != 2:
            raise ValueError(f"embeddings must be (N, d), got shape {np.shape(base)}")
        if positions is not None:
            positions = np.asarray(positions, dtype=np.int64)
            if positions.ndim != 1:
                raise ValueError(f"positions must be 1-D, got shape {positions.shape}")
            if positions.size and (positions.min() < 0 or positions.max() >= base.shape[0]):
                raise ValueError(f"positions must lie in [0, {base.shape[0]})")
            if positions.size == base.shape[0] and (positions.size == 0 or (
                    positions[0] == 0 and bool((np.diff(positions) == 1).all()))):
                positions = None  # every row, in order: index the base directly
        self.base = base
        self.positions = positions
        self._mmap = _find_mmap(base)
        self._map_bytes = len(self._mmap) if self._mmap is not None else 0
        self._read = 0
        self._file = _file_rows(base)  # (path, offset of row 0, bytes per row) when rows can be read from the file
        self._fd: int | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, d)``."""
        n = self.base.shape[0] if self.positions is None else self.positions.size
        return (int(n), int(self.base.shape[1]))

    @property
    def ndim(self) -> int:
        """Always 2."""
        return 2

    @property
    def dtype(self) -> np.dtype:
        """The stored dtype (float16 for a project's embeddings)."""
        return self.base.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The whole ``(n, d)`` array (a copy; what the view exists to avoid, kept for small pools and tests)."""
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        """Rows ``key`` (int, slice, list or int/bool array) as a new ndarray; a tuple indexes rows then columns."""
        cols: Any = None
        if isinstance(key, tuple):
            key, cols = key[0], key[1:]
        if self.positions is not None:
            key = self.positions[key]
        elif not isinstance(key, (slice, int, np.integer)):
            key = np.asarray(key)
            if key.dtype == bool:
                if key.shape != (self.base.shape[0],):
                    raise IndexError(f"boolean index of shape {key.shape} does not match ({self.base.shape[0]},)")
                key = np.flatnonzero(key)
        if self._file is not None:
            out = self._pread(key)
        elif isinstance(key, (slice, int, np.integer)) or self._mmap is None:
            out = np.array(self.base[key], copy=True)
            self._note(out.nbytes)
        else:
            # Scattered rows of a map: every row read maps up to FAULT_AROUND_BYTES of its neighbours too, so
            # they are gathered in groups and the map released between groups.
            key = np.asarray(key, dtype=np.int64)
            out = np.empty((*key.shape, *self.base.shape[1:]), dtype=self.base.dtype)
            flat_key, flat_out = key.reshape(-1), out.reshape(-1, *self.base.shape[1:])
            group = max(1, RELEASE_BYTES // FAULT_AROUND_BYTES)
            for start in range(0, flat_key.size, group):
                flat_out[start : start + group] = self.base[flat_key[start : start + group]]
                self._note(min(flat_key[start : start + group].size * FAULT_AROUND_BYTES, self._map_bytes))
        if cols:
            out = out[(slice(None), *cols)] if out.ndim == 2 else out[cols]
        return out

    def _pread(self, key: Any) -> np.ndarray:
        """Rows ``key`` of the base (an int, a slice or an int array, any order, repeats allowed) read from its file."""
        n = self.base.shape[0]
        if isinstance(key, (int, np.integer)):
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"index {int(key)} is out of bounds for axis 0 with size {n}")
            return self._pread(np.array([i]))[0]
        if isinstance(key, slice):
            rows = range(n)[key]
            if rows.step == 1:
                return self._read_run(rows.start, len(rows))
            key = np.arange(rows.start, rows.stop, rows.step, dtype=np.int64)
        key = np.asarray(key)
        if key.dtype.kind not in "iu":
            raise IndexError(f"arrays used as indices must be of integer (or boolean) type, not {key.dtype}")
        flat = key.reshape(-1).astype(np.int64)
        if flat.size and (flat.min() < -n or flat.max() >= n):
            bad = flat[(flat < -n) | (flat >= n)][0]
            raise IndexError(f"index {bad} is out of bounds for axis 0 with size {n}")
        flat = np.where(flat < 0, flat + n, flat)
        if flat.size == 0:
            return np.empty((*key.shape, *self.base.shape[1:]), dtype=self.base.dtype)
        unique, inverse = np.unique(flat, return_inverse=True)
        span = int(unique[-1] - unique[0]) + 1
        if span <= 4 * unique.size:  # dense: one read of the span, then pick the rows
            rows = self._read_run(int(unique[0]), span)[unique - unique[0]]
        else:  # sparse: one read per run of consecutive rows
            rows = np.empty((unique.size, *self.base.shape[1:]), dtype=self.base.dtype)
            breaks = np.flatnonzero(np.diff(unique) != 1) + 1
            for lo, hi in zip(np.concatenate([[0], breaks]).tolist(), np.concatenate([breaks, [unique.size]]).tolist()):
                self._read_run(int(unique[lo]), hi - lo, out=rows[lo:hi])
        out = rows[inverse] if unique.size != flat.size or not np.array_equal(unique, flat) else rows
        return out.reshape(*key.shape, *self.base.shape[1:])

    def _read_run(self, start: int, count: int, out: np.ndarray | None = None) -> np.ndarray:
        """``count`` consecutive rows from ``start``, read from the file into ``out`` (or a new array)."""
        import os

        if out is None:
            out = np.empty((count, *self.base.shape[1:]), dtype=self.base.dtype)
        if count == 0:
            return out
        path, offset, row_bytes = self._file
        if self._fd is None:
            self._fd = os.open(path, os.O_RDONLY)
        view = memoryview(out).cast("B")
        done, at = 0, offset + start * row_bytes
        while done < view.nbytes:
            got = os.preadv(self._fd, [view[done:]], at + done)
            if got <= 0:
                raise OSError(f"{path}: short read at byte {at + done}")
            done += got
        return out

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            import os

            try:
                os.close(self._fd)
            except OSError:
                pass

    def _note(self, nbytes: int) -> None:
        """Count ``nbytes`` read; past :data:`RELEASE_BYTES`, drop the map's pages from this process."""
        if self._mmap is None:
            return
        self._read += nbytes
        if self._read >= RELEASE_BYTES:
            self.release()

    def release(self) -> None:
        """Drop the memory map's pages from this process's resident set (no-op for an in-memory array)."""
        self._read = 0
        if self._mmap is not None and hasattr(mmap, "MADV_DONTNEED"):
            try:
                self._mmap.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # a closed map, or a platform without madvise: keep the pages
                pass


def _file_rows(base: Any) -> tuple[str, int, int] | None:
    """``(path, byte offset of row 0, bytes per row)`` of a C-contiguous ``numpy.memmap`` of a whole file region
    (what ``numpy.load(..., mmap_mode="r")`` gives), or None (another array, a view of a map, no ``os.preadv``)."""
    import os

    if not (isinstance(base, np.memmap) and isinstance(base.base, mmap.mmap) and hasattr(os, "preadv")):
        return None
    path = getattr(base, "filename", None)
    if not path or not base.flags.c_contiguous or base.dtype.hasobject:
        return None
    return str(path), int(base.offset), int(base.strides[0]) if base.shape[0] > 1 else int(base.itemsize * (
        base.shape[1] if base.ndim > 1 else 1))


def pool_rows(embeddings: np.ndarray | PoolRows, positions: np.ndarray | None = None) -> np.ndarray | PoolRows:
    """``embeddings`` restricted to ``positions``, as a :class:`PoolRows` view where that saves memory.

    Args:
        embeddings: ``(N, d)`` array, ``numpy.memmap`` or :class:`PoolRows`.
        positions: ``(n,)`` int64 positions (None: every row).

    Returns:
        ``embeddings`` itself when it is an in-memory array and ``positions`` is None, or already a view with no
        positions; else a :class:`PoolRows` (a view of a view composes the positions). Rows read through it equal
        ``embeddings[positions]`` exactly.

    Raises:
        ValueError: as :class:`PoolRows`.
    """
    if isinstance(embeddings, PoolRows):
        if positions is None:
            return embeddings
        inner = embeddings.positions
        return PoolRows(embeddings.base, np.asarray(positions, dtype=np.int64) if inner is None else inner[positions])
    if positions is None and _find_mmap(embeddings) is None:
        return embeddings
    return PoolRows(embeddings, positions)
