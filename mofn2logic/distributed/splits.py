"""Information-gain splits of columns spread over shards, equal bit for bit to `search.splits.best_splits`.

The exact best cut of a column needs, at every gap between two consecutive distinct values, the
class counts on its left. Sending every value is as costly as gathering the data, so the split
is made in three additive passes (docs/scale.md):

1. **sample**: each shard gives a few evenly spaced values per column; their quantiles are the
   column's bin edges (any edges give the same result: they only decide what the passes cost);
2. **bins**: each shard counts its examples per (column, bin, label, class) and keeps each bin's
   least and greatest value; the parts are summed. Every gap between two non-empty bins is a
   candidate cut whose gain is now known exactly, so their best is a lower bound of the column's
   best gain. A cut inside bin b has left counts L >= L_before(b) and right counts
   R >= T - L_through(b) class by class, and g(L) = |L| log |L| - sum_c L_c log L_c grows with
   every L_c, so its gain is at most (E H(T) - g(L_before) - g(T - L_through)) / E. A bin whose
   bound is below the best gap's gain holds no best cut;
3. **values**: each shard sends its (value, labels) pairs that fall in the remaining bins (those
   with two or more distinct values); with the bins' counts they give every cut that can win.

The final sweep computes each gain with `best_splits`' expression, term for term, from the same
integer counts, so equal gains tie exactly and the lowest cut wins, as on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from mofn2logic.search.splits import GAIN_EPS, midpoint, xlogx_table

SAMPLE_PER_COLUMN = 256  # values per column and shard for the bin edges
MAX_BINS = 256  # bins per column (fewer when the sample has fewer distinct values)
BOUND_MARGIN = 1e-9  # float rounding of a gain is ~1e-14; a bin within this of the best is kept


@dataclass(frozen=True, slots=True)
class BinCounts:
    """Pass 2, summed over shards: counts (k, B, L, C), and each bin's least and greatest value (k, B)
    (+inf / -inf where empty)."""

    counts: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def sample_part(values: np.ndarray, size: int = SAMPLE_PER_COLUMN) -> np.ndarray:
    """(k, m) values of evenly spaced rows of `values` (E, k)."""
    e = values.shape[0]
    if e == 0:
        return np.zeros((values.shape[1], 0), values.dtype)
    rows = np.unique(np.linspace(0, e - 1, min(e, size)).astype(np.int64))
    return np.ascontiguousarray(np.asarray(values[rows]).T)


def edges_from_samples(samples: list[np.ndarray], bins: int = MAX_BINS) -> np.ndarray:
    """(k, B - 1) bin edges per column, in the values' dtype, padded with +inf."""
    s = np.concatenate(samples, axis=1)
    k = s.shape[0]
    out = np.full((k, bins - 1), np.inf, dtype=s.dtype)
    for c in range(k):
        u = np.unique(s[c])
        if len(u) > bins - 1:
            u = np.unique(u[np.linspace(0, len(u) - 1, bins - 1).astype(np.int64)])
        u = u[1:] if len(u) else u  # the least value opens the first bin; an edge there would leave it empty
        out[c, : len(u)] = u
    return out


GRID = 4096  # cells of the per-column lookup grid that starts pass 2's bin search


@njit(cache=True, nogil=True)
def _cell(v, a, scale, cells):  # pragma: no cover - compiled
    """A grid cell of a finite value: monotone (non-decreasing) in v, as every step rounds monotonically."""
    x = (np.float64(v) - a) * scale
    if x < 0.0:
        return 0
    if x >= cells:
        return cells - 1
    return int(x)


@njit(cache=True, nogil=True)
def _bin_pass(values, labels, edges, n_classes, counts, lo, hi, bins):  # pragma: no cover - compiled
    """Pass 2's counts, least and greatest values, and each value's bin (kept for pass 3), in one read of
    `values` (E, k): bin b holds edges[b - 1] <= v < edges[b] (searchsorted, side right). lo and hi follow
    np.minimum / np.maximum: an equal value replaces the kept one (so -0.0 and 0.0 end as those ufuncs leave them).

    The search starts from a grid: with cell() monotone, an edge in a lower cell than v is below v and one in
    a higher cell above it, so v's bin lies between first[cell(v)] and first[cell(v) + 1] (first[g]: the
    edges in cells below g) -- most often one or no comparison instead of eight."""
    e, k = values.shape
    n_edges = edges.shape[1]
    n_lab = labels.shape[1]
    first = np.zeros((k, GRID + 1), np.int32)
    base = np.zeros(k, np.float64)
    scale = np.zeros(k, np.float64)
    for c in range(k):
        lo_fin = 0  # edges at -inf lie below every finite value
        while lo_fin < n_edges and edges[c, lo_fin] == -np.inf:
            lo_fin += 1
        hi_fin = lo_fin
        while hi_fin < n_edges and np.isfinite(edges[c, hi_fin]):
            hi_fin += 1
        if hi_fin > lo_fin:
            base[c] = np.float64(edges[c, lo_fin])
            span = np.float64(edges[c, hi_fin - 1]) - base[c]
            sc = GRID / span if span > 0 else 0.0
            scale[c] = sc if np.isfinite(sc) else 0.0
        first[c, 0] = lo_fin
        for i in range(lo_fin, hi_fin):  # edges are sorted, so their cells are too
            first[c, _cell(edges[c, i], base[c], scale[c], GRID) + 1] += 1
        for g in range(GRID):
            first[c, g + 1] += first[c, g]
    block = 16  # columns at a time: their grids, edges and counts stay in cache
    for c0 in range(0, k, block):
        c1 = min(k, c0 + block)
        for j in range(e):
            for c in range(c0, c1):
                v = values[j, c]
                if np.isfinite(v):
                    g = _cell(v, base[c], scale[c], GRID)
                    b = first[c, g]
                    top = first[c, g + 1]
                    while b < top:
                        mid = (b + top) >> 1
                        if edges[c, mid] <= v:
                            b = mid + 1
                        else:
                            top = mid
                elif v != v:  # NaN: after every edge, as numpy sorts it
                    b = n_edges
                else:  # +-inf
                    b = 0
                    while b < n_edges and edges[c, b] <= v:
                        b += 1
                bins[j, c] = b
                for li in range(n_lab):
                    counts[c, b, li, labels[j, li]] += 1
                if lo[c, b] == lo[c, b] and not (lo[c, b] < v):
                    lo[c, b] = v
                if hi[c, b] == hi[c, b] and not (hi[c, b] > v):
                    hi[c, b] = v


def bin_part(values: np.ndarray, labels: np.ndarray, n_classes: int, edges: np.ndarray) -> BinCounts:
    """Pass 2 on one shard: `values` (E, k), `labels` (E, L) integer classes below `n_classes`."""
    return bin_part_and_bins(values, labels, n_classes, edges)[0]


def bin_part_and_bins(values: np.ndarray, labels: np.ndarray, n_classes: int,
                      edges: np.ndarray) -> tuple[BinCounts, np.ndarray]:
    """`bin_part`, and every value's bin (E, k) (uint8 for up to 256 bins), which pass 3 reads again."""
    values = np.asarray(values)
    k = values.shape[1]
    n_bins = edges.shape[1] + 1
    counts = np.zeros((k, n_bins, labels.shape[1], n_classes), np.int64)
    lo = np.full((k, n_bins), np.inf, values.dtype)
    hi = np.full((k, n_bins), -np.inf, values.dtype)
    bins = np.empty(values.shape, np.uint8 if n_bins <= 256 else np.int32)
    _bin_pass(values, np.ascontiguousarray(labels, dtype=np.int64), np.ascontiguousarray(edges, dtype=values.dtype),
              n_classes, counts, lo, hi, bins)
    return BinCounts(counts, lo, hi), bins


def merge_bins(a: BinCounts, b: BinCounts) -> BinCounts:
    return BinCounts(a.counts + b.counts, np.minimum(a.lo, b.lo), np.maximum(a.hi, b.hi))


def _s(counts: np.ndarray, table: np.ndarray) -> np.ndarray:
    """sum_c table[counts[..., c]], accumulated in class order from 0.0 (best_splits' order)."""
    s = np.zeros(counts.shape[:-1], np.float64)
    for c in range(counts.shape[-1]):
        s += table[counts[..., c]]
    return s


def _gain(left: np.ndarray, total: np.ndarray, table: np.ndarray, e: int) -> np.ndarray:
    """best_splits' gain of cuts with left class counts `left` (..., C), term for term."""
    s_all = np.float64(0.0)
    for c in range(total.shape[-1]):
        s_all += table[total[c]]
    n_l = left.sum(-1)
    s_l = _s(left, table)
    s_r = _s(total - left, table)
    return (table[e] - s_all - (table[e - n_l] - s_r) - (table[n_l] - s_l)) / e


def select_bins(r: BinCounts) -> np.ndarray:
    """(k, B) bins whose values pass 3 must send: those that may hold a best cut for some label."""
    k, n_bins, n_lab, _ = r.counts.shape
    keep = np.zeros((k, n_bins), bool)
    e = int(r.counts[0, :, 0].sum()) if k else 0
    if e < 2:
        return keep
    table = xlogx_table(e)
    inner = r.lo < r.hi  # bins with two or more distinct values: cuts inside them
    for c in range(k):
        if not inner[c].any():
            continue
        full = np.flatnonzero(r.counts[c, :, 0].sum(-1) > 0)
        for lab in range(n_lab):
            cnt = r.counts[c, :, lab]  # (B, C)
            total = cnt.sum(0)
            through = np.cumsum(cnt, axis=0)  # counts of bins 0..b
            before = through - cnt
            gaps = full[:-1]  # a cut after each non-empty bin but the last
            best = float(np.max(_gain(through[gaps], total, table, e))) if len(gaps) else -np.inf
            s_all = _s(total[None], table)[0]
            g_before = table[before.sum(-1)] - _s(before, table)
            rest = total[None] - through
            g_after = table[rest.sum(-1)] - _s(rest, table)
            bound = (table[e] - s_all - g_after - g_before) / e
            keep[c] |= inner[c] & (bound >= best - BOUND_MARGIN)
    return keep


@njit(cache=True, nogil=True)
def _kept(values, labels, bins, keep):  # pragma: no cover - compiled
    """Every column's values in its kept bins, and their labels, in row order, one column after another in
    flat arrays (column c: offsets[c] .. offsets[c + 1])."""
    e, k = values.shape
    n_lab = labels.shape[1]
    offsets = np.zeros(k + 1, np.int64)
    for j in range(e):
        for c in range(k):
            if keep[c, bins[j, c]]:
                offsets[c + 1] += 1
    for c in range(k):
        offsets[c + 1] += offsets[c]
    vals = np.empty(offsets[k], values.dtype)
    labs = np.empty((offsets[k], n_lab), labels.dtype)
    at = offsets[:k].copy()
    for j in range(e):
        for c in range(k):
            if keep[c, bins[j, c]]:
                p = at[c]
                vals[p] = values[j, c]
                for li in range(n_lab):
                    labs[p, li] = labels[j, li]
                at[c] = p + 1
    return offsets, vals, labs


def values_part(values: np.ndarray, labels: np.ndarray, edges: np.ndarray, keep: np.ndarray,
                bins: np.ndarray | None = None) -> list[tuple]:
    """Pass 3 on one shard: per column, its values in the kept bins and their labels (`bins`: pass 2's
    bin of every value, else found again)."""
    values = np.asarray(values)
    if bins is None:  # pass 2 ran elsewhere (a task moved to another worker): find the bins again, compiled
        bins = bin_part_and_bins(values, labels, int(labels.max()) + 1 if labels.size else 1, edges)[1]
    if labels.size and labels.max() < 128:  # labels are classes: the smallest integers that hold them travel
        labels = labels.astype(np.int8)
    elif labels.size and labels.max() < 32768:
        labels = labels.astype(np.int16)
    offsets, vals, labs = _kept(values, np.ascontiguousarray(labels), bins, np.ascontiguousarray(keep))
    return [(vals[offsets[c]:offsets[c + 1]], labs[offsets[c]:offsets[c + 1]]) for c in range(values.shape[1])]


def merge_values(a: list[tuple], b: list[tuple]) -> list[tuple]:
    return [(np.concatenate([va, vb]), np.concatenate([la, lb])) for (va, la), (vb, lb) in zip(a, b)]


@njit(cache=True, nogil=True)
def _sweep_column(v, lab, counts, keep, lo, hi, table, e):  # pragma: no cover - compiled
    """Best cut of one column for every label. The items in value order are the bins in index order
    (disjoint value ranges): a kept bin read as its distinct values (from `v`, its values from every
    shard in ascending order, with their labels `lab`), any other non-empty bin whole. Each cut's gain
    is `_gain`'s expression term for term from the integer counts left of it (so bit for bit); the
    first best cut wins. Returns per label whether it has a cut, the greatest value left of it, the
    least right of it, and its gain."""
    n_bins, n_lab, n_cls = counts.shape
    total = np.zeros((n_lab, n_cls), np.int64)
    for b in range(n_bins):
        for li in range(n_lab):
            for c in range(n_cls):
                total[li, c] += counts[b, li, c]
    s_all = np.zeros(n_lab, np.float64)
    for li in range(n_lab):
        s = 0.0
        for c in range(n_cls):
            s += table[total[li, c]]
        s_all[li] = s
    left = np.zeros((n_lab, n_cls), np.int64)
    found = np.zeros(n_lab, np.bool_)
    g_best = np.full(n_lab, -np.inf)
    left_hi = np.zeros(n_lab, v.dtype)
    right_lo = np.zeros(n_lab, v.dtype)
    started = False
    prev_hi = v.dtype.type(0) if len(v) else lo[0]
    p = 0
    for b in range(n_bins):
        nb = 0
        for c in range(n_cls):
            nb += counts[b, 0, c]
        if nb == 0:
            continue
        q = p
        while True:
            if keep[b]:
                if q >= p + nb:
                    break
                item_lo = v[q]
                end = q
                while end < p + nb and v[end] == item_lo:
                    end += 1
                item_hi = item_lo
            else:
                item_lo = lo[b]
                item_hi = hi[b]
            if started:  # the cut between the items so far and this one
                for li in range(n_lab):
                    n_l = 0
                    for c in range(n_cls):
                        n_l += left[li, c]
                    s_l = 0.0
                    for c in range(n_cls):
                        s_l += table[left[li, c]]
                    s_r = 0.0
                    for c in range(n_cls):
                        s_r += table[total[li, c] - left[li, c]]
                    g = (table[e] - s_all[li] - (table[e - n_l] - s_r) - (table[n_l] - s_l)) / e
                    if not found[li] or g > g_best[li]:
                        found[li] = True
                        g_best[li] = g
                        left_hi[li] = prev_hi
                        right_lo[li] = item_lo
            started = True
            prev_hi = item_hi
            if keep[b]:
                for i in range(q, end):
                    for li in range(n_lab):
                        left[li, lab[i, li]] += 1
                q = end
            else:
                for li in range(n_lab):
                    for c in range(n_cls):
                        left[li, c] += counts[b, li, c]
                break
        if keep[b]:
            p += nb
    return found, left_hi, right_lo, g_best


def sweep(r: BinCounts, keep: np.ndarray, vals: list[tuple], n_classes: int) -> np.ndarray:
    """(L, k) thresholds: the best cut of every column for every label, as `best_splits` gives it."""
    k, n_bins, n_lab, _ = r.counts.shape
    dtype = r.lo.dtype
    out = np.zeros((n_lab, k), dtype)
    e = int(r.counts[0, :, 0].sum()) if k else 0
    if e < 2:
        return out
    table = xlogx_table(e)
    for c in range(k):
        v, lab = vals[c]
        order = np.argsort(v)  # numpy's vectorised sort; equal values need no particular order
        v, lab = np.ascontiguousarray(v[order]), np.ascontiguousarray(lab[order])
        found, left_hi, right_lo, g = _sweep_column(np.ascontiguousarray(v, dtype=dtype), np.ascontiguousarray(lab),
                                                    np.ascontiguousarray(r.counts[c]), keep[c], r.lo[c], r.hi[c],
                                                    table, e)
        ok = found & (g > GAIN_EPS)
        out[ok, c] = midpoint(left_hi[ok], right_lo[ok])
    return out
