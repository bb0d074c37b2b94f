"""A project on disk: ``curate.toml``, ``pool.parquet``, ``curate.db``, ``embeddings.npy``, ``rounds/``, ``report/``."""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.config import ProjectConfig, TaskConfig, load_config, save_config
from curate.errors import CurateError
from curate.pool import load_pool, read_pool, write_pool
from curate.store import Store

POOL_NAME = "pool.parquet"
INIT_MARK = ".curate-init"  # inside init's temporary folder: "HOST PID" of the init that builds it
# What init writes into its temporary folder (see init_project): nothing else is ever deleted.
_INIT_FILES = re.compile(
    r"(pool\.parquet|\.pool\.parquet\.[0-9a-f]{32}\.tmp|curate\.toml|curate\.toml\.tmp"
    r"|curate\.db(-wal|-shm|-journal)?|\.curate-init)"
)


def _alive(host: str, pid: int) -> bool:
    """Whether process ``pid`` may be running: True for another host (it cannot be checked from here)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or a number no process has: keep the folder
    return True


def clean_stale_init_folders(project: Path) -> list[Path]:
    """Delete the temporary folders an earlier ``init`` of ``project`` left beside it when it was killed.

    ``init_project`` builds the project in ``.NAME.XXXXXXXX`` (``tempfile.mkdtemp``) beside ``project``
    and renames it into place; ``kill -9`` (or a power cut) before the rename leaves that folder behind.
    A folder is deleted only when its name has that form, it holds nothing but the files init writes,
    and the init that made it is gone: its ``.curate-init`` mark names a process of this host that no
    longer runs, or it has no mark (an init killed in its first instant, or made by an older curate).
    A folder whose init still runs, or that was made on another host, is kept.

    Returns:
        The folders deleted.
    """
    project = Path(project)
    try:
        parent = project.resolve().parent
        candidates = list(parent.glob(f".{glob.escape(project.name)}.*"))
    except OSError:
        return []
    pattern = re.compile(rf"\.{re.escape(project.name)}\.[a-z0-9_]{{8}}")
    removed = []
    for folder in candidates:
        try:
            if not pattern.fullmatch(folder.name) or folder.is_symlink() or not folder.is_dir():
                continue
            names = [p.name for p in folder.iterdir()]
            if not all(_INIT_FILES.fullmatch(n) for n in names):
                continue
            mark = folder / INIT_MARK
            if mark.is_file():
                host, _, pid = mark.read_text(encoding="utf-8").strip().rpartition(" ")
                if not pid.isdigit() or _alive(host, int(pid)):
                    continue
            shutil.rmtree(folder)
            removed.append(folder)
        except (OSError, UnicodeDecodeError):
            continue  # unreadable, or removed meanwhile: leave it
    return removed


def init_project(
    project: Path,
    pool_file: Path,
    *,
    task: TaskConfig,
    overrides: dict | None = None,
) -> ProjectConfig:
    """Create ``project`` from a pool file (JSON Lines, CSV or Parquet).

    The pool is read and validated first (text present and non-empty, ids unique, gold labels in
    ``task.labels``), then the project is assembled in a temporary folder beside it and renamed
    into place, so a failure leaves the file system as it was.

    Args:
        overrides: nested settings merged over the defaults, e.g. ``{"loop": {"seed": 1}}``.

    Temporary folders that an earlier, killed ``init`` of the same project left beside it are deleted
    first (see :func:`clean_stale_init_folders`).

    Raises:
        CurateError: ``project`` exists and is not empty, or the pool file is invalid.
    """
    project = Path(project)
    clean_stale_init_folders(project)
    if project.exists() and (not project.is_dir() or any(project.iterdir())):
        raise CurateError(f"{project}: already exists and is not empty; choose a new project folder")
    table = read_pool(
        Path(pool_file),
        text_field=task.text_field,
        id_field=task.id_field,
        labels=task.labels,
        gold_field=task.gold_field,
        crowd_field=task.crowd_field,
    )
    task = task.model_copy(update={"source": str(Path(pool_file).resolve())})
    data = {"task": task.model_dump()}
    for section, values in (overrides or {}).items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:  # a top-level setting such as ``database``
            data[section] = values
    from curate.config import validate_config

    config = validate_config(data, str(project / "curate.toml"))
    parent = project.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{project.name}.", dir=parent))
    try:
        (tmp / INIT_MARK).write_text(f"{socket.gethostname()} {os.getpid()}", encoding="utf-8")
        tmp.chmod(0o777 & ~_umask())
        write_pool(table, tmp / POOL_NAME)
        save_config(tmp, config)
        Store(config.database or tmp).close()
        if project.exists():
            project.rmdir()  # empty, checked above
        # The mark goes before the rename, so a kill right after it cannot leave the mark inside the project.
        (tmp / INIT_MARK).unlink()
        os.replace(tmp, project)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return config


@dataclass
class Project:
    """An opened project: its folder, settings, database and pool."""

    path: Path
    config: ProjectConfig

    @classmethod
    def open(cls, path: Path) -> "Project":
        """Open an existing project.

        Raises:
            CurateError: no ``curate.toml`` or ``pool.parquet`` there, or the settings are invalid.
        """
        path = Path(path)
        config = load_config(path)
        if not (path / POOL_NAME).is_file():
            raise CurateError(f"{path / POOL_NAME}: missing; re-create the project with `curate init`")
        return cls(path, config)

    @cached_property
    def store(self) -> Store:
        return Store(self.config.database or self.path)

    @cached_property
    def pool(self) -> pa.Table:
        return load_pool(self.path / POOL_NAME)

    def _pool_column(self, name: str) -> pa.ChunkedArray:
        """``(N,)`` one pool column, read alone from ``pool.parquet`` unless the whole pool is loaded already."""
        if "pool" in self.__dict__:
            return self.pool.column(name)
        return load_pool(self.path / POOL_NAME, columns=[name]).column(name)

    @cached_property
    def id_column(self) -> pa.ChunkedArray:
        """``(N,)`` the pool's ids as Arrow strings, read without the texts unless the pool is loaded already."""
        return self._pool_column("id")

    @cached_property
    def ids(self) -> list[str]:
        return self.id_column.to_pylist()

    @cached_property
    def text_column(self) -> pa.ChunkedArray:
        """``(N,)`` the pool's texts as Arrow strings, read without the other columns unless the pool is loaded."""
        return self._pool_column("text")

    @property
    def text_sequence(self) -> Sequence[str]:
        """The pool's texts as a read-only sequence, without a Python list of all of them: :attr:`texts` when it is
        loaded already, else a :class:`StringColumn` (iterating streams ``pool.parquet``; indexing reads the text
        column into Arrow memory, about a third of what a list of the same strings takes)."""
        if "texts" in self.__dict__:
            return self.texts
        return StringColumn(self.path / POOL_NAME, "text", lambda: self.text_column)

    @cached_property
    def texts(self) -> list[str]:
        return self.pool.column("text").to_pylist()

    @cached_property
    def position(self) -> dict[str, int]:
        """``{item_id: int64 position in the pool}``."""
        return {item_id: i for i, item_id in enumerate(self.ids)}

    def column(self, name: str) -> list:
        """A pool column as a Python list.

        Raises:
            CurateError: the column is not in the pool, naming the available ones.
        """
        if name not in self.pool.column_names:
            raise CurateError(
                f"{self.path / POOL_NAME}: no column {name!r}; available: {', '.join(self.pool.column_names)}"
            )
        return self.pool.column(name).to_pylist()

    def round_dir(self, round_index: int) -> Path:
        d = self.path / "rounds" / f"r{round_index:03d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def gold(self) -> dict[str, str] | None:
        """``{item_id: gold label}`` from the task's gold column, or None when there is none.

        Raises:
            CurateError: a gold value is not one of the task's labels (naming the row and value).
        """
        field = self.config.task.gold_field
        if not field:
            return None
        values = self.column(field)
        labels = set(self.config.task.labels)
        for i, v in enumerate(values):
            if v not in labels:
                raise CurateError(
                    f"{self.config.task.source or self.path / POOL_NAME}: row {i + 1}: {field}={v!r} is not one of "
                    f"the labels {sorted(labels)}; fix the data or the labels"
                )
        return dict(zip(self.ids, values))

    def mask(self, item_ids) -> np.ndarray:
        """``(N,)`` bool mask of the given item ids."""
        m = np.zeros(len(self.ids), dtype=bool)
        pos = self.position
        m[[pos[i] for i in item_ids if i in pos]] = True
        return m


class StringColumn(Sequence[str]):
    """A string column of a pool file as a read-only ``Sequence[str]`` of its ``N`` values, in pool order.

    Iterating reads the file one record batch at a time and keeps nothing (e.g. the embeddings' fingerprint of
    10,000,000 texts); ``len`` reads the file's metadata; indexing (an int, negative counts from the end, or a slice,
    which gives a list) asks ``load()`` for the whole column once (an Arrow ``ChunkedArray``) and reads from it.

    Args:
        path: the pool's Parquet file.
        name: the column (``"id"`` or ``"text"``).
        load: returns the whole column as Arrow strings (cached by the caller, e.g. :attr:`Project.text_column`).

    Raises:
        IndexError: an int index out of ``[-N, N)``.
        TypeError: an index that is neither an int nor a slice.
    """

    def __init__(self, path: Path, name: str, load: "Callable[[], pa.ChunkedArray]") -> None:
        self.path, self.name, self._load = Path(path), name, load
        self._column: pa.ChunkedArray | None = None
        self._n: int | None = None

    def __len__(self) -> int:
        if self._n is None:
            self._n = len(self._column) if self._column is not None else pq.ParquetFile(self.path).metadata.num_rows
        return self._n

    def _whole(self) -> pa.ChunkedArray:
        if self._column is None:
            self._column = self._load()
        return self._column

    def __iter__(self):
        if self._column is not None:
            for chunk in self._column.chunks:
                yield from chunk.to_pylist()
            return
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=65_536, columns=[self.name]):
            yield from batch.column(0).to_pylist()

    def __getitem__(self, key):
        if isinstance(key, slice):
            rows = range(len(self))[key]
            if rows.step == 1:
                return self._whole().slice(rows.start, len(rows)).to_pylist()
            return self._whole().take(pa.array(list(rows), pa.int64())).to_pylist()
        if isinstance(key, (int, np.integer)):
            n = len(self)
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"index {int(key)} out of range for {n} items")
            return self._whole()[i].as_py()
        raise TypeError(f"indices must be integers or slices, not {type(key).__name__}")


SCORE_CHUNK_ROWS = 1_000_000  # rows of scores.parquet written at a time (one row group each)


def write_scores(path: Path, ids: pa.ChunkedArray | pa.Array | list[str], proba: np.ndarray, labels: list[str], *,
                 chunk_rows: int = SCORE_CHUNK_ROWS) -> None:
    """Write a round's scores, ``id`` then ``p_LABEL`` per label, to ``path`` as Parquet, ``chunk_rows`` at a time.

    The file holds what ``pyarrow.table({"id": ids, "p_LABEL": proba[:, j], ...})`` holds (the same schema and
    values); only ``chunk_rows`` rows are converted at a time, so writing 10,000,000 rows needs no second copy of
    the ids or the probabilities.

    Args:
        path: the file to write (replaced if it exists; the caller renames it into place).
        ids: ``(N,)`` item ids (an Arrow string array, e.g. the pool's ``id`` column, or a list of str).
        proba: ``(N, K)`` probabilities (float32 or float64; the dtype is kept), ``K = len(labels)``.
        labels: the ``K`` label names.
        chunk_rows: rows per write (one Parquet row group each), ``>= 1``.

    Raises:
        ValueError: ``proba`` is not ``(len(ids), len(labels))`` or ``chunk_rows < 1``.
        OSError: the file cannot be written.
    """
    n = len(ids)
    if np.ndim(proba) != 2 or proba.shape != (n, len(labels)):
        raise ValueError(f"proba must be ({n}, {len(labels)}), got shape {np.shape(proba)}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if isinstance(ids, list):
        ids = pa.array(ids, pa.string())
    elif ids.type != pa.string():
        ids = ids.cast(pa.string())
    schema = pa.schema([("id", pa.string())] + [(f"p_{lab}", pa.from_numpy_dtype(proba.dtype)) for lab in labels])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, max(n, 1), chunk_rows):
            stop = min(start + chunk_rows, n)
            columns = [ids.slice(start, stop - start)] + [pa.array(np.ascontiguousarray(proba[start:stop, j]))
                                                          for j in range(len(labels))]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
