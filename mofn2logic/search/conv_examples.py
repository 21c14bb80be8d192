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
from typing import Any

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


def draw(total: int, budget: int, seed: int) -> np.ndarray:
    """All of range(`total`), or `budget` of them drawn without replacement (seeded), ascending."""
    if total > budget:
        return np.sort(np.random.default_rng(seed).choice(total, size=budget, replace=False))
    return np.arange(total)


def drawn_positions(e: int, oh: int, ow: int, budget: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample, oy, ox) of the (sample, output position) pairs `sample_examples` reads, sample ascending."""
    sample, rest = np.divmod(draw(e * oh * ow, budget, seed), oh * ow)
    oy, ox = np.divmod(rest, ow)
    return sample, oy, ox


def sample_examples(x: np.ndarray, out: np.ndarray, layer: Layer, budget: int, seed: int) -> ConvExamples:
    """All (sample, position) pairs, or `budget` of them drawn without replacement (seeded; docs/method.md,
    section 4)."""
    e, _, oh, ow = out.shape
    sample, oy, ox = drawn_positions(e, oh, ow, budget, seed)
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


# --------------------------------------------------------------------------- drawn while the harvest runs

@dataclass(frozen=True, slots=True)
class DrawnConv:
    """What the search reads of a convolution's tensors, gathered batch by batch during the harvest
    (`ConvDraws`): the examples `sample_examples` draws, and the (sample, input position) values a new
    split per input channel draws (`search.network`, where no threshold can be carried)."""

    examples: ConvExamples
    split_sample: np.ndarray  # (S,) sample of each drawn input position
    split_values: np.ndarray  # (S, C_in) the input's channels there
    input_tensor: str
    output_tensor: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    budget: int
    seed: int
    split_seed: int


class ConvDraws:
    """An `on_batch` reader for `harvest`: for each conv layer (name -> (layer, seed, split seed)), the
    same draws as `sample_examples(x, y, layer, budget, seed)` and the input-split draw make from the
    whole tensors, gathered from each batch as it passes, so that the conv tensors need not be stored:
    for the MNIST CNN at 8,000 images, 60 MB instead of 1.9 GB. The draws depend on the number of
    samples and the tensors' shapes only, so they are made at the first batch; rows arrive in order."""

    def __init__(self, layers: dict[str, tuple[Layer, int, int]], n_samples: int, budget: int) -> None:
        for layer, _, _ in layers.values():
            _conv(layer)
        self.layers = layers
        self.n_samples = n_samples
        self.budget = budget
        self._at: dict[str, tuple] = {}  # per layer: the draws, made at the first batch
        self._parts: dict[str, tuple[list, list, list]] = {name: ([], [], []) for name in layers}

    def tensors(self) -> set[str]:
        return {t for layer, _, _ in self.layers.values() for t in (layer.input, layer.output)}

    def __call__(self, batch: dict[str, np.ndarray] | Any, start: int) -> None:
        for name, (layer, seed, split_seed) in self.layers.items():
            x, y = batch[layer.input], batch[layer.output]
            if name not in self._at:
                e = self.n_samples
                _, h, w = x.shape[1:]
                _, oh, ow = y.shape[1:]
                s2, p2 = np.divmod(draw(e * h * w, self.budget, split_seed), h * w)
                self._at[name] = (drawn_positions(e, oh, ow, self.budget, seed), (s2, p2),
                                  tuple(x.shape[1:]), tuple(y.shape[1:]))
            (sample, oy, ox), (s2, p2), _, _ = self._at[name]
            stop = start + len(x)
            lo, hi = np.searchsorted(sample, (start, stop))
            patches, targets, splits = self._parts[name]
            s = sample[lo:hi] - start
            patches.append(gather_patches(x, layer, s, oy[lo:hi], ox[lo:hi]))
            targets.append(np.asarray(y[s, :, oy[lo:hi], ox[lo:hi]]))
            lo, hi = np.searchsorted(s2, (start, stop))
            splits.append(np.asarray(x.reshape(len(x), x.shape[1], -1)[s2[lo:hi] - start, :, p2[lo:hi]]))

    def result(self) -> dict[str, DrawnConv]:
        """Per conv layer, what was gathered (every batch must have passed)."""
        out = {}
        for name, (layer, seed, split_seed) in self.layers.items():
            if name not in self._at:
                raise SearchError(f"layer {layer.name!r}: the harvest passed no sample to the conv draws")
            (sample, oy, ox), (s2, _), in_shape, out_shape = self._at[name]
            patches, targets, splits = self._parts[name]
            ex = ConvExamples(sample, oy, ox, np.concatenate(patches), np.concatenate(targets))
            if len(ex.patches) != len(sample) or sum(len(v) for v in splits) != len(s2):
                raise SearchError(f"layer {layer.name!r}: the harvest did not pass every sample to the conv draws")
            out[name] = DrawnConv(ex, s2, np.concatenate(splits), layer.input, layer.output, in_shape, out_shape,
                                  self.budget, seed, split_seed)
        return out
