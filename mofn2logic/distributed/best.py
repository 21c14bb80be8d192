"""Orders ``exact`` and ``best`` on a cluster: each unit's pooled searches from a few literals' rows.

The small-N search, the exact search and the local improvement (`search.layer`, docs/method.md 3.10)
score subsets and moves of a unit's literals on every example at once, so their results are not sums
of per-shard parts. What they read, though, is narrow: the choice of literals needs only counts
(additive over shards), and the scoring reads the truth rows of at most a few hundred literals.
So a unit's search runs once, on a worker, as `search.layer.unit_rules` -- the single machine's
code -- on a `ShardedUnit`, which gives it what `UnitExamples` gives on one machine:

- the targets `y` and each literal's counts (information gains; the exact search's candidate
  literals from their counts on the fit examples), summed over shards;
- the prefix searches' candidates from the shards' summed prefix histograms;
- `Literals` whose `truth` rows the shards compute for the literals asked, each shard its own
  examples, sent as packed bits (one bit per example and literal) and joined in example order.

Each request is one round of tasks on the shards' home workers, submitted from the unit's task
(`distributed.worker_client`); the rows asked are cached per unit. The rules are the single
machine's bit for bit: the same functions on the same integers and booleans.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mofn2logic.distributed import examples as dx
from mofn2logic.distributed.histograms import merge_histograms, sparse_prefix_histogram

# --------------------------------------------------------------------------- shard tasks

def _fit_part(n_before: int, n_here: int, total: int, share: float) -> np.ndarray:
    from mofn2logic.search.exact import validation_mask

    return ~validation_mask(total, share)[n_before:n_before + n_here]


@njit(cache=True, nogil=True)
def _masked_counts(indptr, indices, complemented, masks):  # pragma: no cover - compiled
    """(n, M): per row of a sparse boolean matrix, its true entries under each mask (M, E) uint8."""
    n = len(indptr) - 1
    m_count = masks.shape[0]
    totals = np.zeros(m_count, np.int64)
    for m in range(m_count):
        for e in range(masks.shape[1]):
            totals[m] += masks[m, e]
    out = np.zeros((n, m_count), np.int64)
    for r in range(n):
        for p in range(indptr[r], indptr[r + 1]):
            e = indices[p]
            for m in range(m_count):
                out[r, m] += masks[m, e]
        if complemented[r]:  # the stored entries are the false ones
            for m in range(m_count):
                out[r, m] = totals[m] - out[r, m]
    return out


def _t_stats(shard, src, pick, j, t, w, heads, n_classes, n_before, total, share, cut_values):
    """Unit j on a shard: its targets (packed bits), the paper literals' counts on all examples by target
    (gains), and on the fit examples: x >= t of the inputs with w != 0 by target, and (free thresholds)
    their examples per quantile-cut bin by target. Counted from the sparse rows of x >= t (kept on the
    worker where the units share t), not from a dense literal matrix."""
    from mofn2logic.search.kernels import bin_counts

    ex = dx.examples(shard, src, pick)
    x = ex[0]
    y = dx.unit_targets(ex, j, heads, n_classes)
    fit = _fit_part(n_before, len(y), total, share)
    fy, fn = fit & y, fit & ~y
    rows = dx.sparse_rows(shard, src, pick, ex, np.ascontiguousarray(t), True)
    ge = _masked_counts(rows.indptr, rows.indices, rows.complemented,
                        np.stack([y, ~y, fy, fn]).astype(np.uint8))  # (n, 4): x >= t under each mask
    neg = w < 0
    on_pos = np.where(neg, int(y.sum()) - ge[:, 0], ge[:, 0])  # the paper literal (x >= t) ^ (w < 0)
    on_neg = np.where(neg, int((~y).sum()) - ge[:, 1], ge[:, 1])
    nz = np.flatnonzero(w != 0)
    ge_fit = np.stack([ge[nz, 3], ge[nz, 2]], 1).astype(np.int64)  # (k, 2): [target false, true]
    counts = None
    if cut_values is not None and len(nz):
        n_bins = int(max((len(c) for c in cut_values), default=0)) + 1
        bins = np.empty((len(nz), len(y)), np.uint8)
        for r, i in enumerate(nz):
            bins[r] = np.searchsorted(cut_values[i], x[:, i], side="right")
        counts = bin_counts(bins, y, fit, n_bins)
    return {"y": np.packbits(y, bitorder="little"), "n": len(y), "on_pos": on_pos.astype(np.int64),
            "on_neg": on_neg.astype(np.int64), "ge_fit": ge_fit, "counts": counts, "n_fit": int(fit.sum()),
            "n_pos_fit": int(fy.sum())}


def _t_rows(shard, src, pick, inputs, thresholds, positive):
    """Truth rows (P, E') of the literals (input, threshold, polarity) on a shard's examples, packed."""
    x = dx.examples(shard, src, pick)[0]
    truth = (np.asarray(x)[:, inputs] >= thresholds[None, :]) == positive[None, :]
    return np.packbits(np.ascontiguousarray(truth.T), axis=1, bitorder="little")


def _t_prefix(shard, src, pick, j, t, neg, order, heads, n_classes):
    ex = dx.examples(shard, src, pick)
    if len(ex[2]) == 0:
        return None
    rows = dx.sparse_rows(shard, src, pick, ex, np.ascontiguousarray(t), True)
    return sparse_prefix_histogram(rows, order, neg, dx.unit_targets(ex, j, heads, n_classes))


# --------------------------------------------------------------------------- the unit, read from the shards

class RowLiterals:
    """`search.exact.Literals` whose `truth` rows the shards compute on request (cached)."""

    def __init__(self, lits, fetch, n_examples: int) -> None:
        self.inputs, self.thresholds, self.positive = lits.inputs, lits.thresholds, lits.positive
        self.gains, self.paper = lits.gains, lits.paper
        self._fetch, self._e = fetch, n_examples
        self._rows: dict[int, np.ndarray] = {}

    def prefetch(self, idx) -> None:
        missing = sorted({int(i) for i in idx} - set(self._rows))
        if missing:
            m = np.array(missing, np.int64)
            for i, row in zip(missing, self._fetch(self.inputs[m], self.thresholds[m], self.positive[m])):
                self._rows[i] = row

    def truth(self, xt, idx: np.ndarray) -> np.ndarray:
        self.prefetch(idx)
        if len(idx) == 0:
            return np.zeros((0, self._e), bool)
        return np.stack([self._rows[int(i)] for i in idx])


class ShardedUnit:
    """`search.layer.UnitExamples` of unit j, read from the shards through `client` (a worker client)."""

    xt = None  # the literals carry their own rows

    def __init__(self, client, lay: dict, j: int, t: np.ndarray, w: np.ndarray, heads, n_classes: int,
                 share: float, cut_values, opts) -> None:
        self.client, self.lay, self.j = client, lay, j
        self.t, self.w, self.neg = t, w, w < 0
        self.heads, self.n_classes, self.cut_values, self.opts = heads, n_classes, cut_values, opts
        total = lay["n_examples"]
        parts = self._each(_t_stats, j, t, w, heads, n_classes, None, total, share, cut_values, before=True)
        self.sizes = [p["n"] for p in parts]
        self.y = np.concatenate([np.unpackbits(p["y"], count=p["n"], bitorder="little").astype(bool) for p in parts])
        self.fit = _fit_part(0, total, total, share)
        self._stats = parts
        self._lits: RowLiterals | None = None

    def _each(self, fn, *args, before: bool = False) -> list:
        """One task per shard on its home worker; `before`: the 7th argument is the shard's first example."""
        futures = []
        n_before = 0
        for sh, pk, home, n_here in zip(self.lay["shards"], self.lay["picks"], self.lay["homes"], self.lay["sizes"]):
            if n_here == 0:
                continue
            a = list(args)
            if before:
                a[5] = n_before
            futures.append(self.client.submit(fn, sh, self.lay["src"], pk, *a, pure=False, workers=home,
                                              allow_other_workers=True))
            n_before += n_here
        return self.client.gather(futures)

    def gains(self) -> np.ndarray:
        from mofn2logic.search.splits import literal_gain_from_counts

        return literal_gain_from_counts(sum(p["on_pos"] for p in self._stats), sum(p["on_neg"] for p in self._stats),
                                        int(self.y.sum()), int((~self.y).sum()))

    def literals(self) -> RowLiterals:
        from mofn2logic.search.exact import literals_from_counts, top_literals
        from mofn2logic.search.unit import weight_order

        if self._lits is None:
            s = self._stats
            counts = None if s[0]["counts"] is None else sum(p["counts"] for p in s)
            lits = literals_from_counts(self.t, self.w, sum(p["ge_fit"] for p in s), counts,
                                        sum(p["n_fit"] for p in s), sum(p["n_pos_fit"] for p in s), self.cut_values)
            self._lits = RowLiterals(lits, self._fetch, len(self.y))
            # the rows the exact search and most local moves read, in one round
            forced = lits.paper[weight_order(self.w)[: self.opts.small_n]]
            self._lits.prefetch(top_literals(lits, max(self.opts.pool, self.opts.improve_pool), forced))
        return self._lits

    def _fetch(self, inputs, thresholds, positive) -> list[np.ndarray]:
        parts = self._each(_t_rows, inputs, thresholds, positive)
        rows = np.concatenate([np.unpackbits(p, axis=1, count=n, bitorder="little") for p, n in zip(parts, self.sizes)],
                              axis=1).astype(bool)
        return list(rows)

    def paper_rows(self, pool: np.ndarray) -> np.ndarray:
        rows = self._fetch(pool, self.t[pool], self.w[pool] > 0)
        return np.stack(rows, 1) if rows else np.zeros((len(self.y), 0), bool)

    def prefix(self, ordered: np.ndarray, fan_in: int, where: str):
        from mofn2logic.search.unit import candidates_from_histogram

        h = None
        for part in self._each(_t_prefix, self.j, self.t, self.neg, ordered, self.heads, self.n_classes):
            h = merge_histograms(h, part)
        assert h is not None
        return candidates_from_histogram(h, int(self.y.sum()), int((~self.y).sum()), fan_in, where)


# --------------------------------------------------------------------------- a block of units, as one task

def units_task(lay: dict, units, thresholds, weights, heads, n_classes, fan_in, offsets, order, betas, small_n,
               pool_size, where, opts, std, cut_values):
    """Rules of the units (search.layer.unit_rules on `ShardedUnit`s), run on a worker."""
    from distributed import worker_client

    from mofn2logic.search.backends import cpu_backend
    from mofn2logic.search.layer import LayerProblem, unit_rules

    backend = cpu_backend()
    n = weights.shape[1]
    # no examples here: unit_rules reads the weights, thresholds, heads and geometry from the problem, the
    # examples from each ShardedUnit
    problem = LayerProblem(x=np.zeros((0, n), thresholds.dtype), weights=weights, targets=np.zeros((0, len(weights)), bool),
                           input_thresholds=thresholds, fan_in=fan_in, head_thresholds=heads, offsets=offsets,
                           free_thresholds=cut_values is not None)
    out = []
    with worker_client() as client:
        for j in units:
            t = thresholds if thresholds.ndim == 1 else thresholds[j]
            ex = ShardedUnit(client, lay, j, t, weights[j], heads, n_classes, opts.validation, cut_values, opts)
            out.append(unit_rules(problem, j, ex, std=std, opts=opts, betas=betas, order=order, backend=backend,
                                  small_n=small_n, pool_size=pool_size, where=where))
    return out


def _t_columns(shard, src, pick, cols):
    """A shard's values of the input columns `cols` (a slice or indices)."""
    return np.ascontiguousarray(dx.columns(dx.examples(shard, src, pick), "inputs", cols))


def _t_cuts(cuts, *parts):
    """Each column's quantile cuts (search.exact.quantile_cuts) from every shard's values, in example order."""
    from mofn2logic.search.exact import quantile_cuts

    x = np.concatenate(parts, axis=0)
    return [quantile_cuts(x[:, i], cuts) for i in range(x.shape[1])]


def layer_cut_values(lay, k: int, cuts: int) -> list[np.ndarray]:
    """`search.exact.layer_cuts`' cuts of the layer's k inputs: exact order statistics of each column, so each
    column's values (from every shard, in example order) meet in one task, a block of columns at a time."""
    from mofn2logic.distributed.cluster import result
    from mofn2logic.search.exact import MAX_CUTS

    per = max(1, lay.n_examples)
    step = max(1, min(k, dx.COLUMN_BYTES // (8 * per)))
    outs = [lay.client.submit(_t_cuts, min(cuts, MAX_CUTS), *lay._each(_t_columns, slice(c0, min(k, c0 + step))),
                              pure=False) for c0 in range(0, k, step)]
    return [c for block in result(outs, lay.client) for c in block]


# --------------------------------------------------------------------------- chain mode: new input splits for the targets

def _t_candidates(cuts, groups, group_of_cols, current, group, *parts):
    """Each input's candidate thresholds (search.network.split_candidates) from every shard's values of its
    literal indices, in example order."""
    from mofn2logic.search.network import split_candidates

    x = np.concatenate(parts, axis=0)
    return [split_candidates(x[:, group_of_cols == g], current, group, g, cuts) for g in groups]


def _t_target_counts(shard, src, pick, cand, group, units, heads, n_classes):
    """Per unit: the shard's examples per (literal index, candidate bin) by target, as target_input_splits
    counts them (every example)."""
    from mofn2logic.search.kernels import bin_counts
    from mofn2logic.search.network import candidate_bins

    ex = dx.examples(shard, src, pick)
    x = np.asarray(ex[0])
    bins = candidate_bins(x, cand, group)
    width = max(len(c) for c in cand.values())
    every = np.ones(x.shape[0], bool)
    return [bin_counts(bins, np.ascontiguousarray(dx.unit_targets(ex, j, heads, n_classes)), every, width + 1)
            for j in units]


def _t_score(score, counts, e):
    """target_input_splits' score, one unit after another (the float sum in the single machine's order)."""
    from mofn2logic.search.network import split_score
    from mofn2logic.search.splits import xlogx_table

    table = xlogx_table(e)
    for c in counts:
        gain = split_score(c, table)
        if score is None:
            score = np.zeros(gain.shape)
        score += gain
    return score


def target_splits(lay, layer, current: np.ndarray, heads, n_classes: int, units: int) -> np.ndarray:
    """`search.network.target_input_splits` on the cluster: the same thresholds, bit for bit."""
    from mofn2logic.distributed.cluster import result, tree_reduce
    from mofn2logic.search.exact import MAX_CUTS
    from mofn2logic.search.network import input_groups, pick_splits

    current = np.asarray(current)
    group = input_groups(layer, len(current))
    inputs = np.unique(group)
    per_group = max(1, len(current) // max(1, len(inputs)))
    step = max(1, min(len(inputs), dx.COLUMN_BYTES // (8 * max(1, lay.n_examples) * per_group)))
    cand_parts = []
    for g0 in range(0, len(inputs), step):
        gs = inputs[g0:g0 + step]
        cols = np.flatnonzero(np.isin(group, gs))
        cand_parts.append(lay.client.submit(_t_candidates, MAX_CUTS, gs, group[cols], current, group,
                                            *lay._each(_t_columns, cols), pure=False))
    cand = {int(g): c for g, c in zip(inputs, [c for block in result(cand_parts, lay.client) for c in block])}
    score = None
    for u0 in range(0, units, dx.UNITS_PER_TASK):
        us = list(range(u0, min(units, u0 + dx.UNITS_PER_TASK)))
        counts = tree_reduce(lay.client, dx.add_lists, lay._each(_t_target_counts, cand, group, us, heads, n_classes))
        score = lay.client.submit(_t_score, score, counts, lay.n_examples, pure=False)
    return pick_splits(current, group, cand, result(score, lay.client))
