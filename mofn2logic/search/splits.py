"""Information-gain splits (docs/method.md, section 2): one sort and one sweep per column.

A split of a real variable x is a threshold t; the unit is on iff x >= t. The best cut maximises
IG = H(y) - P(x>=t) H(y|x>=t) - P(x<t) H(y|x<t) (natural log). The threshold is the midpoint
between the two adjacent distinct values of the best cut, in the data's own dtype (so every
engine that compares in that dtype or wider sees the same partition). Ties in gain go to the
lowest cut; when no cut has positive gain the threshold is 0.0.
"""

from __future__ import annotations

import numpy as np

GAIN_EPS = 1e-12  # gains at or below this are "no positive gain" (rounding noise of an exact 0)


def xlogx_table(n: int) -> np.ndarray:
    """c * log(c) for c = 0..n (0 log 0 = 0)."""
    c = np.arange(n + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 0, c * np.log(np.where(c > 0, c, 1.0)), 0.0)


def split_gain(left: np.ndarray, right: np.ndarray, table: np.ndarray) -> np.ndarray:
    """IG of a cut from integer class counts (..., C) on each side.

    IG = H(y) - (n_R/E) H_R - (n_L/E) H_L, with n H = n log n - sum_c c log c, so that every
    term is a table lookup. Classes are accumulated in index order: one cut and a vectorised
    sweep give bit-identical gains, and so equal gains tie exactly.
    """
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    n_l = left.sum(-1)
    n_r = right.sum(-1)
    e = n_l + n_r
    s_l = np.zeros(left.shape[:-1], np.float64)
    s_r = np.zeros(left.shape[:-1], np.float64)
    s_all = np.zeros(left.shape[:-1], np.float64)
    for c in range(left.shape[-1]):
        s_l += table[left[..., c]]
        s_r += table[right[..., c]]
        s_all += table[left[..., c] + right[..., c]]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (table[e] - s_all - (table[n_r] - s_r) - (table[n_l] - s_l)) / e


def midpoint(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A threshold t with lo < t <= hi, representable in the inputs' dtype."""
    mid = lo + (hi - lo) / 2
    return np.where(mid > lo, mid, hi).astype(lo.dtype)


def best_splits(x: np.ndarray, y: np.ndarray, n_classes: int | None = None,
                order: np.ndarray | None = None, max_cells: int = 1 << 25) -> tuple[np.ndarray, np.ndarray]:
    """Best IG split of every column of `x` (E, k) for integer labels `y` (E,) (docs/method.md, section 2):
    the lowest of the best cuts, at the midpoint; 0.0 where no cut has positive gain.

    Returns (thresholds (k,) in x's dtype, gains (k,) float64). `order` may pass a precomputed
    ``argsort(x, axis=0, kind="stable")`` so several label vectors share one sort.
    """
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    e, k = x.shape
    y = np.asarray(y, dtype=np.int64)
    classes = int(n_classes if n_classes is not None else (y.max() + 1 if e else 1))
    thresholds = np.zeros(k, dtype=x.dtype)
    gains = np.zeros(k, dtype=np.float64)
    if e < 2:
        return thresholds, gains
    total = np.bincount(y, minlength=classes)
    table = xlogx_table(e)

    s_all = np.float64(0.0)
    for c in range(classes):
        s_all += table[total[c]]
    step = max(1, max_cells // max(1, e * classes))
    for start in range(0, k, step):
        cols = slice(start, min(k, start + step))
        idx = order[:, cols] if order is not None else np.argsort(x[:, cols], axis=0, kind="stable")
        xs = np.take_along_axis(x[:, cols], idx, axis=0)
        ys = y[idx]
        # split_gain() streamed over classes, without materialising (E, k, C) counts.
        s_l = np.zeros((e - 1, xs.shape[1]), np.float64)
        s_r = np.zeros_like(s_l)
        for c in range(classes):
            lc = np.cumsum(ys == c, axis=0, dtype=np.int64)[:-1]
            s_l += table[lc]
            s_r += table[total[c] - lc]
        n_l = np.arange(1, e)[:, None]
        gain = (table[e] - s_all - (table[e - n_l] - s_r) - (table[n_l] - s_l)) / e
        gain = np.where(xs[1:] > xs[:-1], gain, -np.inf)
        best = np.argmax(gain, axis=0)  # first maximum: the lowest cut
        g = gain[best, np.arange(gain.shape[1])]
        ok = g > GAIN_EPS
        cols_idx = np.arange(gain.shape[1])
        t = midpoint(xs[best, cols_idx], xs[best + 1, cols_idx])
        thresholds[cols] = np.where(ok, t, 0).astype(x.dtype)
        gains[cols] = np.where(ok, g, 0.0)
    return thresholds, gains


def binary_splits_per_target(x: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(U, n) thresholds: every column of `x` (E, n) split against every binary target column of
    `targets` (E, U) -- paper mode's per-(input, target) splits (docs/method.md, section 2). One sort
    serves all targets and the sweep is one compiled pass (identical to `best_splits` per target)."""
    from mofn2logic.search.kernels import binary_split_sweep

    order = np.argsort(x, axis=0, kind="stable")
    e, n = x.shape
    xt = np.ascontiguousarray(x.T)
    ordt = np.ascontiguousarray(order.T)
    pos, _ = binary_split_sweep(xt, ordt, np.ascontiguousarray(targets.T, dtype=np.uint8), xlogx_table(e), GAIN_EPS)
    ok = pos >= 0
    p = np.where(ok, pos, 0)
    rows = np.arange(n)[None, :]
    lo = xt[rows, ordt[rows, p]]
    hi = xt[rows, ordt[rows, np.minimum(p + 1, e - 1)]]
    return np.where(ok, midpoint(lo, hi), 0).astype(x.dtype)


def literal_gain(lits_t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """IG of boolean rows `lits_t` (k, E) (literal-major) with respect to binary `y` (E,): the key of the
    gain ordering and the pool of the small-N search (docs/method.md, section 3)."""
    y = np.asarray(y, dtype=bool)
    return literal_gain_from_counts(lits_t[:, y].sum(1), lits_t[:, ~y].sum(1), int(y.sum()), int((~y).sum()))


def literal_gain_from_counts(on_pos: np.ndarray, on_neg: np.ndarray, pos: int, neg: int) -> np.ndarray:
    """`literal_gain` from each literal's true examples among the `pos` positive and `neg` negative ones
    (additive over any split of the examples)."""
    on = np.stack([on_neg, on_pos], -1)
    off = np.stack([neg - on_neg, pos - on_pos], -1)
    return np.nan_to_num(split_gain(on, off, xlogx_table(pos + neg)))
