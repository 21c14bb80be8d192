"""The commands' cluster paths: harvest into a sharded store, extract rules on the cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mofn2logic.errors import DataError, OutputFileError


def _check(scheduler: str | None, workers: int | None, shards: int | None) -> None:
    if scheduler and workers:
        raise DataError("--scheduler and --workers exclude each other; expected one of them")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise DataError(f"scheduler {scheduler!r} is not an address; expected tcp://HOST:PORT")
    if workers is not None and workers < 1:
        raise DataError(f"--workers must be 1 or more, got {workers}")
    if shards is not None and shards < 1:
        raise DataError(f"--shards must be 1 or more, got {shards}")


def _data_path(data: Any) -> str:
    if not isinstance(data, (str, os.PathLike)):
        raise DataError("a Dask run reads the data from a file every worker can open; got an array")
    return str(data)


def _low_priority(fn, *args):
    """fn(*args) on this thread at the lowest CPU priority (Linux: a thread's nice value is its own), so that
    it takes what local workers leave idle, not a share of what they use."""
    import threading

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass
    return fn(*args)


def extract(model_path: str | os.PathLike[str], data: str | os.PathLike[str], *, key: str | None = None,
            scheduler: str | None = None, workers: int | None = None, shards: int | None = None,
            store: str | os.PathLike[str] | None = None, batch_size: int = 256,
            providers: Sequence[str] | None = None, memory_budget: Any = None, processes: bool = True, log=None,
            client: Any = None, **options: Any):
    """`api.extract` on a Dask cluster: the same rule set (see `distributed.search`). `client`: a connected
    `distributed.Client` to use instead of `scheduler` / `workers` (left open)."""
    from mofn2logic.distributed.cluster import connect, n_workers, remote_workers
    from mofn2logic.distributed.search import extract_sharded, refuse
    from mofn2logic.distributed.store import client_dataset, harvest_sharded
    from mofn2logic.inputs import file_sha256, load_model, provenance

    _check(scheduler, workers if client is None else None, shards)
    refuse(options.get("order", "weight"), options.get("conv_position", "all"), options.get("fit_on", "network"))
    options.pop("device", None)  # the workers count; every backend gives the same counts
    model = load_model(model_path)
    client_dataset(model, _data_path(data), key)  # the header checked before any cluster starts
    with contextlib.ExitStack() as stack:
        # the data's SHA-256 (for the provenance) is read beside the cluster's work: one pass over the file
        # that otherwise stands alone before the harvest (hashlib and file reads release the GIL)
        sha = stack.enter_context(ThreadPoolExecutor(1)).submit(_low_priority, file_sha256, str(data))
        if store is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mofn2logic-shards-")))
        else:
            root = Path(store)
        if client is None:
            client = stack.enter_context(connect(scheduler, workers, processes=processes))
        if store is None:  # the default store is a folder on this machine: workers elsewhere cannot share it
            far = remote_workers(client.scheduler_info().get("workers", {}))
            if far:
                raise DataError(f"{len(far)} Dask worker(s) run on other machines ({far[0]}...); expected --store "
                                "FOLDER, a folder every worker reads and writes at the same path (the default is a "
                                "temporary folder on this machine)")
        k = shards or n_workers(client)
        s = harvest_sharded(client, model, str(data), key, root, shards=k, batch_size=batch_size,
                            providers=list(providers) if providers else None, link_input=True)
        return extract_sharded(client, model, s, log=log, **options,
                               provenance=lambda: provenance(model, client_dataset(model, str(data), key,
                                                                                   sha256=sha.result())[0]))


def harvest(model_path: str | os.PathLike[str], data: str | os.PathLike[str], output: str | os.PathLike[str], *,
            key: str | None = None, scheduler: str | None = None, workers: int | None = None,
            shards: int | None = None, batch_size: int = 256, providers: Sequence[str] | None = None,
            processes: bool = True):
    """Harvest on a Dask cluster into the folder `output` (a sharded store: shards.json and one folder of
    .npy files per shard), written beside it and renamed into place when complete."""
    from mofn2logic.distributed.cluster import connect, n_workers
    from mofn2logic.distributed.store import INDEX, harvest_sharded
    from mofn2logic.inputs import load_model

    _check(scheduler, workers, shards)
    out = Path(output)
    if out.exists() and not (out.is_dir() and ((out / INDEX).exists() or not any(out.iterdir()))):
        raise OutputFileError(f"{str(out)!r} exists and is not a sharded store; expected a new or empty folder "
                              "(or an earlier store, which is replaced)")
    if not out.parent.is_dir():
        raise OutputFileError(f"the folder of {str(out)!r} does not exist; expected an existing folder")
    model = load_model(model_path)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        with connect(scheduler, workers, processes=processes) as client:
            s = harvest_sharded(client, model, _data_path(data), key, tmp, shards=shards or n_workers(client),
                                batch_size=batch_size, providers=list(providers) if providers else None)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return s
