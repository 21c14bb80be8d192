"""The M-of-N search for one unit (docs/method.md, section 3), exact and in one pass.

Literals are taken in a fixed order; c_N(e) counts the true literals among the first N on
example e. "M of the first N" fires iff c_N(e) >= M, so the histograms of c_N split by target
give the error of every (N, M) by cumulative sums: err(M) = #neg + sum_{c < M} (pos_c - neg_c).

Most (N, M) are then discarded exactly: M = 0 and M = N + 1 fire always / never with
complexity 0, so (0, 0) and (0, 1) stand for all of them, and M <= lo_N or M > hi_N + 1 repeat
an endpoint's error at no less complexity. Of the rest, a rule is kept only if its complexity
is below that of every rule with strictly less error (a staircase over the integer error
counts); the others are strictly dominated, so they are never on the Pareto front nor any
beta's optimum. What survives holds every beta's optimum with the reference's tie-break
(first in (N ascending, M ascending) order) and the whole front.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from mofn2logic.search.backends import PrefixHistogram
from mofn2logic.search.complexity import EXACT_LIMIT, _table, complexity, denominator


@dataclass(frozen=True, slots=True)
class Candidates:
    """The candidate rules worth scoring, in (N, M) order: N literals of the order, threshold M."""

    n: np.ndarray
    m: np.ndarray
    errors: np.ndarray  # misclassified examples (integers)
    error: np.ndarray  # errors / E
    complexity: np.ndarray


def candidates_from_histogram(h: PrefixHistogram, n_pos: int, n_neg: int, fan_in: int, where: str = "") -> Candidates:
    width = h.hi - h.lo + 1
    starts = h.offsets[:-1]
    size = int(h.offsets[-1])
    n_seg = len(width)
    e = n_pos + n_neg
    cs = np.cumsum(h.pos - h.neg)
    errors = cs - np.repeat(np.concatenate([[0], cs])[starts], width) + n_neg  # at M = lo_N + 1 .. hi_N + 1
    # Seeds: each N's least error (first such M). Any rule with M <= N has complexity at least
    # log(N) / den (M = 1 or M = N), so one whose error is above a seed's that is at most that
    # complex is strictly dominated -- found before computing its own complexity.
    seg_min = np.minimum.reduceat(errors, starts)
    at_min = np.where(errors == np.repeat(seg_min, width), np.arange(size), size)
    seed_pos = np.minimum.reduceat(at_min, starts)
    seed_seg = np.arange(n_seg, dtype=np.int64)
    seed_m = seed_pos - (starts - h.lo - 1)
    seed_cx = complexity(seed_seg, seed_m, fan_in, where)
    lowest = np.full(e + 1, np.inf)
    np.minimum.at(lowest, errors[seed_pos], seed_cx)
    lowest[n_neg] = 0.0  # (0, 0): always fires
    lowest[n_pos] = 0.0  # (0, 1): never fires
    below = np.concatenate([[np.inf], np.minimum.accumulate(lowest)[:-1]])  # least cx at strictly less error
    lf = np.log(np.maximum(np.arange(n_seg, dtype=np.float64), 1.0)) / denominator(fan_in, where)
    alive = np.flatnonzero(below[errors] > np.repeat(lf, width))
    seg = np.searchsorted(starts, alive, side="right") - 1
    m = alive - (starts - h.lo - 1)[seg]
    errs = errors[alive]
    cx = complexity(seg, m, fan_in, where)
    np.minimum.at(lowest, errs, cx)
    below = np.concatenate([[np.inf], np.minimum.accumulate(lowest)[:-1]])
    keep = np.flatnonzero(cx < below[errs])
    n_arr = np.concatenate([[0], seg[keep]])
    m_arr = np.concatenate([[0], m[keep]])
    errs = np.concatenate([[n_neg], errs[keep]])
    cxs = np.concatenate([[0.0], cx[keep]])
    return Candidates(n_arr, m_arr, errs, errs / e, cxs)


@dataclass(frozen=True, slots=True)
class SparseRows:
    """A literal-major boolean matrix (n, E) as `kernels.sparse_rows` stores it: per row the examples where
    it is true, or false where `complemented` (at most half of them)."""

    indptr: np.ndarray
    indices: np.ndarray
    complemented: np.ndarray  # (n,) uint8

    @staticmethod
    def of(rows: np.ndarray) -> SparseRows:
        from mofn2logic.search.kernels import sparse_rows

        rows = np.ascontiguousarray(rows)
        return SparseRows(*sparse_rows(rows.view(np.uint8) if rows.dtype == np.bool_ else rows.astype(np.uint8)))

    @staticmethod
    def at_least(x: np.ndarray, thresholds: np.ndarray) -> SparseRows:
        """`of(x.T >= thresholds[:, None])` for examples `x` (E, n), straight from x (no (n, E) copies)."""
        from mofn2logic.search.kernels import sparse_rows_ge

        return SparseRows(*sparse_rows_ge(np.ascontiguousarray(np.asarray(x)), np.ascontiguousarray(thresholds)))


_SCRATCH = threading.local()  # per thread: the errors buffer of the last unit, reused (fresh pages are slow)
_EMPTY = np.zeros(0, np.int32)


def prefix_candidates(rows: SparseRows, order: np.ndarray, negative: np.ndarray, y: np.ndarray, fan_in: int,
                      where: str = "") -> Candidates:
    """`candidates_from_histogram` of the literals `order` (rows of `rows`, negated where `negative[row]`)
    against the targets `y`, in one compiled pass that never forms the literal matrix or the histogram
    (`kernels.prefix_errors`, then `kernels.prune_candidates`): the same candidates, bit for bit. Releases
    the GIL, so units can run on threads."""
    from mofn2logic.search.kernels import prefix_errors, prune_candidates

    y = np.asarray(y, dtype=bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    flip = (np.asarray(negative, bool) ^ rows.complemented.astype(bool)).astype(np.uint8)
    up = np.where(y, -1, 1).astype(np.int64)
    buf = getattr(_SCRATCH, "errors", _EMPTY)
    errors, offsets, lo, seed_err, seed_m = prefix_errors(rows.indptr, rows.indices, flip, np.asarray(order, np.int64),
                                                          up, n_pos, n_neg, buf)
    _SCRATCH.errors = errors
    den = denominator(fan_in, where)
    lf = np.log(np.maximum(np.arange(len(order) + 1, dtype=np.float64), 1.0)) / den
    n, m, errs, cx = prune_candidates(errors, offsets, lo, seed_err, seed_m, n_pos, n_neg, _table(fan_in),
                                      fan_in <= EXACT_LIMIT, fan_in + 2, den, lf)
    return Candidates(n, m, errs, errs / (n_pos + n_neg), cx)


def choose(c: Candidates, betas: tuple[float, ...]) -> list[int]:
    """Index of the best candidate for each beta (loss = error + beta * complexity); equal losses go to
    the first in (N, M) order (docs/method.md, section 3)."""
    return [int(np.argmin(c.error + beta * c.complexity)) for beta in betas]


def pareto_front(c: Candidates) -> np.ndarray:
    """Indices of the non-dominated (complexity, error) candidates, by increasing complexity.
    Equal points keep the first in (N, M) order (docs/method.md, section 3)."""
    idx = np.lexsort((np.arange(len(c.n)), c.error, c.complexity))
    err = c.error[idx]
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], err[:-1]]))
    return idx[err < best_before]


def literal_matrix(x: np.ndarray, thresholds: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Truth values (E, n) of the literals: x >= t, or x < t for negative ones (docs/method.md, section 1)."""
    return (x >= thresholds) ^ negative


def weight_order(w: np.ndarray, key: np.ndarray | None = None) -> np.ndarray:
    """Inputs with w != 0 by `key` (default |w|) descending; ties by input index (docs/method.md, section 3)."""
    key = np.abs(w) if key is None else key
    nz = np.flatnonzero(w != 0)
    return nz[np.argsort(-key[nz], kind="stable")]
