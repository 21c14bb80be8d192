"""Compiled (numba) single-pass kernels for the search's heavy pass, on the CPU (docs/method.md,
sections 2 and 3).

One walk over the literal-major matrix keeps every example's running count c_N(e) and adds
one to the histogram bin of (N, c_N(e), target) -- no intermediate arrays. For small fan-in the
histogram uses a triangular layout (bins c = 0..N for every N) and is compacted afterwards; for
large fan-in a first pass finds each N's count range so the layout stays O(E * n) in size.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _histogram(lits_t, y, base, size):  # pragma: no cover - compiled
    """Bin 0 holds N = 0; the count c of N = k + 1 goes to bin base[k] + c, split by target."""
    n, e = lits_t.shape
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
        b = base[k]
        for j in range(e):
            count[j] += row[j]
            if y[j]:
                pos[b + count[j]] += 1
            else:
                neg[b + count[j]] += 1
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


def prefix_histogram(lits_t: np.ndarray, y: np.ndarray):
    """(lo, hi, offsets, pos, neg) in the compact layout of `backends.PrefixHistogram`."""
    n, e = lits_t.shape
    lits = lits_t.view(np.uint8) if lits_t.dtype == np.bool_ else lits_t.astype(np.uint8)
    yy = np.asarray(y, dtype=np.bool_)
    if (n + 1) * (n + 2) // 2 <= e * (n + 1) // 2:  # triangular bins stay small: one pass, then compact
        starts = np.arange(n + 1) * (np.arange(n + 1) + 1) // 2  # triangular: bins c = 0..N for every N
        pos_t, neg_t = _histogram(lits, yy, starts[1:], (n + 1) * (n + 2) // 2)
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
    pos, neg = _histogram(lits, yy, offsets[1:-1] - lo[1:], int(offsets[-1]))
    return lo, hi, offsets, pos, neg


@njit(cache=True, nogil=True)
def binary_split_sweep(xt, ordt, ys, table, eps):  # pragma: no cover - compiled
    """Best cut of every input (rows of `xt`, (k, E), sorted by `ordt`) against every binary
    target (rows of `ys`, (U, E)). The gain is splits.split_gain's expression, term for term and
    in the same order, so equal gains tie exactly as in the numpy sweep; the lowest cut wins ties
    (docs/method.md, section 2).
    Returns the cut position p per (target, input) -- left part = the first p + 1 sorted rows,
    -1 for no positive gain -- and its gain."""
    k, e = xt.shape
    u = ys.shape[0]
    best_pos = np.full((u, k), -1, np.int64)
    best_gain = np.zeros((u, k), np.float64)
    tot1 = np.zeros(u, np.int64)
    s_all = np.zeros(u, np.float64)
    for t in range(u):
        for j in range(e):
            tot1[t] += ys[t, j]
        s_all[t] += table[e - tot1[t]]
        s_all[t] += table[tot1[t]]
    for col in range(k):
        xs = xt[col]
        order = ordt[col]
        for t in range(u):
            y = ys[t]
            l1 = 0
            g_best = -np.inf
            p_best = -1
            tot0_t = e - tot1[t]
            for p in range(e - 1):
                r = order[p]
                l1 += y[r]
                if xs[r] < xs[order[p + 1]]:
                    n_l = p + 1
                    l0 = n_l - l1
                    s_l = 0.0
                    s_l += table[l0]
                    s_l += table[l1]
                    s_r = 0.0
                    s_r += table[tot0_t - l0]
                    s_r += table[tot1[t] - l1]
                    g = (table[e] - s_all[t] - (table[e - n_l] - s_r) - (table[n_l] - s_l)) / e
                    if g > g_best:
                        g_best = g
                        p_best = p
            if p_best >= 0 and g_best > eps:
                best_pos[t, col] = p_best
                best_gain[t, col] = g_best
    return best_pos, best_gain
