"""What the user brings, read and checked once: the model (`load_model` -> `LoadedModel`) and
the data with its optional labels (`load_dataset` -> `Dataset`), from .npy, .npz or .csv files
or from arrays.

Data is read within a memory bound: a .npy file is memory-mapped (used in place when its dtype
is the model's), and the declared shape of a .npy file or .npz member is checked against the
file and against the memory budget before anything is allocated.

>>> model = load_model("model.onnx")                                          # doctest: +SKIP
>>> data = load_dataset("x.npz", model, key="images", labels="y.npy")         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from mofn2logic.errors import DataError, InputFileError, Mofn2LogicError
from mofn2logic.files import check_input_file, shown, size_text
from mofn2logic.ir.names import Names, default_names, make_names, read_name_list, read_unit_names
from mofn2logic.ir.network import Network, Shape
from mofn2logic.onnx.harvest import DEFAULT_BUDGET, parse_size

FORMATS = (".npy", ".npz", ".csv")
ARRAY_SOURCE = "<array>"
# A serialized protobuf message (the model without external data) cannot exceed 2 GiB.
MAX_MODEL_BYTES = 2 * 1024**3
# Checks and casts walk the data in pieces of about this size (no second copy of the data).
CHUNK_BYTES = 64 * 1024**2
# A CSV value takes at least 2 characters ("0,") and becomes an 8-byte float64.
CSV_BYTES_PER_CHAR = 4


def memory_budget(budget: int | str | None = None) -> int:
    """Bytes from a budget given as a number, a size text ("512M", "2G") or None (the default)."""
    if budget is None:
        return DEFAULT_BUDGET
    value = parse_size(budget) if isinstance(budget, str) else budget
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"memory budget {budget!r} is not a positive size; expected e.g. 512M, 2G or a number of bytes")
    return int(value)


def _over(nbytes: int, limit: int, where: str = " in memory") -> str:
    """'7.5 KiB in memory; more than the memory budget of 4 KiB' (in bytes where the two round alike)."""
    a, b = size_text(nbytes), size_text(limit)
    if a == b:
        a, b = f"{nbytes} bytes", f"{limit} bytes"
    return f"{a}{where}; more than the memory budget of {b}"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


def read_array(path: str | os.PathLike[str], key: str | None = None, *, max_bytes: int | str | None = None,
               what: str = "data") -> np.ndarray:
    """Read one array from .npy (memory-mapped, read-only), .npz (``key`` picks the array;
    optional if there is one) or .csv.

    What is read into memory (an .npz member, a CSV file) may take at most `max_bytes` (default
    the memory budget, 2 GiB); sizes are checked from the headers before anything is allocated.
    Object arrays are refused: loading them would unpickle, which can run code."""
    p = Path(path)
    st = check_input_file(p, what)
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{what} file {shown(p)} has suffix {suffix!r}; expected one of {', '.join(FORMATS)}")
    if key is not None and suffix != ".npz":
        raise DataError(f"{what} file {shown(p)} is a {suffix} file, which holds one array; a key ({key!r}) names "
                        "an array inside an .npz file")
    limit = memory_budget(max_bytes)
    try:
        if suffix == ".npy":
            return _read_npy(p, st.st_size)
        if suffix == ".npz":
            return _read_npz(p, key, limit)
        return _read_csv(p, st.st_size, limit)
    except Mofn2LogicError:
        raise
    except MemoryError as e:
        raise DataError(f"{what} file {shown(p)} does not fit in the memory available") from e
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as e:
        raise DataError(f"cannot read {shown(p)} as {suffix} data: {_one_line(e)}") from e


def _npy_header(f, source: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise DataError(f"{source} is .npy format version {version[0]}.{version[1]}; expected 1.0 or 2.0")


def _check_declared(source: str, shape: tuple[int, ...], dtype: np.dtype, *, held: int,
                    limit: int | None) -> int:
    """Bytes of an array declared by a .npy header, once it is known to be numbers, complete in
    the file (`held` bytes follow the header) and within `limit`."""
    if dtype.hasobject:
        raise DataError(f"{source} holds Python objects (dtype {dtype}); expected an array of numbers "
                        "(object arrays are not loaded: unpickling can run code)")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > held:
        raise DataError(f"{source} declares shape {tuple(shape)} {dtype} ({size_text(nbytes)}) but holds "
                        f"{size_text(max(held, 0))} of data; expected a complete .npy array")
    if limit is not None and nbytes > limit:
        raise DataError(f"{source} holds shape {tuple(shape)} {dtype}, {_over(nbytes, limit)}")
    return nbytes


def _read_npy(p: Path, size: int) -> np.ndarray:
    with open(p, "rb") as f:
        shape, _, dtype = _npy_header(f, shown(p))
        offset = f.tell()
    _check_declared(shown(p), shape, dtype, held=size - offset, limit=None)
    return np.load(p, mmap_mode="r", allow_pickle=False)


def _read_npz(p: Path, key: str | None, limit: int) -> np.ndarray:
    with zipfile.ZipFile(p) as zf:
        infos = {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i
                 for i in zf.infolist() if not i.is_dir()}
        keys = list(infos)
        if key is None:
            if len(keys) != 1:
                raise DataError(f"{shown(p)} holds arrays {keys}: expected one array, or a key naming one")
            key = keys[0]
        if key not in infos:
            raise DataError(f"{shown(p)} has no array {key!r}; it holds {keys}")
        info = infos[key]
        source = f"{shown(p)} array {key!r}"
        if not info.filename.endswith(".npy"):
            raise DataError(f"{source} is not an .npy member; expected arrays saved by numpy.savez")
        if info.file_size > limit + 65536:  # the zip's own word, before inflating anything
            raise DataError(f"{source} inflates to {_over(info.file_size, limit, '')}")
        with zf.open(info) as f:
            shape, fortran, dtype = _npy_header(f, source)
            nbytes = _check_declared(source, shape, dtype, held=info.file_size - f.tell(), limit=limit)
            out = np.empty(math.prod(shape), dtype)
            raw = out.view(np.uint8) if nbytes else None
            pos = 0
            while raw is not None and pos < nbytes:
                chunk = f.read(min(CHUNK_BYTES, nbytes - pos))
                if not chunk:
                    raise DataError(f"{source} is truncated: {pos} of {nbytes} bytes of data")
                raw[pos:pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
                pos += len(chunk)
    return out.reshape(shape, order="F" if fortran else "C")


def _read_csv(p: Path, size: int, limit: int) -> np.ndarray:
    if size * CSV_BYTES_PER_CHAR > limit:
        raise DataError(f"{shown(p)} has {size_text(size)} of CSV text, up to "
                        f"{_over(size * CSV_BYTES_PER_CHAR, limit, ' as numbers')} "
                        "(an .npy file is read in place)")
    with open(p, encoding="utf-8") as f:
        first = f.readline()
    cells = [c.strip() for c in first.split(",")]
    skip = 0
    if cells and any(c and not _is_number(c) for c in cells):
        skip = 1  # a header row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "input contained no data": check_data says the data is empty
        return np.loadtxt(p, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64, encoding="utf-8")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _chunks(x: np.ndarray):
    """Row ranges of `x` of about CHUNK_BYTES each."""
    row = max(1, x.itemsize * math.prod(x.shape[1:]))
    step = max(1, CHUNK_BYTES // row)
    for start in range(0, x.shape[0], step):
        yield slice(start, start + step)


def check_data(x: np.ndarray, input_shape: Shape, dtype: np.dtype, name: str = "data", *,
               max_bytes: int | str | None = None) -> np.ndarray:
    """Return `x` as a C-contiguous array of `dtype` with shape (E, *input_shape).

    Rows given flat (E, prod(input_shape)) are reshaped, as CSV data always is. An array already
    of `dtype` is returned as it is (a memory-mapped .npy stays on disk); otherwise the cast copy
    may take at most `max_bytes` (default the memory budget) and is made piece by piece."""
    x = np.asarray(x)
    dtype = np.dtype(dtype)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{name} has dtype {x.dtype}; expected numbers (the model takes {dtype})")
    if x.ndim == 0 or x.shape[0] == 0:
        raise DataError(f"{name} is empty (shape {x.shape}); expected at least one sample")
    want = tuple(input_shape)
    got = tuple(x.shape[1:])
    if want and None not in want:
        flat = math.prod(d for d in want if d is not None)
        if got != want:
            if got == (flat,) and len(want) > 1:
                x = x.reshape((x.shape[0], *want))
            else:
                raise DataError(
                    f"{name} has samples of shape {got}; the model expects {want} "
                    f"(or {flat} values per row)"
                )
    elif want and len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
        raise DataError(f"{name} has samples of shape {got}; the model expects {_fmt(want)}")
    if x.dtype.kind == "f":
        _check_finite(x, name, "expected finite numbers")
    if x.dtype == dtype and x.flags.c_contiguous:
        return x
    limit = memory_budget(max_bytes)
    nbytes = x.size * dtype.itemsize
    if nbytes > limit:
        raise DataError(f"{name} as {dtype} takes {_over(nbytes, limit)} (an .npy file of {dtype} is read in place)")
    try:
        out = np.empty(x.shape, dtype)
    except MemoryError as e:
        raise DataError(f"{name} as {dtype} ({size_text(nbytes)}) does not fit in the memory available") from e
    with np.errstate(over="ignore", invalid="ignore"):
        for rows in _chunks(x):
            out[rows] = x[rows]
    if dtype.kind == "f":
        _check_finite(out, name, f"expected numbers within the range of {dtype}", source=x)
    return out


def _check_finite(x: np.ndarray, name: str, expected: str, source: np.ndarray | None = None) -> None:
    """No NaN or Inf in `x`, counted piece by piece; `source`: the array `x` was cast from
    (values it held finite that became infinite were out of range)."""
    count, first = 0, None
    for rows in _chunks(x):
        bad = ~np.isfinite(x[rows])
        if bad.any():
            count += int(bad.sum())
            if first is None:
                first = (rows.start + int(np.argwhere(bad)[0][0]), tuple(np.argwhere(bad)[0]))
    if not count or first is None:
        return
    i, idx = first
    if source is not None:
        value = np.asarray(source[i])[idx[1:]].item()
        raise DataError(f"{name} holds {count} values beyond the range of {x.dtype} (first: {value!r} in sample "
                        f"{i}); {expected}")
    what = "NaN" if np.isnan(x[(i, *idx[1:])]) else "Inf"
    raise DataError(f"{name} contains {count} non-finite values (first: {what} in sample {i}); {expected}")


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


# --------------------------------------------------------------------------- the model

@dataclass(frozen=True, slots=True, eq=False)
class LoadedModel:
    """An ONNX model read once: the checked proto (what onnxruntime runs), the network imported
    from it, and the file's SHA-256 for provenance."""

    path: Path
    proto: onnx.ModelProto
    network: Network
    sha256: str
    names: Names | None = None  # names of inputs, units and classes: `with_names`, else the image default

    @property
    def name(self) -> str:
        return self.path.name


def load_model(path: str | os.PathLike[str], *, start: str | None = None, output: str | None = None) -> LoadedModel:
    """Load and check the ONNX file once (at most MAX_MODEL_BYTES, protobuf's limit), and import
    its network from that same proto: from layer `start` (`--from`; default: see
    `import_network`) to the output tensor `output` (`--graph-output`; default: the class vector)."""
    from mofn2logic.onnx.importer import import_network, load_onnx

    st = check_input_file(path, "model")
    if st.st_size > MAX_MODEL_BYTES:
        raise InputFileError(f"model file {shown(path)} has {size_text(st.st_size)}; expected at most "
                             f"{size_text(MAX_MODEL_BYTES)} (larger weights belong in external data files)")
    proto = load_onnx(path)
    network = import_network(proto, source=str(path), start=start, output=output)
    return LoadedModel(Path(path), proto, network, file_sha256(path), default_names(network))


def with_names(model: LoadedModel, data: Dataset | str | os.PathLike[str] | None = None, *,
               feature_names: PathOrNames | None = None, class_names: PathOrNames | None = None,
               names: str | os.PathLike[str] | None = None) -> LoadedModel:
    """`model` with the names of its inputs, classes and units, checked against its network
    (`mofn2logic.ir.names`): `feature_names` (a file of names, or a list) or else the header of
    a CSV `data` file or Dataset (ignored when the explained part starts inside the graph),
    `class_names` (a file or a list), `names` (a JSON file {layer: {unit: name}, "classes": [...]})."""
    if isinstance(data, (str, os.PathLike)):
        p = Path(data)
        header = csv_header(p) if p.suffix.lower() == ".csv" and p.is_file() else ()
        data = Dataset(np.zeros((0,)), None, p.name, "", feature_names=header)
    units: dict[str, dict[int, str]] = {}
    classes: tuple[str, ...] | None = None
    if names is not None:
        units, from_file = read_unit_names(names)
        classes = from_file or None
    if class_names is not None:
        classes = (read_name_list(class_names, "class names") if isinstance(class_names, (str, os.PathLike))
                   else tuple(class_names))
    source = "feature names"
    if feature_names is not None:
        inputs = (read_name_list(feature_names, "feature names") if isinstance(feature_names, (str, os.PathLike))
                  else tuple(feature_names))
        if isinstance(feature_names, (str, os.PathLike)):
            source = f"feature names {shown(feature_names)}"
    elif data is not None and data.feature_names and model.network.head is None:
        inputs, source = data.feature_names, f"the CSV header of {data.source!r}"
    else:
        inputs = ()
    given = make_names(model.network, inputs=inputs, classes=classes, units=units, source=source)
    return dataclasses.replace(model, names=given if given else None)


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise InputFileError(f"cannot read {shown(path)}: {e.strerror or _one_line(e)}") from e
    return h.hexdigest()


def n_classes(network: Network) -> int | None:
    """The number of classes when the network ends in a dense layer (its units), else None."""
    last = network.layers[-1] if network.layers else None
    if last is None or last.kind != "dense" or network.sequence[-1] is not last:
        return None
    return int(last.units)


# --------------------------------------------------------------------------- the data

@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    """Samples checked against a model's input, with optional labels checked against the samples.

    x: (E, *input_shape) in the model's dtype (read-only and memory-mapped when it came from an
    .npy file of that dtype); labels: (E,) int64 class indices or None; source: the data file's
    name (or "<array>"); sha256: of the file (or of the array's bytes); key: the array's name
    inside an .npz file, when one was given; paths: the files read (data, labels);
    feature_names: the names in a CSV file's header row (else empty).
    """

    x: np.ndarray
    labels: np.ndarray | None
    source: str
    sha256: str
    key: str | None = None
    paths: tuple[Path, ...] = ()
    feature_names: tuple[str, ...] = ()  # a CSV file's header row, when it has one

    def __len__(self) -> int:
        return len(self.x)


PathOrArray = str | os.PathLike[str] | np.ndarray
PathOrNames = str | os.PathLike[str] | list[str] | tuple[str, ...]


def load_dataset(data: PathOrArray, model: LoadedModel | Network, *, key: str | None = None,
                 labels: PathOrArray | None = None, labels_key: str | None = None,
                 max_bytes: int | str | None = None) -> Dataset:
    """Read `data` (a file or an array) and check it against the model's input; read `labels`
    and check them against the data and the model's classes (see `check_labels`). What is read
    into memory may take at most `max_bytes` (default the memory budget, 2 GiB)."""
    net = model.network if isinstance(model, LoadedModel) else model
    limit = memory_budget(max_bytes)
    if labels is None and labels_key is not None:
        raise DataError(f"a labels key ({labels_key!r}) was given without labels")
    paths: list[Path] = []
    if isinstance(data, (str, os.PathLike)):
        x = check_data(read_array(data, key, max_bytes=limit), net.data_shape, net.data_dtype,
                       name=f"data {shown(data)}", max_bytes=limit)
        source, sha = Path(data).name, file_sha256(data)
        paths.append(Path(data))
    else:
        if key is not None:
            raise DataError(f"a key ({key!r}) names an array inside an .npz file; the data is an array")
        x = check_data(np.asarray(data), net.data_shape, net.data_dtype, max_bytes=limit)
        source, sha = ARRAY_SOURCE, _array_sha256(x)
    y = None
    if labels is not None:
        y = read_labels(labels, len(x), key=labels_key, n_classes=n_classes(net), max_bytes=limit)
        if isinstance(labels, (str, os.PathLike)):
            paths.append(Path(labels))
    header = csv_header(data) if isinstance(data, (str, os.PathLike)) and Path(data).suffix.lower() == ".csv" else ()
    return Dataset(x, y, source, sha, key if isinstance(data, (str, os.PathLike)) else None, tuple(paths), header)


def csv_header(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The names in a CSV file's first row when it is a header (a cell that is not a number),
    else (); quoted names (`"income, net"`) are read as the csv module reads them."""
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        first = next(csv.reader([f.readline()]), [])
    cells = [c.strip() for c in first]
    return tuple(cells) if cells and any(c and not _is_number(c) for c in cells) else ()


def _array_sha256(x: np.ndarray) -> str:
    h = hashlib.sha256()
    for rows in _chunks(x):
        h.update(np.ascontiguousarray(x[rows]).data.cast("B"))
    return h.hexdigest()


def read_labels(labels: PathOrArray, n_samples: int, *, key: str | None = None, n_classes: int | None = None,
                max_bytes: int | str | None = None) -> np.ndarray:
    """Labels from a file (.npy, .npz with `key`, .csv) or an array, checked by `check_labels`."""
    if isinstance(labels, (str, os.PathLike)):
        y = read_array(labels, key, max_bytes=max_bytes, what="labels")
        return check_labels(y, n_samples, name=f"labels {shown(labels)}", n_classes=n_classes)
    if key is not None:
        raise DataError(f"a labels key ({key!r}) names an array inside an .npz file; the labels are an array")
    return check_labels(np.asarray(labels), n_samples, n_classes=n_classes)


# Class indices beyond this cannot be an int64 after a float's rounding.
_LARGEST_INDEX = 2**53


def check_labels(labels: np.ndarray, n_samples: int, name: str = "labels", *,
                 n_classes: int | None = None) -> np.ndarray:
    """Return `labels` as (E,) int64 class indices: one per sample, integers (integral floats
    pass; bool, text and one-hot rows do not), no NaN, none negative, each below `n_classes`
    when it is known."""
    y = np.asarray(labels)
    if y.ndim > 1 and any(d != 1 for d in y.shape[1:]):
        raise DataError(f"{name} have shape {y.shape}; expected one class index per sample, shape ({n_samples},)")
    y = y.reshape(-1)
    if len(y) != n_samples:
        raise DataError(f"{name} have {len(y)} entries; the data has {n_samples} samples")
    if y.dtype.kind not in "iuf":
        raise DataError(f"{name} have dtype {y.dtype}; expected integer class indices")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{name} contain {int(bad.sum())} non-finite values (first: {y[i].item()} at sample {i}); "
                            "expected integer class indices")
        frac = y != np.floor(y)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise DataError(f"{name} contain {int(frac.sum())} non-integer values "
                            f"(first: {y[i].item()!r} at sample {i}); "
                            "expected integer class indices")
    neg = y < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise DataError(f"{name} contain {int(neg.sum())} negative values (first: {y[i].item()!r} at sample {i}); "
                        "expected class indices >= 0")
    top = n_classes if n_classes is not None else _LARGEST_INDEX
    over = y >= top
    if over.any():
        i = int(np.flatnonzero(over)[0])
        expected = (f"expected class indices 0..{n_classes - 1} (the model has {n_classes} classes)"
                    if n_classes is not None else f"expected class indices below {_LARGEST_INDEX}")
        raise DataError(f"{name} contain {int(over.sum())} values >= {top} (first: {y[i].item()!r} at sample {i}); "
                        f"{expected}")
    return y.astype(np.int64)


def provenance(model: LoadedModel, data: Dataset) -> dict[str, str]:
    """Where a rule set came from: the model's and the data's names and SHA-256."""
    prov = {"model": model.name, "model_sha256": model.sha256, "data": data.source, "data_sha256": data.sha256}
    if data.key:
        prov["data_key"] = data.key
    return prov
