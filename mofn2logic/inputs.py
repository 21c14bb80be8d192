"""What the user brings, read and checked once: the model (`load_model` -> `LoadedModel`) and
the data with its optional labels (`load_dataset` -> `Dataset`), from .npy, .npz or .csv files
or from arrays.

>>> model = load_model("model.onnx")                                          # doctest: +SKIP
>>> data = load_dataset("x.npz", model, key="images", labels="y.npy")         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from mofn2logic.errors import DataError, InputFileError
from mofn2logic.ir.network import Network, Shape

FORMATS = (".npy", ".npz", ".csv")
ARRAY_SOURCE = "<array>"


def read_array(path: str | os.PathLike[str], key: str | None = None) -> np.ndarray:
    """Read one array from .npy, .npz (``key`` picks the array; optional if there is one) or .csv."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"data file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.files)
                if key is None:
                    if len(keys) != 1:
                        raise DataError(f"{str(p)!r} holds arrays {keys}: expected one array, or a key naming one")
                    key = keys[0]
                if key not in keys:
                    raise DataError(f"{str(p)!r} has no array {key!r}; it holds {keys}")
                return z[key]
        if suffix == ".csv":
            return _read_csv(p)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"cannot read {str(p)!r} as {suffix} data: {' '.join(str(e).split())[:200]}") from e
    raise DataError(f"data file {str(p)!r} has suffix {suffix!r}; expected one of {', '.join(FORMATS)}")


def _read_csv(p: Path) -> np.ndarray:
    with open(p, encoding="utf-8") as f:
        first = f.readline()
    cells = [c.strip() for c in first.split(",")]
    skip = 0
    if cells and any(c and not _is_number(c) for c in cells):
        skip = 1  # a header row
    arr = np.loadtxt(p, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
    return arr


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_data(x: np.ndarray, input_shape: Shape, dtype: np.dtype, name: str = "data") -> np.ndarray:
    """Return `x` as a C-contiguous array of `dtype` with shape (E, *input_shape).

    Rows given flat (E, prod(input_shape)) are reshaped, as CSV data always is.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{name} has dtype {x.dtype}; expected numbers (the model takes {dtype})")
    if x.ndim == 0 or x.shape[0] == 0:
        raise DataError(f"{name} is empty (shape {x.shape}); expected at least one sample")
    want = tuple(input_shape)
    got = tuple(x.shape[1:])
    if want and None not in want:
        flat = int(np.prod(want))
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
    x = np.ascontiguousarray(x, dtype=dtype)
    bad = ~np.isfinite(x)
    if bad.any():
        idx = np.argwhere(bad)[0]
        what = "NaN" if np.isnan(x[tuple(idx)]) else "Inf"
        raise DataError(
            f"{name} contains {int(bad.sum())} non-finite values (first: {what} in sample {int(idx[0])}); "
            "expected finite numbers"
        )
    return x


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

    @property
    def name(self) -> str:
        return self.path.name


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Load and check the ONNX file once, and import its network from that same proto."""
    from mofn2logic.onnx.importer import import_network, load_onnx

    proto = load_onnx(path)
    network = import_network(proto, source=str(path))
    return LoadedModel(Path(path), proto, network, file_sha256(path))


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- the data

@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    """Samples checked against a model's input, with optional labels checked against the samples.

    x: (E, *input_shape) in the model's dtype; labels: (E,) int64 class indices or None;
    source: the data file's name (or "<array>"); sha256: of the file (or of the array's bytes);
    key: the array's name inside an .npz file, when one was given.
    """

    x: np.ndarray
    labels: np.ndarray | None
    source: str
    sha256: str
    key: str | None = None

    def __len__(self) -> int:
        return len(self.x)


PathOrArray = str | os.PathLike[str] | np.ndarray


def load_dataset(data: PathOrArray, model: LoadedModel | Network, *, key: str | None = None,
                 labels: PathOrArray | None = None, labels_key: str | None = None) -> Dataset:
    """Read `data` (a file or an array) and check it against the model's input; read `labels`
    and check them against the data (see `check_labels`)."""
    net = model.network if isinstance(model, LoadedModel) else model
    if isinstance(data, (str, os.PathLike)):
        x = check_data(read_array(data, key), net.input_shape, net.dtype, name=f"data {str(data)!r}")
        source, sha = Path(data).name, file_sha256(data)
    else:
        x = check_data(np.asarray(data), net.input_shape, net.dtype)
        source, sha = ARRAY_SOURCE, hashlib.sha256(x.data.cast("B")).hexdigest()
    y = None
    if labels is not None:
        if isinstance(labels, (str, os.PathLike)):
            y = check_labels(read_array(labels, labels_key), len(x), name=f"labels {str(labels)!r}")
        else:
            y = check_labels(np.asarray(labels), len(x))
    return Dataset(x, y, source, sha, key if isinstance(data, (str, os.PathLike)) else None)


def check_labels(labels: np.ndarray, n_samples: int, name: str = "labels") -> np.ndarray:
    """Return `labels` as (E,) int64 class indices: one per sample, integers (integral floats
    pass), no NaN, none negative."""
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
    return y.astype(np.int64)


def provenance(model: LoadedModel, data: Dataset) -> dict[str, str]:
    """Where a rule set came from: the model's and the data's names and SHA-256."""
    prov = {"model": model.name, "model_sha256": model.sha256, "data": data.source, "data_sha256": data.sha256}
    if data.key:
        prov["data_key"] = data.key
    return prov
