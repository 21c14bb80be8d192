"""Read user data (.npy, .npz, .csv) and check it against a model's input."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from mofn2logic.errors import DataError, InputFileError
from mofn2logic.ir.network import Shape

FORMATS = (".npy", ".npz", ".csv")


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
                        raise DataError(f"{str(p)!r} holds arrays {keys}: pick one with --key")
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


def load_data(path: str | os.PathLike[str], input_shape: Shape, dtype: np.dtype, key: str | None = None) -> np.ndarray:
    return check_data(read_array(path, key), input_shape, dtype, name=f"data {str(path)!r}")
