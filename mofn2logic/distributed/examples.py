"""A shard's examples for one layer, as the cluster's tasks read them (kept per worker between tasks).

Shared by the prefix and split searches (`distributed.search`) and the pooled ones
(`distributed.best`).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from mofn2logic.distributed.store import Shard, open_shard, worker_model

COLUMN_BYTES = 256 * 1024**2  # values one task reads per shard
UNITS_PER_TASK = 16


@dataclass(frozen=True, slots=True)
class Source:
    """Where a shard's examples for one layer come from: the layer's examples (inputs and targets; for a
    convolution, the seeded (sample, position) draw) or, for a new chain split of a convolution's input
    channels, the drawn (sample, position) values of every channel."""

    model_path: str
    model_sha: str
    layer: int
    kind: str  # "examples" or "channels"


_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # per worker: the last layers' examples
_LOCK = threading.Lock()


def examples(shard: Shard, src: Source, pick: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs (E', n), targets (E', U) or None, predicted class (E',)) of a shard for `src`."""
    from mofn2logic.search.conv_examples import gather_patches

    key = (shard.directory, src, None if pick is None else hashlib.sha1(pick.tobytes()).hexdigest())
    with _LOCK:
        got = _CACHE.get(key)
    if got is not None:
        return got
    m = worker_model(src.model_path, src.model_sha)
    net = m.network
    layer = net.layers[src.layer]
    acts = open_shard(shard)
    pred = np.argmax(np.asarray(acts[net.output]), axis=1)
    x, y = acts[layer.input], acts[layer.output]
    e = x.shape[0]
    if src.kind == "channels":
        vals = np.asarray(x).reshape(e, x.shape[1], -1)
        flat = np.arange(e * vals.shape[2]) if pick is None else pick
        s, p = np.divmod(flat, vals.shape[2])
        got = (vals[s, :, p], np.zeros((len(s), 0), x.dtype), pred[s])
    elif layer.kind == "dense":
        got = (x.reshape(e, -1), y.reshape(e, -1), pred)
    else:
        oh, ow = y.shape[2], y.shape[3]
        flat = np.arange(e * oh * ow) if pick is None else pick
        sample, rest = np.divmod(flat, oh * ow)
        oy, ox = np.divmod(rest, ow)
        got = (gather_patches(x, layer, sample, oy, ox), np.asarray(y[sample, :, oy, ox]), pred[sample])
    with _LOCK:  # threads of one worker (or of a local cluster without processes) share it
        while len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = got
    return got


def unit_targets(ex, j: int, heads, n_classes: int) -> np.ndarray:
    _, targets, pred = ex
    return pred == j if heads is None else targets[:, j] >= heads[j]


def add_lists(a, b):
    return [x + y for x, y in zip(a, b)]


_ROWS: dict[tuple, Any] = {}  # per worker: the last layer's literal matrix as sparse rows (chain mode: shared)


def sparse_rows(shard, src, pick, ex, t: np.ndarray, shared: bool):
    """`SparseRows.at_least(x, t)` of a shard's examples, kept on the worker when every unit shares `t`."""
    from mofn2logic.search.unit import SparseRows

    if not shared:
        return SparseRows.at_least(ex[0], t)
    key = (shard.directory, src, None if pick is None else hashlib.sha1(pick.tobytes()).hexdigest(),
           hashlib.sha1(t.tobytes()).hexdigest())
    with _LOCK:
        got = _ROWS.get(key)
    if got is None:
        got = SparseRows.at_least(ex[0], t)
        with _LOCK:
            _ROWS.clear()
            _ROWS[key] = got
    return got


def columns(ex: tuple, which: str, cols: slice | np.ndarray) -> np.ndarray:
    return ex[0][:, cols] if which == "inputs" else ex[1][:, cols]
