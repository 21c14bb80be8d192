"""Information-gain splits of columns spread over shards, equal bit for bit to `search.splits.best_splits`.

The exact best cut of a column needs, at every gap between two consecutive distinct values, the
class counts on its left. Sending every value is as costly as gathering the data, so the split
is made in three additive passes (docs/scale.md):

1. **sample**: each shard gives a few evenly spaced values per column; their quantiles are the
   column's bin edges (any edges give the same result: they only decide what the passes cost);
2. **bins**: each shard counts its examples per (column, bin, label, class) and keeps each bin's
   least and greatest value; the parts are summed. Every gap between two non-empty bins is a
   candidate cut whose gain is now known exactly, so their best is a lower bound of the column's
   best gain. A cut inside bin b has left counts L = L_before(b) + s, 0 <= s <= n(b) class by
   class, and gain (E H(T) - h(L)) / E with h(L) = g(L) + g(T - L), g(X) = |X| log |X| -
   sum_c X_c log X_c. Two lower bounds of h over that box bound the gain from above (`select_bins`):
   g grows with every X_c, so h >= g(L_before) + g(T - L_through); and, for any lambda,
   h = [phi(S) + phi(E - S) - lambda S] + sum_c [-psi_c(s_c) + lambda s_c] + lambda |L_before| with
   S = |L| (phi = psi = x log x, psi_c the class's two terms), where the first bracket is convex in S
   and each class's term concave in s_c: minimised apart (S free, each s_c at 0 or n_c), they bound h
   from below -- with lambda the slope of phi(S) + phi(E - S) at the bin's middle, within a few
   nats of h's least value when the bin is narrow. A bin whose bound is below the best gap's gain
   holds no best cut. The bins are many (`bin_count`: about 200 examples each, 256 to 4096) so that
   the bound leaves few of them: on a layer of weakly informative inputs (200,000 examples, 10
   classes) 1,024 bins leave about 12 % of the values for pass 3, 256 bins 71 %;
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

MIN_BINS, MAX_BINS = 256, 4096  # bins per column (fewer when the sample has fewer distinct values)
EXAMPLES_PER_BIN = 200  # bin_count's aim: narrower bins leave fewer values for pass 3, more counts for pass 2
SAMPLES_PER_BIN = 8  # sampled values per bin, over all shards (more even bins: fewer values left for pass 3)
BOUND_MARGIN = 1e-9  # float rounding of a gain is ~1e-14; a bin within this of the best is kept


def bin_count(n_examples: int, n_shards: int = 1, n_labels: int = 1, n_classes: int = 2, value_bytes: int = 4) -> int:
    """Bins per column for a split over `n_examples` examples on `n_shards` shards: about EXAMPLES_PER_BIN
    examples a bin, but no more bins than keep a shard's counts (n_labels x n_classes x 8 bytes a bin)
    within the bytes of the values they stand for (a value and its labels, one byte a label) -- with many
    classes (a 1,000-class head) wider bins cost less to move than the values pass 3 would send."""
    per_shard = n_examples // max(1, n_shards)
    cap = per_shard * (value_bytes + n_labels) // (8 * n_labels * n_classes)
    return int(min(MAX_BINS, max(MIN_BINS, min(n_examples // EXAMPLES_PER_BIN, cap))))


def sample_size(n_bins: int, n_shards: int) -> int:
    """Values per column each of `n_shards` shards samples for `n_bins` bins."""
    return max(1, -(-SAMPLES_PER_BIN * n_bins // max(1, n_shards)))


@dataclass(frozen=True, slots=True)
class BinCounts:
    """Pass 2, summed over shards: counts (k, B, L, C) (int32 for one shard, where they fit), and each bin's
    least and greatest value (k, B) (+inf / -inf where empty)."""

    counts: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def sample_part(values: np.ndarray, size: int) -> np.ndarray:
    """(k, m) values of evenly spaced rows of `values` (E, k)."""
    e = values.shape[0]
    if e == 0:
        return np.zeros((values.shape[1], 0), values.dtype)
    rows = np.unique(np.linspace(0, e - 1, min(e, size)).astype(np.int64))
    return np.ascontiguousarray(np.asarray(values[rows]).T)


def edges_from_samples(samples: list[np.ndarray], bins: int = MIN_BINS) -> np.ndarray:
    """(k, B - 1) bin edges per column, in the values' dtype, padded with +inf: the sample's quantiles, and
    a bin of its own for each value sampled twice or more (about a bin's share of the examples or more,
    such as a ReLU's zeros): bounded by the value and the next one up, it holds that value alone, so no
    cut lies inside it and pass 3 sends none of it."""
    s = np.concatenate(samples, axis=1)
    k = s.shape[0]
    out = np.full((k, bins - 1), np.inf, dtype=s.dtype)
    for c in range(k):
        u, n = np.unique(s[c], return_counts=True)
        if not len(u):
            continue
        least = u[0]
        many = (n >= 2) & np.isfinite(u)
        heavy = u[many][np.argsort(-n[many], kind="stable")][: (bins - 1) // 2]  # the heaviest first
        own = np.unique(np.concatenate([heavy, np.nextafter(heavy, np.inf).astype(u.dtype)]))
        room = max(0, bins - 1 - len(own))
        if len(u) > room:
            u = np.unique(u[np.linspace(0, len(u) - 1, room).astype(np.int64)]) if room else u[:0]
        edges = np.unique(np.concatenate([own, u]))
        edges = edges[edges > least]  # the least value opens the first bin (and a NaN is after every edge)
        out[c, : len(edges)] = edges[: bins - 1]
    return out


GRID = 4096  # least cells of the per-column lookup grid that starts pass 2's bin search
CELLS_PER_EDGE = 16  # and at least this many per edge: most cells then hold no edge (no comparison to mispredict)


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
def _transpose(values, out):  # pragma: no cover - compiled
    """out (k, E) = values (E, k).T, a tile of rows at a time (numpy's copy of a wide matrix's column block
    reads it line by line, about 10 ns a value)."""
    e, k = values.shape
    tile = 64
    for j0 in range(0, e, tile):
        j1 = min(e, j0 + tile)
        for c in range(k):
            for j in range(j0, j1):
                out[c, j] = values[j, c]


@njit(cache=True, nogil=True)
def _bin_pass(vt, labels, edges, counts, lo, hi, bins):  # pragma: no cover - compiled
    """Pass 2's counts, least and greatest values, and each value's bin (kept for pass 3), column after
    column of `vt` (k, E) (a column's grid, edges and counts stay in cache): bin b holds edges[b - 1] <= v
    < edges[b] (searchsorted, side right). lo and hi follow np.minimum / np.maximum: an equal value
    replaces the kept one (so -0.0 and 0.0 end as those ufuncs leave them).

    The search starts from a grid: with cell() monotone, an edge in a lower cell than v is below v and one in
    a higher cell above it, so v's bin lies between first[cell(v)] and first[cell(v) + 1] (first[g]: the
    edges in cells below g) -- most often one or no comparison instead of ten."""
    k, e = vt.shape
    n_edges = edges.shape[1]
    n_lab = labels.shape[1]
    grid = max(GRID, CELLS_PER_EDGE * n_edges)
    first = np.empty(grid + 1, np.int32)
    for c in range(k):
        lo_fin = 0  # edges at -inf lie below every finite value
        while lo_fin < n_edges and edges[c, lo_fin] == -np.inf:
            lo_fin += 1
        hi_fin = lo_fin
        while hi_fin < n_edges and np.isfinite(edges[c, hi_fin]):
            hi_fin += 1
        base = 0.0
        scale = 0.0
        if hi_fin > lo_fin:
            base = np.float64(edges[c, lo_fin])
            span = np.float64(edges[c, hi_fin - 1]) - base
            sc = grid / span if span > 0 else 0.0
            scale = sc if np.isfinite(sc) else 0.0
        first[:] = 0
        first[0] = lo_fin
        for i in range(lo_fin, hi_fin):  # edges are sorted, so their cells are too
            first[_cell(edges[c, i], base, scale, grid) + 1] += 1
        for g in range(grid):
            first[g + 1] += first[g]
        for j in range(e):
            v = vt[c, j]
            if np.isfinite(v):
                g = _cell(v, base, scale, grid)
                b = first[g]
                top = first[g + 1]
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
            bins[c, j] = b
            for li in range(n_lab):
                counts[c, b, li, labels[j, li]] += 1
            if lo[c, b] == lo[c, b] and not (lo[c, b] < v):
                lo[c, b] = v
            if hi[c, b] == hi[c, b] and not (hi[c, b] > v):
                hi[c, b] = v


@dataclass(frozen=True, slots=True)
class Binned:
    """A shard's values column by column (k, E) and the bin of each (k, E), from pass 2 for pass 3."""

    values: np.ndarray
    bins: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + self.bins.nbytes


def bin_part_and_bins(values: np.ndarray, labels: np.ndarray, n_classes: int,
                      edges: np.ndarray) -> tuple[BinCounts, Binned]:
    """Pass 2 on one shard: `values` (E, k), `labels` (E, L) integer classes below `n_classes`; and the values
    by column with every value's bin (uint8 for up to 256 bins, uint16 for up to 65,536), which pass 3
    reads again."""
    values = np.asarray(values)
    e, k = values.shape
    n_bins = edges.shape[1] + 1
    vt = np.empty((k, e), values.dtype)
    _transpose(values, vt)
    counts = np.zeros((k, n_bins, labels.shape[1], n_classes), np.int32 if e < 2**31 else np.int64)
    lo = np.full((k, n_bins), np.inf, values.dtype)
    hi = np.full((k, n_bins), -np.inf, values.dtype)
    bins = np.empty((k, e), np.uint8 if n_bins <= 256 else np.uint16 if n_bins <= 65536 else np.int32)
    _bin_pass(vt, np.ascontiguousarray(labels, dtype=np.int64), np.ascontiguousarray(edges, dtype=values.dtype),
              counts, lo, hi, bins)
    return BinCounts(counts, lo, hi), Binned(vt, bins)


def merge_bins(a: BinCounts, b: BinCounts) -> BinCounts:
    """The counts of two disjoint example sets (a shard's are int32 where they fit: half the bytes to move;
    a sum is int64)."""
    return BinCounts(np.add(a.counts, b.counts, dtype=np.int64), np.minimum(a.lo, b.lo), np.maximum(a.hi, b.hi))


@njit(cache=True, nogil=True)
def _select_column(counts, inner, table, e, margin, keep):  # pragma: no cover - compiled
    """`select_bins` of one column: counts (B, L, C), inner (B,) -> keep (B,) (or-ed over the labels)."""
    n_bins, n_lab, n_cls = counts.shape
    last = -1  # the last non-empty bin: no cut after it
    for b in range(n_bins):
        for c in range(n_cls):
            if counts[b, 0, c] > 0:
                last = b
    total = np.zeros(n_cls, np.int64)
    before = np.zeros(n_cls, np.int64)
    bound = np.empty(n_bins, np.float64)
    for li in range(n_lab):
        s_all = 0.0
        for c in range(n_cls):
            total[c] = 0
            for b in range(n_bins):
                total[c] += counts[b, li, c]
            s_all += table[total[c]]
        for c in range(n_cls):
            before[c] = 0
        best = -np.inf
        for b in range(n_bins):
            nb = 0
            lo = 0
            for c in range(n_cls):
                nb += counts[b, li, c]
                lo += before[c]
            # the class sums of g(before), g(through) and g(total - through)
            s_b = 0.0
            s_t = 0.0
            s_rt = 0.0
            for c in range(n_cls):
                t = before[c] + counts[b, li, c]
                s_b += table[before[c]]
                s_t += table[t]
                s_rt += table[total[c] - t]
            g_t = table[lo + nb] - s_t
            g_rt = table[e - lo - nb] - s_rt
            if nb > 0 and b < last:  # the cut after this bin
                gain = (table[e] - s_all - g_rt - g_t) / e
                if gain > best:
                    best = gain
            if inner[b]:
                h_mono = table[lo] - s_b + g_rt
                mid_real = lo + nb / 2.0
                lam = np.log(max(mid_real, 0.5) / max(e - mid_real, 0.5))
                mid = lo + nb // 2
                up = lo + (nb + 1) // 2
                a = min(table[mid] + table[e - mid] - lam * mid, table[up] + table[e - up] - lam * up)
                f = 0.0
                for c in range(n_cls):
                    t = before[c] + counts[b, li, c]
                    f0 = -(table[before[c]] + table[total[c] - before[c]])
                    f1 = -(table[t] + table[total[c] - t]) + lam * counts[b, li, c]
                    f += min(f0, f1)
                h_lag = a + f + lam * lo
                bound[b] = (table[e] - s_all - max(h_mono, h_lag)) / e
            for c in range(n_cls):
                before[c] += counts[b, li, c]
        for b in range(n_bins):
            if inner[b] and bound[b] >= best - margin:
                keep[b] = True


def select_bins(r: BinCounts) -> np.ndarray:
    """(k, B) bins whose values pass 3 must send: those that may hold a best cut for some label (the bounds
    of the module's docstring, the tighter of the two per bin)."""
    k = r.counts.shape[0]
    keep = np.zeros(r.lo.shape, bool)
    e = int(r.counts[0, :, 0].sum()) if k else 0
    if e < 2:
        return keep
    table = xlogx_table(e)
    inner = r.lo < r.hi  # bins with two or more distinct values: cuts inside them
    counts = r.counts.astype(np.int64, copy=False)
    for c in np.flatnonzero(inner.any(1)):
        _select_column(counts[c], inner[c], table, e, BOUND_MARGIN, keep[c])
    return keep


@njit(cache=True, nogil=True)
def _kept(vt, labels, bins, keep):  # pragma: no cover - compiled
    """Every column's values in its kept bins, and their labels, in row order, one column after another in
    flat arrays (column c: offsets[c] .. offsets[c + 1]), from the columns `vt` (k, E) and their bins."""
    k, e = vt.shape
    n_lab = labels.shape[1]
    offsets = np.zeros(k + 1, np.int64)
    for c in range(k):
        n = 0
        for j in range(e):
            if keep[c, bins[c, j]]:
                n += 1
        offsets[c + 1] = offsets[c] + n
    vals = np.empty(offsets[k], vt.dtype)
    labs = np.empty((offsets[k], n_lab), labels.dtype)
    for c in range(k):
        p = offsets[c]
        for j in range(e):
            if keep[c, bins[c, j]]:
                vals[p] = vt[c, j]
                for li in range(n_lab):
                    labs[p, li] = labels[j, li]
                p += 1
    return offsets, vals, labs


def values_part(values: np.ndarray, labels: np.ndarray, edges: np.ndarray, keep: np.ndarray,
                binned: Binned | None = None) -> list[tuple]:
    """Pass 3 on one shard: per column, its values in the kept bins and their labels (`binned`: pass 2's
    columns and bins, else found again)."""
    if binned is None:  # pass 2 ran elsewhere (a task moved to another worker): find the bins again, compiled
        binned = bin_part_and_bins(values, labels, int(labels.max()) + 1 if labels.size else 1, edges)[1]
    if labels.size and labels.max() < 128:  # labels are classes: the smallest integers that hold them travel
        labels = labels.astype(np.int8)
    elif labels.size and labels.max() < 32768:
        labels = labels.astype(np.int16)
    offsets, vals, labs = _kept(binned.values, np.ascontiguousarray(labels), binned.bins, np.ascontiguousarray(keep))
    return [(vals[offsets[c]:offsets[c + 1]], labs[offsets[c]:offsets[c + 1]]) for c in range(len(offsets) - 1)]


def merge_values(a: list[tuple], b: list[tuple]) -> list[tuple]:
    return [(np.concatenate([va, vb]), np.concatenate([la, lb])) for (va, la), (vb, lb) in zip(a, b)]


@njit(cache=True, nogil=True)
def _sweep_column(v, lab, counts, keep, lo, hi, table, e):  # pragma: no cover - compiled
    """Best cut of one column for every label. The items in value order are the bins in index order
    (disjoint value ranges): a kept bin read as its distinct values (from `v`, its values from every
    shard in ascending order, with their labels `lab`), any other non-empty bin whole. Each cut's gain
    is `best_splits`' expression term for term from the integer counts left of it (so bit for bit); the
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
                                                    np.ascontiguousarray(r.counts[c], dtype=np.int64), keep[c],
                                                    r.lo[c], r.hi[c],
                                                    table, e)
        ok = found & (g > GAIN_EPS)
        out[ok, c] = midpoint(left_hi[ok], right_lo[ok])
    return out
