"""A project on disk: ``curate.toml``, ``pool.parquet``, ``curate.db``, ``embeddings.npy``, ``rounds/``, ``report/``."""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa

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

    @cached_property
    def ids(self) -> list[str]:
        return self.pool.column("id").to_pylist()

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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
