"""Examples for a convolutional layer: (sample, output position) pairs and their receptive fields
(docs/method.md, section 4).

A rule per output channel is shared by every position, as the filter is. The literal with
flat index i = (c, ky, kx) (the order of the weight's C_in x kh x kw axes) reads input channel c
at position (oy * sy + dy, ox * sx + dx) with (dy, dx) = (ky * dil_y - pad_top, kx * dil_x -
pad_left): its offset relative to the output position scaled by the stride. Padding reads 0.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mofn2logic.errors import SearchError
from mofn2logic.ir.network import ConvAttrs, Layer
from mofn2logic.search.splits import best_splits


@dataclass(frozen=True, slots=True)
class ConvExamples:
    sample: np.ndarray  # (S,) sample index of each example
    oy: np.ndarray
    ox: np.ndarray
    patches: np.ndarray  # (S, C_in * kh * kw) receptive-field values
    targets: np.ndarray  # (S, C_out) the layer's outputs at those positions
    per_channel: np.ndarray | None = None  # best-position mode: (C_out,) row block of each channel


def _conv(layer: Layer) -> ConvAttrs:
    if layer.conv is None:
        raise SearchError(f"layer {layer.name!r} is not a convolution")
    return layer.conv


def literal_offsets(layer: Layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(channel, dy, dx) of each flat literal index of a conv layer (all C_in channels)."""
    c = _conv(layer)
    cin = layer.input_channels
    kh, kw = c.kernel
    ch, ky, kx = np.meshgrid(np.arange(cin), np.arange(kh), np.arange(kw), indexing="ij")
    return ch.ravel(), (ky * c.dilations[0] - c.pads[0]).ravel(), (kx * c.dilations[1] - c.pads[1]).ravel()


def full_weight(layer: Layer) -> np.ndarray:
    """(C_out, C_in * kh * kw) weights; zeros outside a channel's group (never literals)."""
    c = _conv(layer)
    cout, cin_g, kh, kw = layer.weight.shape
    if c.groups == 1:
        return layer.weight.reshape(cout, -1)
    w = np.zeros((cout, cin_g * c.groups, kh, kw), layer.weight.dtype)
    per = cout // c.groups
    for o in range(cout):
        g = o // per
        w[o, g * cin_g:(g + 1) * cin_g] = layer.weight[o]
    return w.reshape(cout, -1)


def gather_patches(x: np.ndarray, layer: Layer, sample: np.ndarray, oy: np.ndarray, ox: np.ndarray) -> np.ndarray:
    c = _conv(layer)
    ch, dy, dx = literal_offsets(layer)
    rows = oy[:, None] * c.strides[0] + dy[None, :]
    cols = ox[:, None] * c.strides[1] + dx[None, :]
    h, w = x.shape[2], x.shape[3]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    vals = np.asarray(x[sample[:, None], ch[None, :], np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)])
    return np.where(inside, vals, np.zeros((), x.dtype))


def sample_examples(x: np.ndarray, out: np.ndarray, layer: Layer, budget: int, seed: int) -> ConvExamples:
    """All (sample, position) pairs, or `budget` of them drawn without replacement (seeded; docs/method.md,
    section 4)."""
    e, _, oh, ow = out.shape
    total = e * oh * ow
    if total > budget:
        flat = np.sort(np.random.default_rng(seed).choice(total, size=budget, replace=False))
    else:
        flat = np.arange(total)
    sample, rest = np.divmod(flat, oh * ow)
    oy, ox = np.divmod(rest, ow)
    patches = np.concatenate([gather_patches(block, layer, s, oy[sl], ox[sl]) for block, s, sl in _sample_blocks(x, sample)])
    targets = np.concatenate([np.asarray(block[s, :, oy[sl], ox[sl]]) for block, s, sl in _sample_blocks(out, sample)])
    return ConvExamples(sample, oy, ox, patches, targets)


SAMPLE_BLOCK_BYTES = 64 * 1024**2


def _sample_blocks(a: np.ndarray, sample: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, slice]]:
    """(block, sample - first row of block, slice of the examples) over the sorted `sample`, a block
    of consecutive rows of `a` at a time. A whole-file read-only map (the harvest's on-disk store)
    is read with plain file reads, a block at a time: gathering through the map would make every
    touched page of the tensor resident for as long as the map is held."""
    if not (isinstance(a, np.memmap) and isinstance(a.base, mmap.mmap) and a.filename and a.flags.c_contiguous
            and len(sample) and bool(np.all(np.diff(sample) >= 0))):
        yield a, sample, slice(None)
        return
    filename, offset, per_row = a.filename, a.offset, max(1, a[:1].nbytes)
    step = max(1, SAMPLE_BLOCK_BYTES // per_row)
    bounds = np.searchsorted(sample, np.arange(0, len(a) + step, step))
    for k in range(len(bounds) - 1):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if hi > lo:
            first = k * step
            rows = min(step, len(a) - first)
            block = np.fromfile(filename, a.dtype, count=rows * a[:1].size, offset=offset + first * per_row)
            yield block.reshape(rows, *a.shape[1:]), sample[lo:hi] - first, slice(lo, hi)


def best_positions(out: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """The reference's choice: per channel, the output position whose split has the highest IG
    against the predicted class (first position on ties). Returns (C_out, 2) of (oy, ox).
    docs/method.md, section 4."""
    e, cout, oh, ow = out.shape
    best = np.zeros((cout, 2), np.int64)
    for ch in range(cout):
        _, gains = best_splits(np.asarray(out[:, ch]).reshape(e, -1), pred, n_classes)
        best[ch] = divmod(int(np.argmax(gains)), ow)
    return best
