"""Harvest every layer's input, pre-activation and output with one onnxruntime run per batch.

The boundary tensors of the network IR are exposed as extra graph outputs, so a batch costs
one `session.run`. The data feed the graph's input; when the explained part starts inside the
graph (`Network.head`), onnxruntime runs the head and the tensor at the cut is read like any
other boundary tensor. Activations stay in RAM up to a memory budget; past it they go to an
on-disk store of ``.npy`` files, one per tensor, written batch by batch with plain file writes and
read back through read-only memory maps opened afresh at each access: written pages are the page
cache's, not the process's, and a map's pages count in its resident size only while it is held.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from mofn2logic.errors import DataError, Mofn2LogicError, UnsupportedModelError
from mofn2logic.ir.network import Network
from mofn2logic.onnx.constants import subgraph_inputs
from mofn2logic.onnx.importer import layer_table, load_onnx, shown
from mofn2logic.onnx.load import check_no_external_data, one_line, quiet

DEFAULT_BATCH = 256
DEFAULT_BUDGET = 2 * 1024**3
GPU_PROVIDERS = ("CUDAExecutionProvider",)


def parse_size(text: str) -> int:
    """'512M', '2G', '1500000' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)i?[bB]?\s*", text)
    if not m:
        raise DataError(f"memory budget {text!r} is not a size; expected e.g. 512M, 2G or a number of bytes")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def select_providers(requested: list[str] | None = None) -> list[str]:
    """Requested providers (default: CUDA then CPU) that this onnxruntime build offers."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested:
        unknown = [p for p in requested if p not in available]
        if unknown:
            raise DataError(
                f"execution providers {unknown} are not available in this onnxruntime; available: {available}"
            )
        return list(requested)
    chosen = [p for p in (*GPU_PROVIDERS, "CPUExecutionProvider") if p in available]
    return chosen or list(available)


class Activations(Mapping[str, np.ndarray]):
    """Tensor name -> array of shape (E, ...). When `directory` is set, `arrays` maps names to
    ``.npy`` files there, and each read opens a fresh read-only memory map: the pages a reader
    touches leave the process's resident size when it lets go of the array, instead of piling up
    in maps held for the life of the store."""

    def __init__(self, arrays: Mapping[str, np.ndarray | Path], providers: list[str], directory: Path | None,
                 cleanup: tempfile.TemporaryDirectory[str] | None = None) -> None:
        self._arrays = dict(arrays)
        self.providers = providers
        self.directory = directory
        self._cleanup = cleanup

    def __getitem__(self, key: str) -> np.ndarray:
        a = self._arrays[key]
        return np.load(a, mmap_mode="r") if isinstance(a, Path) else a

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    @property
    def n_samples(self) -> int:
        return int(self[next(iter(self._arrays))].shape[0])

    def rows(self, index: np.ndarray) -> Rows:
        """The samples `index` (integer positions or a boolean mask) of every tensor, gathered lazily."""
        return Rows(self, index)


class Rows(Mapping[str, np.ndarray]):
    """Some samples of every tensor of an activation store, without copying the store.

    A tensor's rows are gathered (from RAM or from its memory-mapped file, reading only those
    rows) the first time it is read, and kept: the search reads each tensor several times.
    Tensors nobody reads are never gathered.

    >>> fit = acts.rows(np.flatnonzero(mask))   # doctest: +SKIP
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], index: np.ndarray) -> None:
        index = np.asarray(index)
        self._arrays = arrays
        self._keys = tuple(arrays)
        self.index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.intp, copy=False)
        self._gathered: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._keys:
            raise KeyError(key)
        got = self._gathered.get(key)
        if got is None:
            got = self._gathered[key] = self._arrays[key][self.index]
        return got

    def __contains__(self, key: object) -> bool:  # Mapping's default would gather the tensor
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def n_samples(self) -> int:
        return len(self.index)

    @property
    def gathered(self) -> tuple[str, ...]:
        """The tensors read so far."""
        return tuple(self._gathered)


def _session(model: bytes, providers: list[str], threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # its failures come back as exceptions, told in one line
    if threads:
        opts.intra_op_num_threads = threads
    try:
        sess = ort.InferenceSession(model, sess_options=opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own Fail/NotImplemented types
        raise UnsupportedModelError(f"onnxruntime cannot run this model: {one_line(e)}") from e
    if any(p in providers for p in GPU_PROVIDERS) and not any(p in sess.get_providers() for p in GPU_PROVIDERS):
        print("mofn2logic: CUDA was requested but onnxruntime runs on CPU "
              f"(session providers: {sess.get_providers()})", file=sys.stderr)
    return sess


def fetch_list(network: Network, preactivations: bool = True) -> list[str]:
    """The tensors a harvest keeps: every layer boundary (without the pre-activations that differ
    from the output, unless asked: the search reads only inputs and outputs) and the network's output."""
    pre = {la.preact for la in network.layers if la.preact != la.output} - {la.input for la in network.layers}
    fetch = [t for t in network.boundary_tensors() if preactivations or t not in pre]
    if network.output not in fetch:
        fetch.append(network.output)
    return fetch


def needed_nodes(graph: onnx.GraphProto, outputs: list[str]) -> list[bool]:
    """Which nodes of `graph` compute `outputs` (directly, or through subgraphs' outer names)."""
    producer = {o: k for k, node in enumerate(graph.node) for o in node.output if o}
    keep = [False] * len(graph.node)
    stack = [producer[o] for o in outputs if o in producer]
    while stack:
        k = stack.pop()
        if keep[k]:
            continue
        keep[k] = True
        node = graph.node[k]
        stack.extend(producer[i] for i in (*node.input, *subgraph_inputs(node)) if i in producer)
    return keep


def augmented_bytes(network: Network, model: onnx.ModelProto, preactivations: bool = True) -> bytes:
    """The serialized model with every tensor of `fetch_list` added as a graph output, and only
    the nodes those outputs need: onnxruntime runs every node it is given, so an unused node (a
    Loop of 10^12 iterations, a ConstantOfShape of 4 GiB) would otherwise run at each batch.

    The outputs are added to `model` and removed again once it is serialized, rather than added
    to a copy: a copy would duplicate every weight of a large model for a moment. The nodes
    (small next to the weights) are copied aside while unused ones are left out."""
    graph = model.graph
    existing = {o.name for o in graph.output}
    elem = onnx.TensorProto.DOUBLE if network.dtype == np.float64 else onnx.TensorProto.FLOAT
    n_outputs = len(graph.output)
    saved: list[onnx.NodeProto] | None = None
    try:
        for name in fetch_list(network, preactivations):
            if name not in existing and name != network.data_input:
                graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
        keep = needed_nodes(graph, [o.name for o in graph.output])
        if not all(keep):
            saved = [onnx.NodeProto() for _ in graph.node]
            for copy, node in zip(saved, graph.node):
                copy.CopyFrom(node)
            del graph.node[:]
            graph.node.extend(n for n, k in zip(saved, keep) if k)
        return model.SerializeToString()
    finally:
        del graph.output[n_outputs:]
        if saved is not None:
            del graph.node[:]
            graph.node.extend(saved)


def harvest(
    network: Network,
    model: onnx.ModelProto | str | os.PathLike[str],
    x: np.ndarray,
    *,
    batch_size: int = DEFAULT_BATCH,
    providers: list[str] | None = None,
    memory_budget: int = DEFAULT_BUDGET,
    store_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    preactivations: bool = True,
    keep: Collection[str] | None = None,
    on_batch: Callable[[Mapping[str, np.ndarray], int], None] | None = None,
    threads: int | None = None,
) -> Activations:
    """Run `model` (the proto `network` was imported from, or its file) on `x` (already checked
    by `mofn2logic.inputs.check_data`) and keep every boundary tensor.

    Every tensor onnxruntime returns must hold one row per sample of the batch, keep its
    per-sample shape from batch to batch (and the one the network IR states, where it states
    one), and be finite; the output must be (batch, classes >= 2). `preactivations=False` leaves out
    the pre-activations that differ from a layer's output: the search reads none, and fetching them
    doubles what a harvest of a ReLU network holds and stops onnxruntime fusing each layer with its
    activation.

    `keep` (default: all) names the tensors the store holds; `on_batch(tensors, start)` sees every
    fetched tensor of each batch (its real rows, from sample `start` on) before it goes, so that a
    reader of a few rows of a large tensor (the conv layers' drawn examples) need not store it.
    `threads`: onnxruntime's intra-op threads (default: its own choice, one per core)."""
    with quiet():
        return _harvest(network, model, x, batch_size=batch_size, providers=providers,
                        memory_budget=memory_budget, store_dir=store_dir, progress=progress,
                        preactivations=preactivations, keep=keep, on_batch=on_batch, threads=threads)


def _harvest(network: Network, model: onnx.ModelProto | str | os.PathLike[str], x: np.ndarray, *,
             batch_size: int, providers: list[str] | None, memory_budget: int,
             store_dir: str | os.PathLike[str] | None, progress: bool | None, preactivations: bool,
             keep: Collection[str] | None, on_batch: Callable[[Mapping[str, np.ndarray], int], None] | None,
             threads: int | None = None) -> Activations:
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise DataError(f"batch size must be a positive integer, got {batch_size}")
    if isinstance(model, onnx.ModelProto):
        check_no_external_data(model)
    proto = model if isinstance(model, onnx.ModelProto) else load_onnx(model)
    fetch = fetch_list(network, preactivations)
    unknown = set(keep or ()) - set(fetch)
    if unknown:
        raise DataError(f"cannot keep {sorted(unknown)}: expected tensors among the harvested {fetch}")
    stored = [f for f in fetch if keep is None or f in keep]
    chosen = select_providers(providers)
    sess = _session(augmented_bytes(network, proto, preactivations), chosen, threads)
    inp = sess.get_inputs()[0]
    fixed = inp.shape[0] if inp.shape and isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
    bs = fixed or batch_size
    run_fetch = [f for f in fetch if f != network.data_input]
    n = x.shape[0]
    arrays: dict[str, np.ndarray] = {}  # in RAM, or (past the budget) an empty array telling shape and dtype
    files: dict[str, Any] = {}  # past the budget: tensor -> its .npy file, open for writing at the first row's offset
    cleanup = None
    directory: Path | None = None
    created: list[Path] = []  # files (and a folder) made in `store_dir`, removed again on failure
    seen: dict[str, tuple[int, ...]] = {}  # per-sample shape of each tensor in the first batch
    n_batches = -(-n // bs)
    bar = tqdm(total=n, desc="harvest", unit="sample", leave=False, file=sys.stderr,
               disable=(not progress) if progress is not None else (n_batches < 4 or None))
    try:
        for start in range(0, n, bs):
            batch = x[start:start + bs]
            real = batch.shape[0]
            if fixed and real < fixed:  # a model with a fixed batch size: pad the last batch
                batch = np.concatenate([batch, np.zeros((fixed - real, *batch.shape[1:]), batch.dtype)])
            try:
                outs = sess.run(run_fetch, {inp.name: batch})
            except Exception as e:
                raise DataError(f"onnxruntime failed on samples {start}..{start + real - 1}: {one_line(e)}") from e
            _check_outputs(network, run_fetch, outs, len(batch), start, real, seen)
            if on_batch is not None:
                on_batch({network.data_input: batch[:real], **{k: o[:real] for k, o in zip(run_fetch, outs)}}, start)
            if start == 0:
                per_sample = sum(int(np.prod(o.shape[1:])) * o.dtype.itemsize for k, o in zip(run_fetch, outs)
                                 if k in stored)
                per_sample += int(np.prod(x.shape[1:])) * x.dtype.itemsize if network.data_input in stored else 0
                if per_sample * n > memory_budget:
                    if store_dir is None:
                        cleanup = tempfile.TemporaryDirectory(prefix="mofn2logic-acts-")
                        directory = Path(cleanup.name)
                    else:
                        directory = Path(store_dir)
                        if not directory.exists():
                            created.append(directory)
                        directory.mkdir(parents=True, exist_ok=True)
                alloc = dict(zip(run_fetch, outs))
                alloc[network.data_input] = x
                for name in stored:
                    first = alloc[name]
                    shape, dtype = (n, *first.shape[1:]), first.dtype
                    if name == network.data_input and directory is None:
                        arrays[name] = x
                    elif directory is not None:
                        created.append(directory / f"{len(arrays):04d}.npy")
                        arrays[name] = np.empty((0, *shape[1:]), dtype)
                        files[name] = _open_npy(created[-1], shape, dtype)
                    else:
                        arrays[name] = np.empty(shape, dtype)
                if directory is not None:
                    created.append(directory / "index.json")
                    created[-1].write_text(json.dumps(list(arrays)), encoding="utf-8")
                    if network.data_input in files:
                        _write_rows(files[network.data_input], x)
            for name, out in zip(run_fetch, outs):
                if name in files:
                    _write_rows(files[name], out[:real])
                elif name in arrays:
                    arrays[name][start:start + real] = out[:real]
            del outs  # onnxruntime's arrays for this batch go before the next batch's come
            bar.update(real)
    except Mofn2LogicError:
        for f in files.values():
            f.close()  # before the files go
        arrays.clear()
        if cleanup is not None:
            cleanup.cleanup()
        elif created:
            for path in reversed(created):
                with contextlib.suppress(OSError):
                    path.rmdir() if path.is_dir() else path.unlink()
        raise
    finally:
        for f in files.values():
            f.close()
        bar.close()
    if directory is not None:
        return Activations({name: directory / f"{k:04d}.npy" for k, name in enumerate(arrays)}, sess.get_providers(),
                           directory, cleanup)
    return Activations(arrays, sess.get_providers(), directory, cleanup)


def _open_npy(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """`path` as an .npy file of `shape` and `dtype` (its data not yet written), open for writing
    the rows in order after the header."""
    f = open(path, "wb")  # closed by the harvest once every batch is written
    try:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                 "fortran_order": False, "shape": shape})
    except BaseException:
        f.close()
        raise
    return f


def _write_rows(f: Any, rows: np.ndarray) -> None:
    f.write(np.ascontiguousarray(rows).data)


def _check_outputs(network: Network, names: list[str], outs: list[np.ndarray], rows: int, start: int, real: int,
                   seen: dict[str, tuple[int, ...]]) -> None:
    """What onnxruntime returned for one batch is one row per sample, shaped as before (`seen`: the
    per-sample shapes of the first batch, recorded here) and as the IR says, and finite (see `harvest`)."""
    expected = _stated_shapes(network)
    samples = f"samples {start}..{start + real - 1}"
    for name, out in zip(names, outs):
        out = np.asarray(out)
        if out.ndim == 0 or out.shape[0] != rows:
            raise UnsupportedModelError(
                f"tensor {shown(name)} has shape {tuple(out.shape)} on a batch of {rows} samples; every layer's "
                "tensors must keep the batch as their first dimension, one row per sample")
        if name == network.output and (out.ndim != 2 or out.shape[1] < 2):
            raise UnsupportedModelError(
                f"output {shown(name)} has shape {tuple(out.shape)} on a batch of {rows} samples; the classifier's "
                "output must be (batch, classes) with classes >= 2, its batch dimension following the input's")
        if out.dtype != network.dtype:
            raise UnsupportedModelError(f"tensor {shown(name)} has dtype {out.dtype}; the network computes in "
                                        f"{network.dtype}")
        want = seen.get(name, expected.get(name))
        if want is not None and tuple(out.shape[1:]) != want:
            raise UnsupportedModelError(
                f"tensor {shown(name)} has per-sample shape {tuple(out.shape[1:])} on {samples}; expected {want}")
        bad = ~np.isfinite(out[:real])
        if bad.any():
            row = int(np.argwhere(bad)[0][0]) + start
            raise DataError(f"onnxruntime computed {int(bad.sum())} non-finite values (NaN or Inf) in tensor "
                            f"{shown(name)} on {samples} (first in sample {row}); expected finite activations")
        seen.setdefault(name, tuple(out.shape[1:]))


def _stated_shapes(network: Network) -> dict[str, tuple[int, ...]]:
    """Per-sample shapes the IR states in full, by tensor."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in network.layers:
        for name, shape in ((layer.input, layer.input_shape), (layer.preact, layer.output_shape),
                            (layer.output, layer.output_shape)):
            dims = [d for d in shape if d is not None]
            if shape and len(dims) == len(shape):
                shapes.setdefault(name, tuple(int(d) for d in dims))
    return shapes


def save_npz(acts: Mapping[str, np.ndarray], network: Network, path: str | os.PathLike[str]) -> None:
    """Write activations as .npz (one array per tensor) with the layer table under '__layers__'."""
    from mofn2logic.files import atomic_path

    meta = json.dumps({"layers": layer_table(network), "input": network.input, "output": network.output,
                       **({"data_input": network.data_input} if network.head else {})})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            arrays: dict[str, Any] = {"__layers__": np.array(meta), **{k: np.asarray(v) for k, v in acts.items()}}
            np.savez(f, **arrays)
