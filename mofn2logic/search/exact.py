"""Threshold-aware exact search for small rules, and local improvement of larger ones (ours;
docs/method.md, section 3.10).

A candidate literal is (input, threshold, polarity). Where the mode leaves thresholds free (paper
mode), each input offers its own split and its quantile cuts (`quantile_cuts`); in chain mode
only the layer's one threshold per input, so that the rules still compose and compile. The
polarity is the paper's (the weight's sign) for the input's own split, and otherwise the one
whose true side holds the larger share of positive targets. The `pool` literals of highest
information gain (ties in (input, threshold, polarity) order) and the paper's first `small_n`
literals by |w| are scored exactly: every "M of S" with |S| <= small_n, on bit-packed literal
rows (uint64 words over the examples) with popcounts, by the backend (numba, torch or numpy; all
return the same integer counts). A deterministic share of the examples (`validation`) is held
out of that scoring: of the `shortlist` best subsets of each (N, M) on the rest, the one with the
fewest errors on the held-out share is kept, so a threshold that fits noise loses to one that
generalises. Every rule's error is then counted on all the examples, as for any other candidate.

`improve` starts from a rule and makes the best of these moves while the loss falls: another M,
drop a literal, add one, swap one for a literal outside the rule (which also moves a threshold
to another cut of the same input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mofn2logic.search.complexity import complexity
from mofn2logic.search.splits import midpoint, split_gain, xlogx_table

DEFAULT_CUTS = 16
DEFAULT_POOL = 64
DEFAULT_VALIDATION = 0.2
DEFAULT_SHORTLIST = 8
DEFAULT_IMPROVE_STEPS = 32
DEFAULT_IMPROVE_POOL = 128
DEFAULT_IMPROVE_MAX_N = 64
MAX_CUTS = 254  # bins are stored as uint8


@dataclass(frozen=True, slots=True)
class ExactOptions:
    """Options of the exact small-N search and the local improvement (docs/method.md, section 3.10)."""

    small_n: int = 3
    pool: int = DEFAULT_POOL
    cuts: int = DEFAULT_CUTS  # quantile cuts per input where thresholds are free (0: the input's own split only)
    validation: float = DEFAULT_VALIDATION  # share of the examples held out to choose among near-equal subsets
    shortlist: int = DEFAULT_SHORTLIST  # subsets per (N, M) compared on the held-out share
    improve_steps: int = DEFAULT_IMPROVE_STEPS  # moves of the local improvement (0: none)
    improve_pool: int = DEFAULT_IMPROVE_POOL  # literals outside the rule that a move may bring in
    improve_max_n: int = DEFAULT_IMPROVE_MAX_N  # rules longer than this are not improved (cost N * pool * E)


# --------------------------------------------------------------------------- cuts and literals

def quantile_cuts(values: np.ndarray, cuts: int) -> np.ndarray:
    """Up to `cuts` thresholds for one input, ascending and distinct, in the values' dtype: for
    k = 1..cuts, with r = ceil(k E / (cuts + 1)), the midpoint between the r-th smallest value and the
    next larger distinct value (no cut where there is none). Deterministic; `x >= t` splits the
    examples exactly between two distinct values, as a split of section 2.2 does."""
    s = np.sort(np.asarray(values), kind="stable")
    e = len(s)
    if e < 2 or cuts < 1:
        return np.zeros(0, s.dtype)
    r = -(-np.arange(1, cuts + 1) * e // (cuts + 1))  # ceil
    lo = s[np.clip(r, 1, e) - 1]
    hi_at = np.searchsorted(s, lo, side="right")
    ok = hi_at < e
    t = midpoint(lo[ok], s[hi_at[ok]])
    return np.unique(t)


def layer_cuts(x: np.ndarray, cuts: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Per input column of `x` (E, n): its quantile cuts, and each example's bin (how many cuts are
    at or below its value: x >= cut k iff bin > k), as (n, E) uint8."""
    n = x.shape[1]
    per = [quantile_cuts(x[:, i], min(cuts, MAX_CUTS)) for i in range(n)]
    bins = np.empty((n, x.shape[0]), np.uint8)
    for i in range(n):
        bins[i] = np.searchsorted(per[i], x[:, i], side="right")
    return per, bins


def validation_mask(e: int, share: float) -> np.ndarray:
    """A deterministic, evenly spread share of `e` examples: example i is held out iff
    floor((i + 1) * share) > floor(i * share). Empty when fewer than 2 would be held out or fewer
    than 2 would remain."""
    if share <= 0 or e < 4:
        return np.zeros(e, bool)
    i = np.arange(e)
    mask = np.floor((i + 1) * share) > np.floor(i * share)
    if mask.sum() < 2 or (~mask).sum() < 2:
        return np.zeros(e, bool)
    return mask


@dataclass(frozen=True, slots=True)
class Literals:
    """A unit's candidate literals, in (input, threshold, polarity) order, positive first; `paper[i]` is
    the index of the paper's literal of input i (its own split, the weight's sign), -1 for w_i = 0."""

    inputs: np.ndarray  # (L,) literal index (input unit, or receptive-field index of a convolution)
    thresholds: np.ndarray  # (L,) in the inputs' dtype
    positive: np.ndarray  # (L,) bool
    gains: np.ndarray  # (L,) information gain against the target, on the fit examples
    paper: np.ndarray  # (n,) int64

    def truth(self, xt: np.ndarray | None, idx: np.ndarray) -> np.ndarray:
        """Truth rows (len(idx), E) of the literals `idx` on examples `xt` (n, E)."""
        assert xt is not None
        return (xt[self.inputs[idx]] >= self.thresholds[idx][:, None]) == self.positive[idx][:, None]


def unit_literals(xt: np.ndarray, base_t: np.ndarray, thresholds: np.ndarray, w: np.ndarray, y: np.ndarray,
                  fit: np.ndarray, cut_values: list[np.ndarray] | None, bins: np.ndarray | None) -> Literals:
    """Candidate literals of one unit: for every input with w != 0, its own split with the weight's sign
    (the paper's literal) and, where the other side holds the larger share of positive targets, with
    the other sign too; with free thresholds, each quantile cut with the polarity whose true side has
    the larger share of positive targets (positive on equal shares). Gains are counted on the `fit`
    examples."""
    from mofn2logic.search.kernels import bin_counts, row_counts

    nz = np.flatnonzero(w != 0)
    ge = row_counts(base_t, nz, y, fit)  # (k, 2): examples with x >= t, [target false, target true]
    counts = None
    if cut_values is not None and bins is not None and len(nz):
        n_bins = int(max((len(c) for c in cut_values), default=0)) + 1
        counts = bin_counts(bins[nz], y, fit, n_bins)  # (k, bins, 2)
    return literals_from_counts(thresholds, w, ge, counts, int(fit.sum()), int(y[fit].sum()), cut_values)


def literals_from_counts(thresholds: np.ndarray, w: np.ndarray, ge: np.ndarray, counts: np.ndarray | None, n_f: int,
                         n_pos_f: int, cut_values: list[np.ndarray] | None) -> Literals:
    """`unit_literals` from what it counts on the fit examples (additive over any split of the examples, so
    shards can count their parts): `ge` (k, 2), the inputs with w != 0 at x >= t by target [false, true];
    `counts` (k, bins, 2), those inputs' examples per quantile-cut bin by target (None: no free thresholds);
    `n_f` fit examples, `n_pos_f` of them positive."""
    nz = np.flatnonzero(w != 0)
    table = xlogx_table(n_f)
    # the paper's literals: base_t rows are x >= t for the unit's own thresholds; counts over the fit examples
    pos_paper = w[nz] > 0
    total = np.array([n_f - n_pos_f, n_pos_f], np.int64)
    on = np.where(pos_paper[:, None], ge, total - ge)
    paper_gain = np.nan_to_num(split_gain(on, total - on, table))  # = literal_gain of the rows, bit for bit
    ins = [nz]
    ths = [thresholds[nz]]
    pol = [pos_paper]
    gns = [paper_gain]
    # the other polarity at the input's own split, where its true side holds the larger share of positives
    on_pos = on[:, 1]
    n_on = on.sum(1)
    flip = on_pos * (n_f - n_on) < (n_pos_f - on_pos) * n_on
    ins.append(nz[flip])
    ths.append(thresholds[nz[flip]])
    pol.append(~pos_paper[flip])
    gns.append(paper_gain[flip])
    if cut_values is not None and counts is not None and len(nz):
        n_bins = counts.shape[1]
        # examples with x >= cut j: bins j + 1 and above
        above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1][:, 1:]  # (k, bins - 1, 2)
        total = counts.sum(1)  # (k, 2)
        k_idx, j_idx = np.nonzero(np.arange(n_bins - 1)[None, :] < np.array([len(cut_values[i]) for i in nz])[:, None])
        on = above[k_idx, j_idx]  # (L, 2): [false, true] targets among x >= t
        off = total[k_idx] - on
        n_on = on.sum(1)
        n_off = off.sum(1)
        # positive iff P(y | x >= t) >= P(y | x < t), compared exactly in integers
        positive = on[:, 1] * n_off >= off[:, 1] * n_on
        lit_on = np.where(positive[:, None], on, off)
        lit_off = np.where(positive[:, None], off, on)
        gain = np.nan_to_num(split_gain(lit_on, lit_off, table))
        ins.append(nz[k_idx])
        ths.append(np.concatenate([cut_values[i] for i in nz]).astype(thresholds.dtype))  # (k, j) row-major, as k_idx, j_idx
        pol.append(positive)
        gns.append(gain)
    inputs = np.concatenate(ins)
    thr = np.concatenate(ths).astype(thresholds.dtype)
    positive = np.concatenate(pol)
    gains = np.concatenate(gns)
    # one entry per (input, threshold, polarity): the paper's literal first where a cut repeats it
    order = np.lexsort((np.arange(len(inputs)), ~positive, thr, inputs))
    inputs, thr, positive, gains = inputs[order], thr[order], positive[order], gains[order]
    keep = np.ones(len(inputs), bool)
    keep[1:] = (inputs[1:] != inputs[:-1]) | (thr[1:] != thr[:-1]) | (positive[1:] != positive[:-1])
    inputs, thr, positive, gains = inputs[keep], thr[keep], positive[keep], gains[keep]
    paper = np.full(len(w), -1, np.int64)
    hit = (positive == (w[inputs] > 0)) & (thr == thresholds[inputs])
    paper[inputs[hit]] = np.flatnonzero(hit)
    return Literals(inputs, thr, positive, gains, paper)


def top_literals(lits: Literals, count: int, forced: Sequence[int] = ()) -> np.ndarray:
    """The `count` literals of highest gain (ties in (input, threshold, polarity) order), in that order,
    then the `forced` ones not among them."""
    order = np.argsort(-lits.gains, kind="stable")[:count]
    extra = [int(f) for f in forced if f >= 0 and f not in set(order.tolist())]
    return np.concatenate([order, np.array(extra, np.int64)]).astype(np.int64)


# --------------------------------------------------------------------------- bits

def pack_bits(rows: np.ndarray) -> np.ndarray:
    """Boolean rows (P, E) as uint64 words (P, ceil(E / 64)); example e is bit e % 64 of word e // 64."""
    rows = np.asarray(rows, dtype=bool)
    if rows.ndim == 1:
        rows = rows[None]
    p, e = rows.shape
    w = max(1, -(-e // 64))
    padded = np.zeros((p, w * 64), bool)
    padded[:, :e] = rows
    return np.packbits(padded.reshape(p, w, 64), axis=-1, bitorder="little").view(np.uint64).reshape(p, w).copy()


def valid_bits(e: int) -> np.ndarray:
    return pack_bits(np.ones(e, bool))[0]


# --------------------------------------------------------------------------- the exact small-N search

@dataclass(frozen=True, slots=True)
class SmallRules:
    """The exact search's candidates in (N, M) order, N = 1..small_n, M = 1..N: per (N, M) one
    subset of the pool (indices into the unit's `Literals`) and its errors on all examples."""

    n: np.ndarray
    m: np.ndarray
    errors: np.ndarray
    subsets: list[np.ndarray]


def exact_small(lits: Literals, xt: np.ndarray | None, y: np.ndarray, pool: np.ndarray, small_n: int, fit: np.ndarray,
                shortlist: int, backend) -> SmallRules:
    """Every "M of S", S a subset of `pool` with |S| <= small_n, scored on the `fit` examples by the backend;
    per (N, M) the best `shortlist` subsets (ties: first in lexicographic pool order) are compared on the
    held-out examples (~fit; when there are none, the first is kept), and the one kept is counted on all."""
    truth = lits.truth(xt, pool)  # (P, E)
    held = ~fit
    fit_bits = pack_bits(truth[:, fit])
    y_fit = pack_bits(y[fit])[0]
    n_pos_fit = int(y[fit].sum())
    keep = shortlist if held.any() else 1
    ns, ms, errs, subs = [], [], [], []
    for big_n in range(1, min(small_n, len(pool)) + 1):
        e_top, i_top = backend.subset_topk(fit_bits, y_fit, n_pos_fit, big_n, keep)
        for m in range(1, big_n + 1):
            cand = i_top[m - 1][e_top[m - 1] < np.iinfo(np.int64).max]
            if held.any() and len(cand) > 1:
                counts = truth[cand][:, :, held].sum(1)  # (C, held)
                v_err = ((counts >= m) != y[held]).sum(1)
                pick = int(np.lexsort((np.arange(len(cand)), e_top[m - 1][: len(cand)], v_err))[0])
            else:
                pick = 0
            sub = cand[pick]
            fires = truth[sub].sum(0) >= m
            ns.append(big_n)
            ms.append(m)
            errs.append(int(np.sum(fires != y)))
            subs.append(pool[sub])
    return SmallRules(np.array(ns, np.int64), np.array(ms, np.int64), np.array(errs, np.int64), subs)


# --------------------------------------------------------------------------- local improvement

@dataclass(frozen=True, slots=True)
class Improved:
    literals: np.ndarray  # indices into the unit's `Literals`
    m: int
    errors: int
    moves: int


def improve(lits: Literals, xt: np.ndarray | None, y: np.ndarray, start: np.ndarray, m: int, beta: float, fan_in: int,
            opts: ExactOptions, where: str = "") -> Improved:
    """Local improvement of "m of start" (indices into `lits`) for loss error + beta * complexity on all
    examples: best improvement per step (`mofn2logic.search.kernels.local_search`), at most
    `opts.improve_steps` moves, over the rule's literals and the `opts.improve_pool` best others."""
    from mofn2logic.search.kernels import local_search

    start = np.asarray(start, np.int64)
    others = top_literals(lits, opts.improve_pool + len(start))
    q = np.concatenate([start, np.array([i for i in others.tolist() if i not in set(start.tolist())], np.int64)])
    q = q[: len(start) + opts.improve_pool]
    bits = pack_bits(lits.truth(xt, q))
    e = len(y)
    n_max = min(len(q), len(start) + opts.improve_steps, fan_in)
    nn, mm = np.meshgrid(np.arange(n_max + 2), np.arange(n_max + 3), indexing="ij")
    ok = (mm <= nn + 1) & (nn <= fan_in)
    cx = np.where(ok, complexity(np.minimum(nn, fan_in), np.minimum(mm, np.minimum(nn, fan_in) + 1), fan_in, where),
                  np.inf)
    rule, n, m_out, err, moves = local_search(bits, pack_bits(y)[0], valid_bits(e), int(y.sum()), e,
                                              np.arange(len(start), dtype=np.int64), int(m), float(beta), cx,
                                              int(opts.improve_steps))
    return Improved(q[rule[:n]], int(m_out), int(err), int(moves))
