"""Compiled (numba) single-pass kernels for the search's heavy pass, on the CPU.

One walk over the literal-major matrix keeps every example's running count c_N(e) and adds
one to the histogram bin of (N, c_N(e), target) -- no intermediate arrays. For small fan-in the
histogram uses a triangular layout (bins c = 0..N for every N) and is compacted afterwards; for
large fan-in a first pass finds each N's count range so the layout stays O(E * n) in size.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _triangular(lits_t, y):  # pragma: no cover - compiled
    n, e = lits_t.shape
    size = (n + 1) * (n + 2) // 2
    pos = np.zeros(size, np.int64)
    neg = np.zeros(size, np.int64)
    count = np.zeros(e, np.int64)
    for j in range(e):
        if y[j]:
            pos[0] += 1
        else:
            neg[0] += 1
    for k in range(n):
        row = lits_t[k]
        base = (k + 1) * (k + 2) // 2  # first bin of N = k + 1
        for j in range(e):
            count[j] += row[j]
            if y[j]:
                pos[base + count[j]] += 1
            else:
                neg[base + count[j]] += 1
    return pos, neg


@njit(cache=True, nogil=True)
def _ranges(lits_t):  # pragma: no cover - compiled
    n, e = lits_t.shape
    lo = np.zeros(n + 1, np.int64)
    hi = np.zeros(n + 1, np.int64)
    count = np.zeros(e, np.int64)
    for k in range(n):
        row = lits_t[k]
        mn = n + 1
        mx = 0
        for j in range(e):
            count[j] += row[j]
            c = count[j]
            if c < mn:
                mn = c
            if c > mx:
                mx = c
        lo[k + 1] = mn if e > 0 else 0
        hi[k + 1] = mx
    return lo, hi


@njit(cache=True, nogil=True)
def _compact(lits_t, y, lo, offsets):  # pragma: no cover - compiled
    n, e = lits_t.shape
    size = offsets[-1]
    pos = np.zeros(size, np.int64)
    neg = np.zeros(size, np.int64)
    count = np.zeros(e, np.int64)
    for j in range(e):
        if y[j]:
            pos[0] += 1
        else:
            neg[0] += 1
    for k in range(n):
        row = lits_t[k]
        base = offsets[k + 1] - lo[k + 1]
        for j in range(e):
            count[j] += row[j]
            if y[j]:
                pos[base + count[j]] += 1
            else:
                neg[base + count[j]] += 1
    return pos, neg


def prefix_histogram(lits_t: np.ndarray, y: np.ndarray):
    """(lo, hi, offsets, pos, neg) in the compact layout of `backends.PrefixHistogram`."""
    n, e = lits_t.shape
    lits = lits_t.view(np.uint8) if lits_t.dtype == np.bool_ else lits_t.astype(np.uint8)
    yy = np.asarray(y, dtype=np.bool_)
    if (n + 1) * (n + 2) // 2 <= e * (n + 1) // 2:  # triangular bins stay small: one pass, then compact
        pos_t, neg_t = _triangular(lits, yy)
        starts = np.arange(n + 1) * (np.arange(n + 1) + 1) // 2
        filled = (pos_t + neg_t) > 0
        nz = np.flatnonzero(filled)
        row = np.searchsorted(starts, nz, side="right") - 1
        lo = np.full(n + 1, -1, np.int64)
        hi = np.zeros(n + 1, np.int64)
        first = np.ones(len(nz), bool)
        first[1:] = row[1:] != row[:-1]
        lo[row[first]] = nz[first] - starts[row[first]]
        last = np.ones(len(nz), bool)
        last[:-1] = row[1:] != row[:-1]
        hi[row[last]] = nz[last] - starts[row[last]]
        if e == 0:
            lo[:] = 0
        width = hi - lo + 1
        offsets = np.concatenate([[0], np.cumsum(width)]).astype(np.int64)
        take = np.repeat(starts + lo, width) + (np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], width))
        return lo, hi, offsets, pos_t[take], neg_t[take]
    lo, hi = _ranges(lits)
    offsets = np.concatenate([[0], np.cumsum(hi - lo + 1)]).astype(np.int64)
    pos, neg = _compact(lits, yy, lo, offsets)
    return lo, hi, offsets, pos, neg
