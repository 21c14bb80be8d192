"""The sharded activation store: each worker harvests a block of samples and keeps its activations
where it runs, as the memory-mapped .npy files of `onnx.harvest` in one folder per shard.

Shards are runs of whole batches (their bounds are multiples of the batch size), so onnxruntime
sees the very batches of a single-machine harvest and computes the same activations. A shard's
folder is written under a temporary name and renamed when complete: a retried task (a worker
lost mid-harvest) rewrites it whole, and a reader never sees half a shard.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INDEX = "shards.json"


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard: samples start..stop of the data, harvested into `directory`."""

    directory: str
    start: int
    stop: int
    tensors: tuple[str, ...] = ()
    # the network's input, not copied: (its name, the .npy data file, the per-sample shape) -- rows
    # start..stop of that file, read in place (None: the input is in `directory` like every other tensor)
    linked: tuple[str, str, tuple[int, ...]] | None = None

    @property
    def n(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, slots=True)
class ShardSet:
    """Every shard, with each tensor's per-sample shape and dtype, and the predicted classes' counts."""

    shards: tuple[Shard, ...]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    class_counts: np.ndarray

    @property
    def n_samples(self) -> int:
        return sum(s.n for s in self.shards)


def shard_bounds(n: int, shards: int, batch: int) -> list[tuple[int, int]]:
    """About `shards` runs of whole batches covering 0..n (fewer when there are fewer batches)."""
    batches = -(-n // batch)
    per = -(-batches // max(1, min(shards, batches)))
    return [(b * batch, min(n, (b + per) * batch)) for b in range(0, batches, per)]


_MODELS: dict[tuple[str, str], object] = {}  # per worker process: models read once
_LOCK = threading.Lock()


def worker_model(path: str, sha256: str):
    """The LoadedModel at `path` (read once per worker process; its SHA-256 must be the client's)."""
    from mofn2logic.errors import InputFileError
    from mofn2logic.inputs import load_model

    key = (path, sha256)
    with _LOCK:
        m = _MODELS.get(key)
        if m is None:
            m = load_model(path)
            if m.sha256 != sha256:
                raise InputFileError(f"the model file {path!r} on a worker differs from the client's (SHA-256); "
                                     "expected the same file on every machine")
            _MODELS.clear()
            _MODELS[key] = m
    return m


def harvest_shard(model_path: str, model_sha: str, data_path: str, key: str | None, start: int, stop: int,
                  directory: str, batch_size: int, providers: list[str] | None,
                  link_input: bool = False) -> tuple[Shard, np.ndarray, dict]:
    """Run onnxruntime on samples start..stop and keep every boundary tensor in `directory` (a worker task).
    Returns the shard, its predicted classes' counts, and the tensors' per-sample shapes and dtypes.
    `link_input`: where the data is an .npy file of the model's dtype read in place, the network's input
    is not copied into the shard but read from that file (`Shard.linked`): a copy of the data is what a
    harvest of a wide first layer writes most of."""
    from mofn2logic.inputs import check_data, read_array
    from mofn2logic.onnx.harvest import fetch_list, harvest

    m = worker_model(model_path, model_sha)
    net = m.network
    # the client checked the whole file; a worker reads its rows only (an .npy is memory-mapped)
    raw = read_array(data_path, key, max_bytes=1 << 62)
    x = check_data(raw[start:stop], net.input_shape, net.dtype, name=f"data {data_path!r}", max_bytes=1 << 62)
    fetch = fetch_list(net, preactivations=False)
    link = (link_input and isinstance(raw, np.memmap) and raw.flags.c_contiguous and net.input in fetch
            and np.shares_memory(x, raw))
    final = Path(directory)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        acts = harvest(m.network, m.proto, x, batch_size=batch_size, providers=providers,
                       memory_budget=0, store_dir=tmp, progress=False, preactivations=False,
                       threads=_worker_threads(), keep=[t for t in fetch if t != net.input] if link else None)
        out = np.asarray(acts[m.network.output])
        counts = np.bincount(np.argmax(out, axis=1), minlength=out.shape[1])
        meta = {k: (tuple(int(d) for d in v.shape[1:]), str(v.dtype)) for k, v in acts.items()}
        names = tuple(acts)
        linked = None
        if link:
            meta[net.input] = (tuple(int(d) for d in x.shape[1:]), str(x.dtype))
            linked = (net.input, str(Path(data_path).resolve()), meta[net.input][0])
        del acts, out
        if final.exists():  # an earlier attempt of this task finished before its worker was lost
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Shard(str(final), start, stop, names, linked), counts, meta


def _worker_threads() -> int | None:
    """The running Dask worker's thread count (None outside a worker): its onnxruntime session takes as
    many threads, so that workers sharing a machine do not each start one per core and contend."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return None


def fixed_batch(model) -> int | None:
    """The model's fixed batch size (its input's first dimension), if it has one: `harvest` then runs
    batches of that size, and shard bounds must be multiples of it."""
    for vi in model.proto.graph.input:
        if vi.name == model.network.input:
            dims = vi.type.tensor_type.shape.dim
            if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                return int(dims[0].dim_value)
    return None


def open_shard(shard: Shard) -> dict[str, np.ndarray]:
    """Tensor name -> read-only memory map of the shard's rows."""
    names = json.loads((Path(shard.directory) / "index.json").read_text(encoding="utf-8"))
    out = {name: np.load(Path(shard.directory) / f"{k:04d}.npy", mmap_mode="r") for k, name in enumerate(names)}
    if shard.linked is not None:
        name, path, shape = shard.linked
        out[name] = np.load(path, mmap_mode="r")[shard.start:shard.stop].reshape((shard.n, *shape))
    return out


def harvest_sharded(client, model, data_path: str, key: str | None, directory: str | os.PathLike[str], *,
                    shards: int, batch_size: int, providers: list[str] | None = None,
                    link_input: bool = False) -> ShardSet:
    """Harvest `data_path` on the cluster into `directory`, one folder per shard; nothing comes back but
    each shard's description (model: the client's LoadedModel, checked against the workers').
    `link_input`: shards read the network's input from the data file in place (`harvest_shard`): for a
    store used while the data file stays (extract), not for one that must stand alone (harvest)."""
    from mofn2logic.distributed.cluster import result

    n = client_dataset(model, data_path, key)[1]  # each worker checks the values of its rows
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    batch_size = fixed_batch(model) or batch_size  # the batches onnxruntime runs, as `harvest` chooses them
    futures = [client.submit(harvest_shard, str(Path(model.path).resolve()), model.sha256,
                             str(Path(data_path).resolve()), key, a, b, str((root / f"shard-{k:05d}").resolve()),
                             batch_size, providers, link_input, pure=False)
               for k, (a, b) in enumerate(shard_bounds(n, shards, batch_size))]
    got = result(futures, client)
    counts = np.sum([g[1] for g in got], axis=0)
    meta = got[0][2]
    out = ShardSet(tuple(g[0] for g in got), {k: v[0] for k, v in meta.items()}, {k: v[1] for k, v in meta.items()},
                   counts)
    (root / INDEX).write_text(json.dumps({
        "shards": [{"directory": Path(s.directory).name, "start": s.start, "stop": s.stop,
                    **({"input_rows_of": s.linked[1]} if s.linked else {})} for s in out.shards],
        "shapes": {k: list(v) for k, v in out.shapes.items()}, "dtypes": out.dtypes,
        "class_counts": [int(c) for c in counts]}, indent=1), encoding="utf-8")
    return out


def client_dataset(model, data: str, key: str | None, *, sha256: str | None = None):
    """What the client reads of the data: its shape and dtype (an .npy stays on disk, untouched), and the
    sample count; each worker checks the values of its own rows. `sha256`: the file's, for the provenance
    (the caller hashes the file once, beside the cluster's work; "" when not given)."""
    from mofn2logic.inputs import Dataset, check_data, read_array

    x = read_array(data, key, max_bytes=1 << 62)
    net = model.network
    first = check_data(x[:1], net.input_shape, net.dtype, name=f"data {data!r}", max_bytes=1 << 62)
    return Dataset(first, None, Path(data).name, sha256 or "", key, (Path(data),)), len(x)
