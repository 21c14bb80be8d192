"""Prefix histograms of a unit (docs/method.md, section 3.6) summed over shards.

A shard's histogram counts, for each N, its examples by c_N (the true literals among the first
N) and target, over the range [lo_N, hi_N] it observed. The whole data's range is the union of
the shards' ranges (its least and greatest c_N are the least and greatest over shards), so the
sum laid out on that range is the histogram one machine computes from all the examples, array
for array -- and the candidates and choices made from it are the same.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mofn2logic.search.backends import PrefixHistogram
from mofn2logic.search.unit import SparseRows


@njit(cache=True, nogil=True)
def _add_into(lo, offsets, pos, neg, h_lo, h_offsets, h_pos, h_neg):  # pragma: no cover - compiled
    """Add histogram h's counts of each N into the wider ranges starting at `lo` (layout `offsets`)."""
    for big_n in range(len(lo)):
        start = offsets[big_n] + h_lo[big_n] - lo[big_n]
        first = h_offsets[big_n]
        for q in range(h_offsets[big_n + 1] - first):
            pos[start + q] += h_pos[first + q]
            neg[start + q] += h_neg[first + q]


def merge_histograms(a: PrefixHistogram | None, b: PrefixHistogram | None) -> PrefixHistogram | None:
    """The histogram of the union of two disjoint example sets (None: no examples)."""
    if a is None:
        return b
    if b is None:
        return a
    lo = np.minimum(a.lo, b.lo).astype(np.int64)
    hi = np.maximum(a.hi, b.hi).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(hi - lo + 1)]).astype(np.int64)
    pos = np.zeros(int(offsets[-1]), np.int64)
    neg = np.zeros(int(offsets[-1]), np.int64)
    for h in (a, b):
        _add_into(lo, offsets, pos, neg, h.lo.astype(np.int64), h.offsets.astype(np.int64), h.pos.astype(np.int64),
                  h.neg.astype(np.int64))
    return PrefixHistogram(lo, hi, offsets, pos, neg)


def merge_lists(a: list, b: list) -> list:
    """Unit by unit."""
    return [merge_histograms(x, y) for x, y in zip(a, b)]


@njit(cache=True, nogil=True)
def _sparse_prefix_histogram(indptr, indices, flip, order, y):  # pragma: no cover - compiled
    """`kernels.prefix_histogram` of the literals `order` (rows of a `kernels.sparse_rows` matrix, each read
    as stored XOR flip[row]) against `y` (uint8), visiting only the stored entries (as `kernels.prefix_errors`
    does): a flipped literal raises every count by one (the offset f) except at its stored examples. The
    examples per (count - f, target) are kept, so each N's histogram is read off its [lo_N, hi_N] range."""
    n = len(order)
    e = len(y)
    base = n + 1  # d = c - f lives at base + d, d in -n .. n
    at_p = np.zeros(2 * n + 4, np.int64)
    at_n = np.zeros(2 * n + 4, np.int64)
    n_pos = 0
    for j in range(e):
        n_pos += y[j]
    at_p[base] = n_pos
    at_n[base] = e - n_pos
    d = np.zeros(e, np.int32)
    lo = np.zeros(n + 1, np.int64)
    hi = np.zeros(n + 1, np.int64)
    offsets = np.zeros(n + 2, np.int64)
    cap = max(16, 4 * (n + 1))
    pos = np.empty(cap, np.int64)
    neg = np.empty(cap, np.int64)
    pos[0] = n_pos
    neg[0] = e - n_pos
    offsets[1] = 1
    dmin = 0
    dmax = 0
    f = 0
    for k in range(n):
        r = order[k]
        step = -1 if flip[r] != 0 else 1
        if flip[r] != 0:
            f += 1
        for p in range(indptr[r], indptr[r + 1]):
            j = indices[p]
            dj = d[j]
            if y[j] != 0:
                at_p[base + dj] -= 1
                at_p[base + dj + step] += 1
            else:
                at_n[base + dj] -= 1
                at_n[base + dj + step] += 1
            d[j] = dj + step
        if e > 0:
            while at_p[base + dmin - 1] + at_n[base + dmin - 1] > 0:
                dmin -= 1
            while at_p[base + dmin] + at_n[base + dmin] == 0:
                dmin += 1
            while at_p[base + dmax + 1] + at_n[base + dmax + 1] > 0:
                dmax += 1
            while at_p[base + dmax] + at_n[base + dmax] == 0:
                dmax -= 1
        else:
            dmin = -f
            dmax = -f
        lo[k + 1] = dmin + f
        hi[k + 1] = dmax + f
        start = offsets[k + 1]
        width = dmax - dmin + 1
        if start + width > len(pos):
            size = max(2 * len(pos), start + width)
            grown_p = np.empty(size, np.int64)
            grown_n = np.empty(size, np.int64)
            grown_p[:start] = pos[:start]
            grown_n[:start] = neg[:start]
            pos = grown_p
            neg = grown_n
        for q in range(width):
            pos[start + q] = at_p[base + dmin + q]
            neg[start + q] = at_n[base + dmin + q]
        offsets[k + 2] = start + width
    end = offsets[n + 1]
    return lo, hi, offsets, pos[:end].copy(), neg[:end].copy()


def sparse_prefix_histogram(rows: SparseRows, order: np.ndarray, negative: np.ndarray, y: np.ndarray) -> PrefixHistogram:
    """The prefix histogram of the literals `order` of `rows` (negated where `negative[row]`) against `y`,
    equal to `backends.prefix_histogram((rows as dense)[order] ^ negative[order][:, None], y)` array for
    array, without forming the literal matrix. Releases the GIL."""
    flip = (np.asarray(negative, bool) ^ rows.complemented.astype(bool)).astype(np.uint8)
    lo, hi, offsets, pos, neg = _sparse_prefix_histogram(rows.indptr, rows.indices, flip,
                                                         np.ascontiguousarray(order, dtype=np.int64),
                                                         np.ascontiguousarray(y, dtype=bool).view(np.uint8))
    return PrefixHistogram(lo, hi, offsets, pos, neg)
