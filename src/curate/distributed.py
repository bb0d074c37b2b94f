"""Ray Data as the distributed engine for the two passes that touch every pool item: embedding and scoring.

With ``runtime.ray_address`` set (``curate run PROJECT --ray ADDRESS``, or ``--ray auto``), the loop's embedding pass
(:meth:`curate.loop.Loop.embeddings`) and every round's scoring pass of a fine-tuned student
(:meth:`curate.loop.Loop.score`) run as a Ray Data pipeline over the project's ``pool.parquet``:

    ray.data.read_parquet(PROJECT/pool.parquet) -> map_batches(actor class, batch_size, ActorPoolStrategy) -> driver

(Ray Data, "End-to-end: Offline Batch Inference", https://docs.ray.io/en/latest/data/batch_inference.html, and
``Dataset.map_batches``, https://docs.ray.io/en/latest/data/api/doc/ray.data.Dataset.map_batches.html: a callable
class given to ``map_batches`` with ``compute=ray.data.ActorPoolStrategy(...)`` becomes a pool of actors, each
constructing the model once). Each actor calls the same functions as the single-process path
(:func:`curate.embed.embed_texts`, :meth:`curate.models.encoder.EncoderClassifier.predict_proba`) on its batch, with
the project's recorded precision (bf16/fp32) and backend; the driver puts every result back at its item's position
(by id) and writes the same files the single-process path writes (``embeddings.npy`` float16 and
``embeddings.json``; the loop writes ``rounds/rTTT/scores.parquet`` from the returned ``(N, K)`` array as it always
does). Selection, the store, the oracle and training do not change.

What a cluster needs:

- every worker runs the same curate and model packages (same versions) as the driver: the actors import
  :mod:`curate` and load the embedding model (``bundled:...`` comes from its pip package) or the round's student;
- every worker reads the project folder at the same path as the driver (a shared file system): the actors read
  ``PROJECT/pool.parquet`` and ``PROJECT/rounds/rTTT/model`` (``rounds/weak/model``) from there. Results come back
  through Ray to the driver, which alone writes into the project.

A worker process or node that dies is handled by Ray: the actor is restarted and its batch runs again (Ray Data's
actor pools default to ``max_restarts=-1``, ``max_task_retries=-1``). An exception in a batch (e.g. the model folder
not readable on a worker) fails the pass: the step raises, is not recorded, and ``curate run`` resumes at it.

``ray`` is imported only here, and only inside these functions: nothing else in curate needs it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from curate.config import RuntimeConfig, StudentConfig
from curate.errors import CurateError
from curate.progress import progress_callback

SETTING = "runtime.ray_address (--ray)"
_ADDRESS = re.compile(r"(?P<client>ray://)?(?P<host>[A-Za-z0-9_.\-]+):(?P<port>\d{1,5})")
PIP = "pip install 'ray[data]==2.60.0'"


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ModuleNotFoundError:
        raise CurateError(f"{SETTING} needs the package ray[data]: {PIP} (scripts/setup.sh installs it)") from None
    return ray


def _check_reachable(address: str, where: str,
                     fix: str = "start one with `ray start --head` and give the address it prints, or use --ray auto",
                     ) -> None:
    """Fail in one line, within seconds, when nothing listens at ``HOST:PORT`` (``ray.init`` waits long there).

    Raises:
        CurateError: ``address`` is not ``[ray://]HOST:PORT``, or a TCP connection to it fails within 5 s.
    """
    m = _ADDRESS.fullmatch(address)
    if m is None:
        raise CurateError(f"{where} = {address!r}: not an address; give HOST:PORT (what `ray start --head` prints, "
                          "e.g. 127.0.0.1:6379), ray://HOST:PORT, or auto")
    try:
        socket.create_connection((m["host"], int(m["port"])), timeout=5).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise CurateError(f"{where} = {address!r}: no Ray cluster answers there ({why}); {fix}") from None


def connect(runtime: RuntimeConfig, *, log: Callable[[str], None] | None = None) -> str:
    """Connect this process to the Ray cluster of ``runtime.ray_address`` once; later calls reuse the connection.

    ``HOST:PORT`` (or ``ray://HOST:PORT``, Ray Client) joins that cluster (``ray.init(address=...)``,
    https://docs.ray.io/en/latest/ray-core/api/doc/ray.init.html). ``auto`` joins the cluster named by the
    environment variable ``RAY_ADDRESS`` or the one ``ray start`` started on this machine, and starts a local one
    (all cores, no dashboard) when there is none. A process already connected (``ray.is_initialized()``) keeps its
    connection.

    Returns:
        The cluster's address as Ray reports it (``HOST:PORT``).

    Raises:
        CurateError: one line: ray is not installed; the address is malformed or nothing answers there; Ray refused
            to connect (e.g. a token-authenticated cluster without the token).
    """
    address = runtime.ray_address
    if not address:
        raise CurateError(f"{SETTING} is not set: nothing to connect to")
    ray = _import_ray()
    if not ray.is_initialized():
        kwargs = dict(logging_level=logging.WARNING, log_to_driver=False)
        env = os.environ.get("RAY_ADDRESS")
        # Ray 2.60's core worker logs an error-level line for every Ray Data actor it creates (its constructor
        # arguments sit in the object store, ray-project/ray#53727): harmless, and several per pass. This process's
        # core worker logs fatal errors only (set before ray.init, which reads it; RAY_BACKEND_LOG_LEVEL wins if set).
        quiet = "RAY_BACKEND_LOG_LEVEL" not in os.environ
        if quiet:
            os.environ["RAY_BACKEND_LOG_LEVEL"] = "fatal"
        try:
            if address != "auto":
                _check_reachable(address, SETTING)
                ray.init(address=address, **kwargs)
            elif env:
                _check_reachable(env, f"{SETTING} = 'auto' and RAY_ADDRESS",
                                 "start that cluster, or unset RAY_ADDRESS for a local one")
                ray.init(address=env, **kwargs)
            else:
                try:
                    ray.init(address="auto", **kwargs)  # a cluster `ray start` started here
                except ConnectionError:
                    ray.init(address="local", include_dashboard=False, **kwargs)
                    if log is not None:
                        log(f"ray: started a local cluster ({int(ray.cluster_resources().get('CPU', 0))} CPUs)")
        except CurateError:
            raise
        except Exception as exc:  # ray's own errors: ConnectionError, RuntimeError, AuthenticationError, ...
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CurateError(f"{SETTING} = {address!r}: could not join the Ray cluster: {first}") from None
        finally:
            if quiet:
                os.environ.pop("RAY_BACKEND_LOG_LEVEL", None)
    _quiet_ray_data()
    try:
        return ray.get_runtime_context().gcs_address
    except Exception:  # e.g. a Ray Client connection, which may not expose it
        return address


def _quiet_ray_data() -> None:
    """No Ray Data progress bars or per-dataset INFO lines: curate shows its own progress on the driver."""
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its warnings stay (e.g. actors the cluster cannot place)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "Progress bars disabled": on purpose


def _pool_dataset(pool_path: Path):
    """``ray.data.Dataset`` of the pool's ``id`` and ``text`` columns (``ray.data.read_parquet``,
    https://docs.ray.io/en/latest/data/api/doc/ray.data.read_parquet.html).

    The read tasks reserve no CPU (``num_cpus=0``, a light I/O step) and use Ray Data's V1 Parquet reader: the V2
    reader (2.60's default) lists files in a task that needs a CPU, which never starts when the actors hold every CPU
    of a small cluster (seen on 2 CPUs with 2 actors: the pass waited forever). The V1 reader also splits a single
    file into several blocks, so every actor gets work.
    """
    import ray.data

    ctx = ray.data.DataContext.get_current()
    before = ctx.use_datasource_v2
    ctx.use_datasource_v2 = False  # the dataset copies the context when it is created
    try:
        return ray.data.read_parquet(str(pool_path), num_cpus=0).select_columns(["id", "text"])
    finally:
        ctx.use_datasource_v2 = before


def _actor_count(runtime: RuntimeConfig, gpu: bool) -> int:
    """``runtime.ray_actors``, or (None) one actor per ``runtime.ray_cpus_per_actor`` CPUs of the cluster (one per
    GPU for a GPU student), at least 1.

    Raises:
        CurateError: a GPU student on a cluster without a GPU (its actors would wait forever).
    """
    import ray

    res = ray.cluster_resources()
    if gpu and res.get("GPU", 0) < 1:
        raise CurateError("student.device is a GPU but the Ray cluster has none; set student.device = \"cpu\" "
                          "(--device cpu) or add GPU nodes")
    if runtime.ray_actors:
        return runtime.ray_actors
    if gpu:
        return max(1, int(res.get("GPU", 0)))
    return max(1, int(res.get("CPU", 1) // runtime.ray_cpus_per_actor))


def _run_pass(pool_path: Path, ids: Sequence[str], actor: type, constructor: dict, column: str,
              runtime: RuntimeConfig, *, description: str, progress: bool, log: Callable[[str], None] | None,
              sink: Callable[[np.ndarray, np.ndarray], None], num_gpus: float = 0) -> None:
    """Stream ``pool.parquet`` through ``actor`` on the cluster and hand each result batch to ``sink(positions,
    values)`` (``(b,)`` int64 pool positions, ``(b, ...)`` values of ``column``).

    ``Dataset.map_batches(actor, batch_size=runtime.ray_batch_size, compute=ActorPoolStrategy(...),
    num_cpus=runtime.ray_cpus_per_actor)`` (https://docs.ray.io/en/latest/data/api/doc/ray.data.Dataset.map_batches.html),
    read back on the driver with ``Dataset.iter_batches``
    (https://docs.ray.io/en/latest/data/api/doc/ray.data.Dataset.iter_batches.html) in whatever order the actors
    finish; each row is placed by its id.

    Raises:
        CurateError: the pass did not return every pool item exactly once, or returned ids not in the pool.
    """
    import ray.data

    address = connect(runtime, log=log)
    actors = _actor_count(runtime, gpu=num_gpus > 0)
    position = {item: i for i, item in enumerate(ids)}
    n = len(ids)
    if log is not None:
        log(f"{description}: {n:,} items on Ray at {address} ({actors} actor{'s' if actors != 1 else ''} x "
            f"{runtime.ray_cpus_per_actor} CPU{'s' if runtime.ray_cpus_per_actor != 1 else ''}"
            f"{' + 1 GPU' if num_gpus else ''}, batches of {runtime.ray_batch_size})")
    ds = _pool_dataset(Path(pool_path).resolve()).map_batches(
        actor,
        fn_constructor_kwargs=constructor,
        batch_size=runtime.ray_batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors, initial_size=actors),
        num_cpus=runtime.ray_cpus_per_actor,
        num_gpus=num_gpus or None,
    )
    seen = np.zeros(n, dtype=bool)
    with progress_callback(f"{description} (Ray)", total=n, enabled=progress) as advance:
        for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
            try:
                rows = np.fromiter((position[i] for i in batch["id"]), dtype=np.int64, count=len(batch["id"]))
            except KeyError as exc:
                raise CurateError(f"{description} on Ray returned id {exc.args[0]!r}, not in the pool; was "
                                  f"{pool_path} replaced during the run?") from None
            if seen[rows].any() or np.unique(rows).size != rows.size:
                raise CurateError(f"{description} on Ray returned an item twice ({ids[int(rows[seen[rows]][0])]!r})")
            seen[rows] = True
            sink(rows, batch[column])
            advance(rows.size)
    if not seen.all():
        raise CurateError(f"{description} on Ray returned {int(seen.sum()):,} of {n:,} items; run again")


class EmbedActor:
    """A Ray Data actor that embeds batches of pool texts (the model is loaded once, in the constructor).

    Args:
        model: the embedding model (``selection.embedding_model``).
        precision: ``bf16`` or ``fp32`` (resolved, as the project recorded it).
        backend: ``selection.embedding_backend`` (``torch``, ``onnx``, ``onnx-int8``).
        threads: torch threads of this actor (``runtime.ray_cpus_per_actor``).
    """

    def __init__(self, model: str, precision: str, backend: str, threads: int) -> None:
        from curate.embed import embed_texts

        self.kwargs = dict(model=model, precision=precision, backend=backend, threads=threads, progress=False)
        embed_texts(["warm-up"], **self.kwargs)  # loads the model (cached per process) before the first batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"id": (b,), "text": (b,)}`` -> ``{"id": (b,), "embedding": (b, d) float32 unit rows}``."""
        from curate.embed import embed_texts

        return {"id": batch["id"], "embedding": embed_texts(list(batch["text"]), **self.kwargs)}


class ScoreActor:
    """A Ray Data actor that scores batches of pool texts with a saved student (loaded once, in the constructor).

    Args:
        folder: the saved student (``rounds/rTTT/model`` or ``rounds/weak/model``).
        labels: the task's ``K`` labels.
        settings: the student settings as a dict (``StudentConfig.model_dump()``), precision resolved.
    """

    def __init__(self, folder: str, labels: list[str], settings: dict) -> None:
        from curate.models.encoder import EncoderClassifier

        self.classifier = EncoderClassifier.load(Path(folder), labels, StudentConfig.model_validate(settings))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"id": (b,), "text": (b,)}`` -> ``{"id": (b,), "proba": (b, K) float32}``."""
        return {"id": batch["id"], "proba": self.classifier.predict_proba(list(batch["text"]), progress=False)}


def cached_embeddings(project: Path, ids: Sequence[str], texts: Sequence[str], *, model: str, precision: str,
                      runtime: RuntimeConfig, backend: str = "torch", progress: bool = True,
                      log: Callable[[str], None] | None = None) -> np.ndarray:
    """:func:`curate.embed.cached_embeddings` with the embedding pass on Ray: the same cache, the same files.

    A fresh ``PROJECT/embeddings.npy`` (fingerprint of ids, texts, model and backend in ``embeddings.json``) is
    returned as it is; else the pool is embedded on the cluster (:class:`EmbedActor` over ``pool.parquet``), written
    at each item's position into a float16 ``.npy`` (a temporary name, then renamed), and ``embeddings.json`` records
    the fingerprint, model, shape, precision and backend, as the single-process path does.

    Args:
        project: the project folder (its ``pool.parquet`` is read by the workers, at this path).
        ids, texts: the pool's ``N`` ids and texts, in pool order (the driver's copy: the fingerprint).
        model: ``selection.embedding_model``.
        precision: ``bf16`` or ``fp32``, as the project recorded it (:meth:`curate.loop.Loop.pin_precision`).
        runtime: the ``[runtime]`` settings (address, batch size, actors, CPUs per actor).
        backend: ``selection.embedding_backend``.

    Returns:
        ``(N, d)`` float16 memory-mapped array (read-only) of unit-norm rows.

    Raises:
        CurateError: see :func:`connect` and :func:`_run_pass`; ``precision`` is not resolved.
    """
    from curate.embed import EMBEDDINGS_NAME, embeddings_key, read_cached_embeddings, write_embeddings_meta

    if precision not in ("bf16", "fp32"):
        raise CurateError(f"the Ray embedding pass needs a resolved precision (bf16 or fp32), got {precision!r}")
    project = Path(project)
    path = project / EMBEDDINGS_NAME
    key = embeddings_key(ids, texts, model, backend)
    cached = read_cached_embeddings(project, key, len(ids))
    if cached is not None:
        return cached
    tmp = project / (EMBEDDINGS_NAME + ".tmp.npy")
    out: dict[str, np.ndarray] = {}

    def sink(rows: np.ndarray, values: np.ndarray) -> None:
        if "a" not in out:
            out["a"] = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(len(ids), values.shape[1]))
        out["a"][rows] = np.asarray(values, dtype=np.float32).astype(np.float16)  # as the single path rounds

    constructor = dict(model=model, precision=precision, backend=backend, threads=runtime.ray_cpus_per_actor)
    try:
        _run_pass(project / "pool.parquet", ids, EmbedActor, constructor, "embedding", runtime,
                  description="embedding", progress=progress, log=log, sink=sink)
        arr = out["a"]
        arr.flush()
        shape = list(arr.shape)
        del arr, out["a"]
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    write_embeddings_meta(project, key, model=model, shape=shape, precision=precision, backend=backend)
    return np.load(path, mmap_mode="r")


def student_scores(project: Path, ids: Sequence[str], folder: Path, labels: list[str], settings: StudentConfig,
                   runtime: RuntimeConfig, *, progress: bool = True,
                   log: Callable[[str], None] | None = None) -> np.ndarray:
    """The scoring pass of a saved fine-tuned student on Ray: p(label) of every pool item.

    Each actor (:class:`ScoreActor`) loads ``folder`` once with ``settings`` (its precision and backend, threads
    ``runtime.ray_cpus_per_actor``; a ``cuda`` student gets one GPU per actor) and scores its batches with
    :meth:`curate.models.encoder.EncoderClassifier.predict_proba`, as the single-process path scores the pool.

    Args:
        project: the project folder (workers read its ``pool.parquet`` and ``folder`` at these paths).
        ids: the pool's ``N`` ids in pool order.
        folder: the saved student.
        labels: the task's ``K`` labels (column order).
        settings: ``[student]`` with the precision resolved (bf16/fp32).
        runtime: the ``[runtime]`` settings.

    Returns:
        ``(N, K)`` float32 probabilities in pool order (rows sum to 1).

    Raises:
        CurateError: see :func:`connect` and :func:`_run_pass`; the folder is not a saved student.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file() and not (folder / "adapter_config.json").is_file():
        raise CurateError(f"{folder}: no saved student there (config.json or adapter_config.json)")
    gpu = settings.device != "cpu"
    actor_settings = settings.model_copy(update={"threads": runtime.ray_cpus_per_actor,
                                                 "device": "cuda" if gpu else "cpu"})  # Ray picks the GPU
    out = np.zeros((len(ids), len(labels)), dtype=np.float32)

    def sink(rows: np.ndarray, values: np.ndarray) -> None:
        out[rows] = values

    constructor = dict(folder=str(folder.resolve()), labels=list(labels), settings=actor_settings.model_dump())
    _run_pass(Path(project) / "pool.parquet", ids, ScoreActor, constructor, "proba", runtime,
              description=f"scoring {folder.parent.name}", progress=progress, log=log, sink=sink,
              num_gpus=1 if gpu else 0)
    return out
