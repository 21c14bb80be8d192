"""A rule block's atoms as matrix products: the numpy engine's `dense_atoms` / `conv_atoms`, fast.

The count of a rule's true literals is sum(pos - neg) . atoms + (number of negated literals), so
a whole block is one product of the 0/1 source atoms with a small integer matrix. It runs in
float32 (BLAS) and is exact: every partial sum is an integer of magnitude at most the block's
literal count, far below 2**24. The numpy engine computes its rule blocks with it (falling back to
its own integer counts past that), and the program-fitted search the program's atoms on every
fitting sample; tests check it equals the integer counts, atom for atom.
"""

from __future__ import annotations

import numpy as np

from mofn2logic.errors import ProgramError
from mofn2logic.ir.program import Program, RuleBlock, pad_truth

CHUNK_BYTES = 64 * 1024**2  # the float32 patches of one batch of samples (conv)
EXACT = 2**24  # float32 holds every integer below this


def _thresholds(b: RuleBlock, units: int) -> np.ndarray:
    """Per unit the M its count must reach; a unit without a rule never fires."""
    m = np.full(units, np.inf, np.float32)
    for r in b.rules:
        m[r.unit] = r.m
    return m


def exact(b: RuleBlock) -> bool:
    """Whether the block's float32 counts are exact (every partial sum below 2**24)."""
    return sum(r.n for r in b.rules) < EXACT


def _check_exact(b: RuleBlock) -> None:
    if not exact(b):
        raise ProgramError(f"block {b.name!r} has {sum(r.n for r in b.rules)} literals; expected fewer than {EXACT} "
                           "(its float32 counts are exact below that)")


def dense_atoms(src: np.ndarray, b: RuleBlock) -> np.ndarray:
    """(E, units) bool: the dense block's atoms on flat source atoms `src` (E, A)."""
    _check_exact(b)
    units = b.shape[0]
    w = np.zeros((src.shape[1], units), np.float32)
    const = np.zeros(units, np.float32)
    for r in b.rules:
        for li in r.lits:
            w[li.src, r.unit] += 1.0 if li.positive else -1.0
            if not li.positive:
                const[r.unit] += 1.0
    counts = np.asarray(src, np.float32) @ w
    counts += const
    return counts >= _thresholds(b, units)


def conv_atoms(program: Program, src: np.ndarray, b: RuleBlock) -> np.ndarray:
    """(E, channels, oh, ow) bool: the conv block's atoms on source atoms `src` (E, C, H, W); outside
    the source a literal reads its channel's padding truth (`pad_truth`)."""
    _check_exact(b)
    e, c, h, w = src.shape
    c_out, oh, ow = b.shape
    sy, sx = b.stride
    offsets = sorted({li.offset for r in b.rules for li in r.lits if li.offset is not None})
    out = np.zeros((e, c_out, oh, ow), bool)
    if not offsets:  # no literals: a rule with M <= 0 holds everywhere
        for r in b.rules:
            out[:, r.unit] = r.m <= 0
        return out
    at = {o: k for k, o in enumerate(offsets)}
    wm = np.zeros((len(offsets), c, c_out), np.float32)
    const = np.zeros(c_out, np.float32)
    for r in b.rules:
        for li in r.lits:
            assert li.offset is not None  # check_program: conv literals have offsets
            wm[at[li.offset], li.src, r.unit] += 1.0 if li.positive else -1.0
            if not li.positive:
                const[r.unit] += 1.0
    m = _thresholds(b, c_out)
    # the source with a border of each channel's padding truth, wide enough for every offset
    dys, dxs = [o[0] for o in offsets], [o[1] for o in offsets]
    ly, lx = max(0, -min(dys)), max(0, -min(dxs))
    hy, hx = max(0, (oh - 1) * sy + max(dys) - (h - 1)), max(0, (ow - 1) * sx + max(dxs) - (w - 1))
    pad = np.array([pad_truth(program, b.source, ch) for ch in range(c)], bool)
    used = np.flatnonzero(np.any(wm != 0, axis=(0, 2)))  # the channels some literal reads
    wmat = wm[:, used].reshape(-1, c_out)  # (offsets * used channels, c_out), rows offset-major
    step = max(1, CHUNK_BYTES // max(1, oh * ow * wmat.shape[0] * 4))
    for s0 in range(0, e, step):
        part = np.asarray(src[s0:s0 + step])[:, used]
        n = len(part)
        padded = np.empty((n, len(used), h + ly + hy, w + lx + hx), np.float32)
        padded[...] = pad[used][None, :, None, None]
        padded[:, :, ly:ly + h, lx:lx + w] = part
        cols = np.empty((n, oh, ow, len(offsets), len(used)), np.float32)
        for k, (dy, dx) in enumerate(offsets):
            y0, x0 = ly + dy, lx + dx
            view = padded[:, :, y0:y0 + (oh - 1) * sy + 1:sy, x0:x0 + (ow - 1) * sx + 1:sx]  # (n, used, oh, ow)
            cols[:, :, :, k, :] = view.transpose(0, 2, 3, 1)
        counts = cols.reshape(n * oh * ow, -1) @ wmat
        counts += const
        out[s0:s0 + n] = (counts >= m).reshape(n, oh, ow, c_out).transpose(0, 3, 1, 2)
    return out


__all__ = ["dense_atoms", "conv_atoms", "exact"]
