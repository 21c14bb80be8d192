"""The prefix searches (orders weight, std and gain) of every unit of a layer at once, in torch (CPU or
CUDA): the same candidates, choices and fronts as `layer.search_unit`, bit for bit.

The layer's examples go to the device once, and so does its literal matrix (chain mode: x >= t for
the shared thresholds; paper mode: the values, compared with each unit's thresholds as its rows are
gathered). For a batch of units (as many as the memory budget holds), the literals in each unit's
order are counted by one cumulative sum; a first pass gives every (unit, N) its count range
[lo, hi], a second bins the counts by target into one flat histogram in `unit.candidates_from_histogram`'s
layout, unit after unit. The pruning of that function (seeds, the bound log(N) / den, the
staircase over error counts) runs on all the batch's segments with scatter-min and cumulative-min
operations, and so does the choice per beta (loss = error + beta * complexity, first in (N, M) order
on ties). One transfer brings the kept candidates and the choices back; the host builds the rules
and the Pareto fronts from them (`unit.pareto_front`, few candidates).

Every count is an integer and the complexities are the same table lookups and float64 operations
as `complexity.complexity`, so the results equal the CPU's (tests/test_search_batched.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mofn2logic.ir.rules import FrontPoint, ScoredRule, UnitRules
from mofn2logic.search.complexity import EXACT_LIMIT, _table, denominator
from mofn2logic.search.splits import split_gain, xlogx_table
from mofn2logic.search.unit import Candidates, pareto_front, weight_order

CELL_BYTES = 40  # device bytes per (unit, literal, example) cell of a batch: literals, counts, bin indices


def orders_of(problem, order: str, std: np.ndarray | None, gains: np.ndarray | None) -> list[np.ndarray]:
    """Each unit's literal order (`unit.weight_order` with the order's key)."""
    out = []
    for j, w in enumerate(problem.weights):
        key = {"weight": None, "std": None if std is None else np.abs(w) * std, "gain": None if gains is None
               else gains[j]}[order]
        out.append(weight_order(w, key))
    return out


class _Device:
    """The layer on the device: examples (literal-major), thresholds, targets, and a padding literal
    (index n, never true) that fills the shorter orders of a batch."""

    def __init__(self, backend, problem) -> None:
        torch = backend.torch
        self.torch = torch
        self.dev = backend.device
        e, n = problem.x.shape
        self.n, self.e = n, e
        self.shared = problem.input_thresholds.ndim == 1
        self.base: Any = None
        self.x: Any = None
        self.thr: Any = None
        x = torch.from_numpy(np.ascontiguousarray(np.asarray(problem.x))).to(self.dev).T.contiguous()
        if self.shared:
            thr = torch.from_numpy(np.ascontiguousarray(problem.input_thresholds)).to(self.dev)
            base = x >= thr[:, None]  # the layer's literal matrix, built once, on the device
            self.base = torch.cat([base, torch.zeros((1, e), dtype=torch.bool, device=self.dev)])
        else:
            self.x = torch.cat([x, torch.zeros((1, e), dtype=x.dtype, device=self.dev)])
            thr = np.ascontiguousarray(problem.input_thresholds)
            pad = np.full((thr.shape[0], 1), np.inf, thr.dtype)  # 0 >= inf: the padding is never true
            self.thr = torch.from_numpy(np.concatenate([thr, pad], 1)).to(self.dev)
        self.y = torch.from_numpy(np.ascontiguousarray(problem.targets.T)).to(self.dev)  # (U, E) bool

    def literals(self, orders, flips, units: slice, e0: int, e1: int):
        """(B, L, e1 - e0) truth of the batch's literals, in each unit's order."""
        b, width = orders.shape
        flat = orders.reshape(-1)
        if self.base is not None:
            src = self.base if e1 - e0 == self.e else self.base[:, e0:e1]
            rows = src.index_select(0, flat).reshape(b, width, e1 - e0)
        else:
            src = self.x if e1 - e0 == self.e else self.x[:, e0:e1]
            t = self.thr[units].gather(1, orders)
            rows = src.index_select(0, flat).reshape(b, width, e1 - e0) >= t[:, :, None]
        return rows ^ flips[:, :, None]

    def literal_counts(self, negative: np.ndarray) -> np.ndarray:
        """(U, n, 2) fit counts of every literal (weight's polarity) on [target false, target true] examples:
        what `splits.literal_gain` counts, as exact integers (float64 products of 0/1)."""
        torch = self.torch
        y = self.y.to(torch.float64)
        neg = torch.from_numpy(negative).to(self.dev)
        if self.base is not None:
            on_ge = self.base[:-1].to(torch.float64) @ y.T  # (n, U): examples with x >= t and target true
            pos_ge = on_ge.T
            all_ge = self.base[:-1].sum(1, dtype=torch.int64)[None, :].expand_as(pos_ge)
        else:  # one unit's thresholds at a time: (n, E) on the device, not (U, n, E)
            pos, every = [], []
            for j in range(self.thr.shape[0]):
                r = self.x[:-1] >= self.thr[j, :-1, None]
                pos.append(r.to(torch.float64) @ y[j])
                every.append(r.sum(1, dtype=torch.int64))
            pos_ge, all_ge = torch.stack(pos), torch.stack(every)
        pos_ge = pos_ge.round().to(torch.int64)
        n_pos = self.y.sum(1, dtype=torch.int64)[:, None]
        on_pos = torch.where(neg, n_pos - pos_ge, pos_ge)
        on_all = torch.where(neg, self.e - all_ge, all_ge)
        return torch.stack([on_all - on_pos, on_pos], -1).cpu().numpy()


def _gains(dev: _Device, problem) -> np.ndarray:
    """`splits.literal_gain` of every unit's literals (U, n), from device counts."""
    counts = dev.literal_counts(problem.weights < 0)
    y = problem.targets
    pos = y.sum(0).astype(np.int64)
    total = np.stack([len(y) - pos, pos], -1)[:, None, :]
    return np.nan_to_num(split_gain(counts, total - counts, xlogx_table(len(y))))


def search_layer_batched(problem, data, *, betas: Sequence[float], order: str, backend, where: str = "",
                         literal) -> tuple[UnitRules, ...]:
    """Every unit's rules for a prefix order (weight, std or gain); `literal(j, k, threshold, positive)`
    makes a rule's literal as `layer.search_unit` does."""
    torch = backend.torch
    dev = _Device(backend, problem)
    gains = _gains(dev, problem) if order == "gain" else None
    orders = orders_of(problem, order, data.std, gains)
    units, n, e = problem.weights.shape[0], dev.n, dev.e
    lengths = np.array([len(o) for o in orders], np.int64)
    width = int(lengths.max()) if units else 0
    padded = np.full((units, width), n, np.int64)
    flips = np.zeros((units, width), bool)
    for j, o in enumerate(orders):
        padded[j, : len(o)] = o
        flips[j, : len(o)] = problem.weights[j, o] < 0
    budget = backend.budget
    if backend.device.type == "cuda":  # a GPU's memory is there to be used: a quarter of what is free
        budget = max(budget, int(torch.cuda.mem_get_info(backend.device)[0]) // 4)
    per_unit = max(1, width) * e * CELL_BYTES
    batch = max(1, min(units, budget // per_unit)) if units else 1
    e_step = e if per_unit <= budget else max(1, budget // (max(1, width) * CELL_BYTES))
    fan_in = problem.fan_in
    den = denominator(fan_in, where)
    consts = _Constants(torch, backend.device, fan_in, den, width)
    orders_t = torch.from_numpy(padded).to(backend.device)
    flips_t = torch.from_numpy(flips).to(backend.device)
    lengths_t = torch.from_numpy(lengths).to(backend.device)
    parts = []
    done = 0  # kept candidates of the batches before: the choices index the layer's whole list
    for b0 in range(0, units, batch):
        b1 = min(units, b0 + batch)
        kept_b, chosen_b = _batch(dev, consts, orders_t[b0:b1], flips_t[b0:b1], lengths_t[b0:b1], slice(b0, b1),
                                  e_step, tuple(float(b) for b in betas))
        parts.append((kept_b, torch.where(chosen_b >= 0, chosen_b + done, chosen_b)))
        done += kept_b.shape[1]
    kept = torch.cat([p[0] for p in parts], 1) if parts else torch.zeros((5, 0), dtype=torch.int64)
    chosen = torch.cat([p[1] for p in parts]) if parts else torch.zeros((0, len(betas)), dtype=torch.int64)
    host = torch.cat([kept.reshape(-1), chosen.reshape(-1)]).cpu().numpy()  # the one transfer of the results
    k = kept.shape[1]
    kept_h = host[: 5 * k].reshape(5, k)
    chosen_h = host[5 * k:].reshape(-1, len(betas))
    kb, kn, km, kerr = kept_h[0], kept_h[1], kept_h[2], kept_h[3]
    kcx = kept_h[4].view(np.float64)
    n_pos_all = problem.targets.sum(0).astype(np.int64)
    bounds = np.searchsorted(kb, np.arange(units + 1))
    out = []
    for j in range(units):
        s0, s1 = int(bounds[j]), int(bounds[j + 1])
        n_neg = e - int(n_pos_all[j])
        errs = np.concatenate([[n_neg], kerr[s0:s1]]).astype(np.int64)
        c = Candidates(np.concatenate([[0], kn[s0:s1]]).astype(np.int64), np.concatenate([[0], km[s0:s1]]).astype(np.int64),
                       errs, errs / e, np.concatenate([[0.0], kcx[s0:s1]]))
        t = problem.input_thresholds if problem.input_thresholds.ndim == 1 else problem.input_thresholds[j]
        w = problem.weights[j]
        rules = []
        for beta, g in zip(betas, chosen_h[j]):
            i = 0 if g < 0 else int(g) - s0 + 1
            idx = orders[j][: c.n[i]]
            lits = tuple(literal(j, int(a), float(th), bool(p)) for a, th, p in zip(idx.tolist(), t[idx].tolist(),
                                                                                     (w[idx] > 0).tolist()))
            rules.append(ScoredRule(beta=float(beta), n=int(c.n[i]), m=int(c.m[i]), error=float(c.error[i]),
                                    complexity=float(c.complexity[i]), method=order, literals=lits))
        front = tuple(FrontPoint(int(c.n[i]), int(c.m[i]), float(c.error[i]), float(c.complexity[i]))
                      for i in pareto_front(c))
        head = None if problem.head_thresholds is None else float(problem.head_thresholds[j])
        out.append(UnitRules(unit=j, threshold=head, rules=tuple(rules), front=front))
    return tuple(out)


class _Constants:
    """The complexity table and the bound log(N) / den on the device (computed by numpy, so identical)."""

    def __init__(self, torch, device, fan_in: int, den: float, width: int) -> None:
        self.exact = fan_in <= EXACT_LIMIT
        self.cols = fan_in + 2
        self.den = den
        self.table = torch.from_numpy(_table(fan_in)).to(device)
        self.lf = torch.from_numpy(np.log(np.maximum(np.arange(width + 1, dtype=np.float64), 1.0)) / den).to(device)

    def complexity(self, torch, big_n, m):
        """complexity.complexity, operation for operation."""
        if self.exact:
            return self.table[big_n * self.cols + torch.minimum(m, big_n + 1)]
        return (self.table[big_n] - self.table[(big_n - m).clamp(min=0)] - self.table[(m - 1).clamp(min=0)]) / self.den


def _batch(dev: _Device, k: _Constants, orders, flips, lengths, units: slice, e_step: int, betas: tuple[float, ...]):
    """Kept candidates (5, K) int64 rows (unit within the layer, N, M, errors, complexity's float64 bits), in
    (unit, N, M) order, and per unit and beta the chosen one (an index into these K) or -1 for (0, 0)."""
    torch = dev.torch
    d = dev.dev
    b, width = orders.shape
    e = dev.e
    chunks = [(e0, min(e, e0 + e_step)) for e0 in range(0, e, e_step)] or [(0, 0)]
    lo = torch.full((b, width), np.iinfo(np.int32).max, dtype=torch.int32, device=d)
    hi = torch.zeros((b, width), dtype=torch.int32, device=d)
    cached = None
    for e0, e1 in chunks:
        c = torch.cumsum(dev.literals(orders, flips, units, e0, e1), dim=1, dtype=torch.int32)
        if e1 > e0:
            lo = torch.minimum(lo, c.amin(2))
            hi = torch.maximum(hi, c.amax(2))
        cached = c if len(chunks) == 1 else None
    if e == 0:
        lo = torch.zeros_like(hi)
    zero = torch.zeros((b, 1), dtype=torch.int64, device=d)
    lo = torch.cat([zero, lo.to(torch.int64)], 1)  # (B, L + 1): N = 0 first, count 0
    hi = torch.cat([zero, hi.to(torch.int64)], 1)
    widths = (hi - lo + 1).reshape(-1)
    starts = torch.cumsum(widths, 0) - widths  # (S,) flat, S = B (L + 1) segments
    size = int(starts[-1] + widths[-1])  # a sync: the histogram's size
    shift = (starts.reshape(b, width + 1) - lo)[:, 1:, None]
    hist = torch.zeros(2 * size, dtype=torch.int64, device=d)
    y = dev.y[units]
    for e0, e1 in chunks:
        c = cached if cached is not None else torch.cumsum(dev.literals(orders, flips, units, e0, e1), dim=1,
                                                           dtype=torch.int32)
        idx = 2 * (c.to(torch.int64) + shift) + y[:, None, e0:e1].to(torch.int64)
        hist += torch.bincount(idx.reshape(-1), minlength=2 * size)
        del idx, c
    cached = None
    n_pos = y.sum(1, dtype=torch.int64)
    n_neg = e - n_pos
    first = starts.reshape(b, width + 1)[:, 0]
    hist[2 * first + 1] = n_pos  # N = 0: every count is 0
    hist[2 * first] = n_neg
    diff = hist[1::2] - hist[0::2]
    del hist
    seg = torch.repeat_interleave(torch.arange(len(widths), device=d), widths)  # (size,) segment of each bin
    unit = seg // (width + 1)
    big_n = seg % (width + 1)
    cs = torch.cumsum(diff, 0)
    before = torch.where(starts > 0, cs[(starts - 1).clamp(min=0)], torch.zeros_like(starts))
    errors = cs - before[seg] + n_neg[unit]
    del cs, diff
    valid_seg = (torch.arange(width + 1, device=d)[None, :] <= lengths[:, None]).reshape(-1)
    m_at = torch.arange(size, device=d) - (starts - lo.reshape(-1) - 1)[seg]  # M of each bin
    big = torch.iinfo(torch.int64).max
    seg_min = torch.full((len(widths),), big, dtype=torch.int64, device=d).scatter_reduce(0, seg, errors, "amin")
    pos = torch.arange(size, device=d)
    seed_pos = torch.full((len(widths),), size, dtype=torch.int64, device=d).scatter_reduce(
        0, seg, torch.where(errors == seg_min[seg], pos, size), "amin")
    seg_all = torch.arange(len(widths), device=d)
    seed_n = seg_all % (width + 1)
    seed_m = seed_pos - (starts - lo.reshape(-1) - 1)
    seed_cx = k.complexity(torch, seed_n, seed_m)
    seed_cx = torch.where(valid_seg, seed_cx, torch.full_like(seed_cx, float("inf")))
    row = e + 1
    seg_unit = seg_all // (width + 1)
    lowest = torch.full((b * row,), float("inf"), dtype=torch.float64, device=d)
    lowest.scatter_reduce_(0, seg_unit * row + seg_min, seed_cx, "amin")
    ar = torch.arange(b, device=d)
    lowest[ar * row + n_neg] = 0.0
    lowest[ar * row + n_pos] = 0.0

    def below_of(low):
        cm = torch.cummin(low.reshape(b, row), 1).values
        inf = torch.full((b, 1), float("inf"), dtype=torch.float64, device=d)
        return torch.cat([inf, cm[:, :-1]], 1).reshape(-1)

    below = below_of(lowest)
    alive = torch.nonzero((below[unit * row + errors] > k.lf[big_n]) & valid_seg[seg]).reshape(-1)
    del below
    a_unit, a_n, a_m, a_err = unit[alive], big_n[alive], m_at[alive], errors[alive]
    del seg, unit, big_n, m_at, errors, pos
    a_cx = k.complexity(torch, a_n, a_m)
    lowest.scatter_reduce_(0, a_unit * row + a_err, a_cx, "amin")
    final = below_of(lowest)
    keep = a_cx < final[a_unit * row + a_err]
    k_unit, k_n, k_m, k_err, k_cx = a_unit[keep], a_n[keep], a_m[keep], a_err[keep], a_cx[keep]
    # the choice per beta: loss = errors / E + beta * complexity, as numpy computes it; (0, 0) first on ties
    count = len(k_unit)
    err_f = k_err.to(torch.float64) / e
    loss0 = n_neg.to(torch.float64) / e
    chosen = []
    kpos = torch.arange(count, device=d)
    for beta in betas:
        loss = err_f + beta * k_cx
        least = torch.full((b,), float("inf"), dtype=torch.float64, device=d).scatter_reduce(0, k_unit, loss, "amin")
        at = torch.full((b,), count, dtype=torch.int64, device=d).scatter_reduce(
            0, k_unit, torch.where(loss == least[k_unit], kpos, count), "amin")
        chosen.append(torch.where(loss0 + beta * 0.0 <= least, torch.full_like(at, -1), at))
    chosen_t = torch.stack(chosen, 1) if chosen else torch.zeros((b, 0), dtype=torch.int64, device=d)
    kept = torch.stack([k_unit + units.start, k_n, k_m, k_err, k_cx.view(torch.int64)])
    return kept, chosen_t
