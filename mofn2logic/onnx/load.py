"""Load an ONNX file behind guards: one-line errors for whatever is not a readable model.

The guards (each an error that says what was expected and what arrived):

- the path is a regular file, not empty, and decodes as a ModelProto with a graph and an opset;
- IR version and default-domain opset are ones the installed onnx reads and onnxruntime runs:
  a model whose opset is newer than onnxruntime's is converted down (onnx.version_converter)
  when every op it uses has an older form, and a model stamped with an IR version only newer
  than onnxruntime's is stamped down when it uses nothing that version lacks (a UserWarning
  says so); otherwise one line names the model's and the installation's versions;
- external data: every tensor that refers to a file -- initializers, sparse initializers and
  node attributes (TENSOR, TENSORS, SPARSE_TENSOR, SPARSE_TENSORS), in the main graph, in every
  subgraph (GRAPH, GRAPHS attributes, recursively) and in model-local functions -- must name a
  regular file whose real path (symlinks resolved) lies inside the model's folder, with an
  offset and length inside that file. The data is read here, not by onnx, so the guard does
  not depend on the installed onnx's own checks (onnx < 1.21 follows symlinks in folder
  components and never loads sparse tensors, which onnxruntime would then read itself). Hard
  links are not refused: making one takes read access to the target already, and package
  managers that install by hard-linking (uv) would otherwise make legitimate models unreadable.

Warnings raised by onnx or numpy on the way are silenced (`quiet`): the caller reports one line.

>>> model = load_onnx("model.onnx")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from mofn2logic.errors import InputFileError, ModelFormatError, UnsupportedModelError

# onnxruntime >= 1.17 (the pin) runs IR version 9 and opset 20, so smaller ones need no probe.
KNOWN_RUNNABLE = (9, 20)
# onnxruntime runs opset 7 and later; older opsets give ops other meanings (Dropout is_test,
# BatchNormalization spatial, Gemm broadcast) the importer does not read.
MIN_OPSET = 7
# Element types 1..16 (FLOAT .. BFLOAT16) exist since IR version 4; later ones came with later IRs.
CLASSIC_TYPES = frozenset(range(1, 17))
MIN_STAMP = 7  # never stamp a model below this IR version
MAX_STORED = 1 << 40  # values one stored tensor may declare (more than any file holds)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No warning of onnx, onnxruntime or numpy reaches the user: the checks that matter raise."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def one_line(e: BaseException, limit: int = 300) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:limit] + ("..." if len(text) > limit else "")


def load_onnx(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Load and check a model file (see the module docstring for the guards)."""
    notes: list[str] = []
    with quiet():
        model = _load(Path(path), notes)
    for note in notes:  # after quiet(), which silences every warning
        warnings.warn(note, UserWarning, stacklevel=2)
    return model


def _load(p: Path, notes: list[str]) -> onnx.ModelProto:
    shown = str(p)
    try:
        st = p.stat()
    except OSError as e:
        raise InputFileError(f"model file {shown!r} does not exist ({e.strerror or one_line(e)})") from e
    if stat.S_ISDIR(st.st_mode):
        raise InputFileError(f"model path {shown!r} is a folder; expected an ONNX model file")
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(f"model path {shown!r} is not a regular file; expected an ONNX model file")
    if st.st_size == 0:
        raise ModelFormatError(f"{shown!r} is empty (0 bytes); expected an ONNX model")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, TypeError, OSError, UnicodeError) as e:
        raise ModelFormatError(f"{shown!r} is not an ONNX model (protobuf decode failed: {one_line(e)})") from e
    if not model.HasField("graph") or not model.opset_import or model.ir_version <= 0:
        # Random bytes or text can decode as a protobuf message without an error.
        raise ModelFormatError(
            f"{shown!r} is not an ONNX model (no graph, IR version or opset after decoding {st.st_size} bytes)"
        )
    if not model.graph.node:
        raise UnsupportedModelError(f"the graph of {shown!r} has no nodes; expected a classifier with at least one layer")
    target = check_versions(model, shown)
    _check_tensor_shapes(model)
    _load_external_data(model, p)
    if target is not None:
        _convert_opset(model, target, shown, notes)
    ir = model.ir_version
    _stamp_ir(model, shown)
    if model.ir_version != ir:
        notes.append(f"{shown!r} has IR version {ir}, newer than onnxruntime runs; read as IR version "
                     f"{model.ir_version} (the model uses nothing newer): {_versions_text()}")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # the checker's C++ errors come under several types
        raise ModelFormatError(f"{shown!r} is not a valid ONNX model: {one_line(e)}") from e
    return model


# --------------------------------------------------------------------------- versions

def default_opset(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


@functools.cache
def runtime_limits() -> tuple[int, int]:
    """The newest IR version and default-domain opset the installed onnxruntime loads, found by
    loading a one-node model (a few milliseconds; onnxruntime publishes neither number)."""
    import onnxruntime as ort

    def loads(ir: int, opset: int) -> bool:
        graph = onnx.helper.make_graph(
            [onnx.helper.make_node("Identity", ["x"], ["y"])], "probe",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
        m = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        m.ir_version = ir
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        try:
            ort.InferenceSession(m.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception:
            return False
        return True

    def highest(ok, lo: int, hi: int) -> int:  # ok(lo) holds; the largest v <= hi with ok(v)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
        return lo

    with quiet():
        ir = highest(lambda v: loads(v, 13), 7, 256)
        opset = highest(lambda v: loads(min(ir, 8), v), 13, 1024)
    return ir, opset


def _versions_text() -> str:
    import onnxruntime as ort

    ir, opset = runtime_limits()
    return (f"onnxruntime {ort.__version__} runs up to IR version {ir} and opset {opset}; "
            f"onnx {onnx.__version__} reads up to IR version {onnx.IR_VERSION} and opset "
            f"{onnx.defs.onnx_opset_version()}")


def check_versions(model: onnx.ModelProto, shown: str) -> int | None:
    """Refuse an IR version or default-domain opset the installed onnx or onnxruntime cannot
    handle, naming both. Returns the opset to convert the model down to (one onnx reads but
    onnxruntime does not run), or None; `_stamp_ir` then lowers an IR version only onnxruntime lacks."""
    ir, opset = int(model.ir_version), default_opset(model)
    if opset == 0:
        raise ModelFormatError(f"{shown!r} imports no opset of the default ONNX domain; expected e.g. opset 13 to 17")
    if opset < MIN_OPSET:
        raise UnsupportedModelError(
            f"{shown!r} uses opset {opset} of the default ONNX domain; supported: opset {MIN_OPSET} and later")
    if ir <= KNOWN_RUNNABLE[0] and opset <= KNOWN_RUNNABLE[1]:
        return None
    rt_ir, rt_opset = runtime_limits()
    onnx_opset = onnx.defs.onnx_opset_version()
    if opset > onnx_opset:
        raise UnsupportedModelError(f"{shown!r} uses opset {opset} of the default ONNX domain, newer than this "
                                    f"installation supports: {_versions_text()}")
    if ir > onnx.IR_VERSION:
        raise UnsupportedModelError(f"{shown!r} has IR version {ir}, newer than this installation supports: "
                                    f"{_versions_text()}")
    return rt_opset if opset > rt_opset else None


def _convert_opset(model: onnx.ModelProto, target: int, shown: str, notes: list[str]) -> None:
    """Convert the default domain's opset down to `target` in place, or refuse in one line."""
    from onnx import version_converter

    opset = default_opset(model)
    try:
        converted = version_converter.convert_version(model, target)
        onnx.checker.check_model(converted)
    except Exception as e:  # the converter's C++ assertions come as RuntimeError and others
        raise UnsupportedModelError(
            f"{shown!r} uses opset {opset} of the default ONNX domain, newer than this installation supports "
            f"({_versions_text()}), and cannot be converted to opset {target}: {one_line(e, 160)}") from e
    model.CopyFrom(converted)
    notes.append(f"{shown!r} uses opset {opset}, newer than onnxruntime runs; converted to opset {target} "
                 f"(onnx.version_converter): {_versions_text()}")


def _stamp_ir(model: onnx.ModelProto, shown: str) -> None:
    """Lower an IR version only onnxruntime lacks when the model uses nothing newer, else refuse."""
    ir, opset = int(model.ir_version), default_opset(model)
    if ir <= KNOWN_RUNNABLE[0] and opset <= KNOWN_RUNNABLE[1]:
        return
    rt_ir, _ = runtime_limits()
    if ir > rt_ir:
        newer = _newer_features(model)
        if newer or rt_ir < MIN_STAMP:
            raise UnsupportedModelError(
                f"{shown!r} has IR version {ir}, newer than this installation supports: {_versions_text()}; "
                f"the model uses {newer or 'features'} that IR version {rt_ir} lacks")
        # Nothing in the model needs the newer IR: onnxruntime reads it as the older one.
        model.ir_version = rt_ir


def _newer_features(model: onnx.ModelProto) -> str:
    """What the model uses beyond IR version 7 that a down-stamp would misstate ('' if nothing)."""
    if len(model.functions):
        return "model-local functions"
    types: set[int] = set()
    for tensor, _ in iter_tensors(model):
        types.add(tensor.data_type)
    for graph in iter_graphs(model.graph):
        for vi in (*graph.input, *graph.output, *graph.value_info):
            types.update(_elem_types(vi.type))
        for node in graph.node:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.INT and a.name in ("to", "dtype", "output_dtype"):
                    types.add(int(a.i))
                if a.type == onnx.AttributeProto.TYPE_PROTO:
                    types.update(_elem_types(a.tp))
    newer = sorted(t for t in types - CLASSIC_TYPES if t != 0)
    if newer:
        names = [onnx.TensorProto.DataType.Name(t) if t in onnx.TensorProto.DataType.values() else str(t)
                 for t in newer]
        return "element types " + ", ".join(names)
    return ""


def _elem_types(tp: onnx.TypeProto) -> set[int]:
    kind = tp.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        return {getattr(tp, kind).elem_type}
    if kind == "sequence_type":
        return _elem_types(tp.sequence_type.elem_type)
    if kind == "optional_type":
        return _elem_types(tp.optional_type.elem_type)
    if kind == "map_type":
        return {tp.map_type.key_type} | _elem_types(tp.map_type.value_type)
    return set()


# --------------------------------------------------------------------------- every tensor

def iter_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """`graph` and every subgraph under it (attributes GRAPH and GRAPHS, recursively)."""
    stack = [graph]
    while stack:
        g = stack.pop()
        yield g
        for node in g.node:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    stack.append(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    stack.extend(a.graphs)


def _node_lists(model: onnx.ModelProto) -> Iterator[tuple[str, object]]:
    for g in iter_graphs(model.graph):
        yield f"graph {g.name!r}", g
    for f in model.functions:
        yield f"function {f.name!r}", f
        for node in f.node:
            for a in node.attribute:
                graphs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
                for sub in graphs:
                    for g in iter_graphs(sub):
                        yield f"graph {g.name!r}", g


def iter_tensors(model: onnx.ModelProto) -> Iterator[tuple[onnx.TensorProto, str]]:
    """Every TensorProto in the model with where it sits: initializers, sparse initializers'
    values and indices, node attributes (TENSOR, TENSORS, SPARSE_TENSOR(S)), in the main graph,
    every subgraph and every model-local function."""
    for where, owner in _node_lists(model):
        if isinstance(owner, onnx.GraphProto):
            for t in owner.initializer:
                yield t, f"initializer of {where}"
            for s in owner.sparse_initializer:
                yield s.values, f"sparse initializer of {where}"
                yield s.indices, f"sparse initializer of {where}"
        for node in owner.node:  # type: ignore[attr-defined]
            at = f"attribute of node {node.name or node.op_type!r} in {where}"
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield a.t, at
                elif a.type == onnx.AttributeProto.TENSORS:
                    for t in a.tensors:
                        yield t, at
                elif a.type == onnx.AttributeProto.SPARSE_TENSOR:
                    yield a.sparse_tensor.values, at
                    yield a.sparse_tensor.indices, at
                elif a.type == onnx.AttributeProto.SPARSE_TENSORS:
                    for s in a.sparse_tensors:
                        yield s.values, at
                        yield s.indices, at


def _check_tensor_shapes(model: onnx.ModelProto) -> None:
    """Every stored tensor declares a shape some file could hold (no negative dimension, fewer
    than 2^40 values), so no product of its dimensions overflows further on."""
    for tensor, where in iter_tensors(model):
        dims = tuple(int(d) for d in tensor.dims)
        size = 1
        for d in dims:
            size *= d
        if any(d < 0 for d in dims) or size >= MAX_STORED:
            raise ModelFormatError(f"tensor {tensor.name!r} ({where}) declares shape {dims} ({size} values); "
                                   f"expected non-negative dimensions and fewer than {MAX_STORED} values")


def check_no_external_data(model: onnx.ModelProto) -> None:
    """Refuse a model that still refers to external data (loaded without `load_onnx`): whatever
    read it next (onnx, onnxruntime) would resolve the file against the working folder."""
    for tensor, where in iter_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise ModelFormatError(f"tensor {tensor.name!r} ({where}) still refers to external data; "
                                   "load the model with mofn2logic.load_onnx, which reads it after its checks")


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Read every external tensor's bytes into the model, after the guard (module docstring)."""
    folder = path.parent
    real_folder = os.path.realpath(folder)
    for tensor, where in iter_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            del tensor.external_data[:]  # ignored by onnx and onnxruntime alike; not passed on
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        label = f"tensor {tensor.name!r} ({where})"
        if not location:
            raise ModelFormatError(f"{label} is stored externally but names no file (empty 'location')")
        target = os.path.realpath(os.path.join(folder, location))
        if (os.path.isabs(location) or "\0" in location
                or os.path.commonpath([real_folder, target]) != real_folder):
            raise ModelFormatError(
                f"{label} refers to external data {location!r} outside the model's folder "
                f"{real_folder!r} (it resolves to {target!r}); only files inside the model's folder are read"
            )
        try:
            st = os.stat(target)
        except OSError as e:
            raise InputFileError(f"{label} refers to external data file {target!r}, which does not exist") from e
        if not stat.S_ISREG(st.st_mode):
            raise ModelFormatError(f"{label} refers to external data {target!r}, which is not a regular file")
        try:
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else st.st_size - offset
        except ValueError as e:
            raise ModelFormatError(f"{label} has external data offset {info.get('offset')!r} and length "
                                   f"{info.get('length')!r}; expected whole numbers") from e
        if offset < 0 or length < 0 or offset + length > st.st_size:
            raise ModelFormatError(
                f"{label} reads bytes {offset}..{offset + length} of {target!r}, which holds {st.st_size} bytes")
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(target, flags)
            with os.fdopen(fd, "rb") as f:
                opened = os.fstat(f.fileno())
                if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):  # swapped since the check
                    raise ModelFormatError(f"{label}: external data file {target!r} changed while it was read")
                f.seek(offset)
                data = f.read(length)
        except OSError as e:
            raise InputFileError(f"{label}: cannot read external data file {target!r}: {one_line(e)}") from e
        if len(data) != length:
            raise ModelFormatError(f"{label}: read {len(data)} of {length} bytes from {target!r}")
        tensor.raw_data = data
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
