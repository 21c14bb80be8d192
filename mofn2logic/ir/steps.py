"""Non-parametric steps between layers, defined once (docs/method.md, sections 2 and 5).

Each variant is frozen data that answers its per-sample ``output_shape`` and how it moves
values (``apply`` on a batch ``(E, *shape)``). Index steps (flatten, reshape, transpose,
identity) only move values, so they also answer an ``index_map``: output flat index ->
input flat index. The importer builds them, threshold propagation and the compiler apply
them, and the engines and the DOT printer read the blocks the compiler made from them.

``input``/``output``/``node`` name the ONNX tensors and node when the step sits in a network;
inside a rule set they are kept for messages only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mofn2logic.errors import ProgramError

Shape = tuple[int, ...]


def _size(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Dropout, Identity: nothing moves."""

    input: str = ""
    output: str = ""
    node: str = ""

    op = "identity"

    def output_shape(self, shape: Shape) -> Shape:
        return tuple(shape)

    def apply(self, batch: np.ndarray) -> np.ndarray:
        return batch


@dataclass(frozen=True, slots=True, kw_only=True)
class Flatten:
    """ONNX Flatten: the per-sample axes from `axis` on become one (axis 1 keeps the batch)."""

    axis: int = 1
    input: str = ""
    output: str = ""
    node: str = ""

    op = "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        if self.axis != 1:
            raise ProgramError(f"flatten with axis {self.axis} mixes samples; expected axis 1")
        return (_size(shape),)

    def apply(self, batch: np.ndarray) -> np.ndarray:
        return batch.reshape(len(batch), *self.output_shape(batch.shape[1:]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Reshape:
    """ONNX Reshape to a constant target; the first entry is the batch axis (0, -1 or the batch size)."""

    shape: tuple[int, ...]
    input: str = ""
    output: str = ""
    node: str = ""

    op = "reshape"

    def output_shape(self, shape: Shape) -> Shape:
        size = _size(shape)
        target = [int(shape[d - 1]) if v == 0 and 0 < d <= len(shape) else int(v)
                  for d, v in enumerate(self.shape) if d > 0]
        if target.count(-1) > 1 or any(v < -1 or v == 0 for v in target):
            raise ProgramError(f"reshape to {list(self.shape)} is not a per-sample shape")
        if -1 in target:
            known = _size(tuple(v for v in target if v != -1))
            if known == 0 or size % known:
                raise ProgramError(f"reshape to {list(self.shape)} cannot hold {size} values per sample")
            target[target.index(-1)] = size // known
        if _size(tuple(target)) != size:
            raise ProgramError(f"reshape to {list(self.shape)} needs {_size(tuple(target))} values per sample; "
                               f"the input has {size} (shape {list(shape)})")
        return tuple(target)

    def apply(self, batch: np.ndarray) -> np.ndarray:
        return batch.reshape(len(batch), *self.output_shape(batch.shape[1:]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Transpose:
    """ONNX Transpose with a permutation that keeps the batch axis first."""

    perm: tuple[int, ...]
    input: str = ""
    output: str = ""
    node: str = ""

    op = "transpose"

    def output_shape(self, shape: Shape) -> Shape:
        if sorted(self.perm) != list(range(len(shape) + 1)) or self.perm[0] != 0:
            raise ProgramError(f"transpose {list(self.perm)} does not permute the axes of a sample of shape "
                               f"{list(shape)} with the batch axis first")
        return tuple(int(shape[p - 1]) for p in self.perm[1:])

    def apply(self, batch: np.ndarray) -> np.ndarray:
        self.output_shape(batch.shape[1:])
        return np.transpose(batch, self.perm)


def _pool_extent(size: int, k: int, s: int, p0: int, p1: int, d: int, ceil: bool) -> int:
    span = size + p0 + p1 - d * (k - 1) - 1
    return (-(-span // s) if ceil else span // s) + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pool2d:
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right (ONNX: begins, then ends)
    dilations: tuple[int, int] = (1, 1)
    ceil_mode: bool = False
    input: str = ""
    output: str = ""
    node: str = ""

    op = "pool"

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 3 or len(self.kernel) != 2:
            raise ProgramError(f"{self.op} needs a (channels, height, width) input and a 2-D kernel; "
                               f"got shape {list(shape)} and kernel {list(self.kernel)}")
        if min(self.kernel) < 1 or min(self.strides) < 1 or min(self.dilations) < 1 or min(self.pads) < 0:
            raise ProgramError(f"{self.op} has kernel {list(self.kernel)}, strides {list(self.strides)}, "
                               f"pads {list(self.pads)}, dilations {list(self.dilations)}; expected positive "
                               "sizes and non-negative pads")
        c, h, w = (int(d) for d in shape)
        oh = _pool_extent(h, self.kernel[0], self.strides[0], self.pads[0], self.pads[2], self.dilations[0],
                          self.ceil_mode)
        ow = _pool_extent(w, self.kernel[1], self.strides[1], self.pads[1], self.pads[3], self.dilations[1],
                          self.ceil_mode)
        if oh < 1 or ow < 1:
            raise ProgramError(f"{self.op} with kernel {list(self.kernel)} leaves no output of a {h}x{w} input")
        return (c, oh, ow)

    def windows(self, shape: Shape):
        """For each kernel offset: (rows, cols, inside) -- the input row/column read by every output
        position (clipped into range) and whether it lies inside the input (not padding)."""
        _, h, w = (int(d) for d in shape)
        _, oh, ow = self.output_shape(shape)
        for ky in range(self.kernel[0]):
            for kx in range(self.kernel[1]):
                rows = np.arange(oh) * self.strides[0] - self.pads[0] + ky * self.dilations[0]
                cols = np.arange(ow) * self.strides[1] - self.pads[1] + kx * self.dilations[1]
                inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
                yield np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1), inside


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxPool(_Pool2d):
    """Max pooling. On thresholded units it is exact as an OR over each window: padding never wins."""

    op = "maxpool"

    def apply(self, batch: np.ndarray) -> np.ndarray:
        low = False if batch.dtype == bool else (-np.inf if batch.dtype.kind == "f" else np.iinfo(batch.dtype).min)
        out = np.full((*batch.shape[:2], *self.output_shape(batch.shape[1:])[1:]), low, batch.dtype)
        for rows, cols, inside in self.windows(batch.shape[1:]):
            np.maximum(out, np.where(inside, batch[:, :, rows][:, :, :, cols], low), out=out)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AvgPool(_Pool2d):
    """Average pooling (global when `kernel` covers the input): not exact on thresholded units."""

    count_include_pad: bool = False
    op = "avgpool"

    def apply(self, batch: np.ndarray) -> np.ndarray:
        _, oh, ow = self.output_shape(batch.shape[1:])
        total = np.zeros((*batch.shape[:2], oh, ow))
        count = np.zeros((oh, ow))
        for rows, cols, inside in self.windows(batch.shape[1:]):
            total += np.where(inside, batch[:, :, rows][:, :, :, cols], 0.0)
            count += 1.0 if self.count_include_pad else inside
        return total / np.maximum(count, 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class GlobalAvgPool:
    """Global average pooling: (C, H, W) -> (C, 1, 1). Not exact on thresholded units."""

    input: str = ""
    output: str = ""
    node: str = ""

    op = "globalavgpool"

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) < 2:
            raise ProgramError(f"global average pooling needs channels and positions; got shape {list(shape)}")
        return (int(shape[0]),) + (1,) * (len(shape) - 1)

    def apply(self, batch: np.ndarray) -> np.ndarray:
        return batch.mean(axis=tuple(range(2, batch.ndim)), keepdims=True)


Step = Identity | Flatten | Reshape | Transpose | MaxPool | AvgPool | GlobalAvgPool
STEP_TYPES: dict[str, type] = {t.op: t for t in (Identity, Flatten, Reshape, Transpose, MaxPool, AvgPool,
                                                  GlobalAvgPool)}
INDEX_STEPS = (Identity, Flatten, Reshape, Transpose)


def index_map(steps: tuple[Step, ...] | list[Step], shape: Shape) -> tuple[Shape, np.ndarray]:
    """The output shape and flat gather index of a run of index steps over a per-sample `shape`."""
    arr = np.arange(_size(shape)).reshape((1, *shape))
    for s in steps:
        if not isinstance(s, INDEX_STEPS):
            raise ProgramError(f"{s.op} is not an index step")
        arr = s.apply(arr)
    return tuple(int(d) for d in arr.shape[1:]), arr.reshape(-1)


def step_fields(step: Step) -> dict[str, object]:
    """The step's own attributes (no tensor names), as plain JSON-ready values."""
    skip = ("input", "output", "node")
    out: dict[str, object] = {}
    for name in step.__dataclass_fields__:
        if name in skip:
            continue
        v = getattr(step, name)
        out[name] = list(v) if isinstance(v, tuple) else v
    return out
