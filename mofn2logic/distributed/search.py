"""`search.network.extract` on a Dask cluster, from a sharded activation store (docs/scale.md).

The client walks the layers as `extract` does and keeps only what is per unit or per input:
thresholds, orders, rules. What needs the examples is computed by the workers on their shards
and summed by tree reductions on the cluster: the three passes of the exact splits
(`distributed.splits`), the per-N count histograms of each unit (`distributed.histograms`) and,
for the gain ordering, each literal's counts by target. Each unit's candidates and choice then
run once, on a worker, on the summed histogram, with the single-machine code, so the rules --
and rules.json -- are the ones `extract` gives on one machine.

Exact on the cluster: chain and paper mode, dense and convolutional layers, every order: weight,
gain and std (numpy's standard deviation rebuilt from sums carried shard to shard in example
order), exact and best (each unit's pooled searches on a worker, from the shards' counts and the
packed truth rows of the literals they score: `distributed.best`), every position of a
convolution (its seeded (sample, position) draw is made on the client from the global count, and
each shard takes its part). Refused with one line: ``--conv-position best`` and ``--fit-on program``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mofn2logic.distributed import splits as ds
from mofn2logic.distributed.cluster import n_workers, result, tree_reduce
from mofn2logic.distributed.examples import (
    COLUMN_BYTES,
    UNITS_PER_TASK,
    Source,
    add_lists,
    columns,
    examples,
    sparse_rows,
    unit_targets,
)
from mofn2logic.distributed.histograms import merge_lists
from mofn2logic.distributed.store import ShardSet
from mofn2logic.errors import SearchError

COUNT_BYTES = 128 * 1024**2  # bin counts one split task returns
POOLED_UNITS_PER_TASK = 4  # orders exact and best: a unit's task waits on its rounds of shard tasks, so more of them
BINS_BYTES = 768 * 1024**2  # pass 2's columns and bins a worker keeps for pass 3


def _labels(ex: tuple, lab: tuple) -> tuple[np.ndarray, int]:
    """(E', L) integer labels and their class count: the predicted class, or binarised targets."""
    x, targets, pred = ex
    if lab[0] == "pred":
        return pred[:, None], lab[1]
    heads, n_classes = lab[1], lab[2]
    if heads is None:
        return (pred[:, None] == np.arange(n_classes)[None, :]).astype(np.int64), 2
    return (targets >= heads).astype(np.int64), 2


# --------------------------------------------------------------------------- worker tasks (module level: pickled by name)

def _t_sample(shard, src, pick, which, cols, size):
    return ds.sample_part(columns(examples(shard, src, pick), which, cols), size)


def _t_edges(n_bins, *samples):
    return ds.edges_from_samples([s for s in samples if s.shape[1]], n_bins)


_BINS: dict[tuple, ds.Binned] = {}  # per worker: pass 2's columns and bins of the last column blocks, for pass 3
_LOCK = threading.Lock()


def _bins_key(shard, src, pick, which, cols, lab, edges) -> tuple:
    h = hashlib.sha1(edges.tobytes())
    h.update(repr((lab[0], lab[1] if lab[0] == "pred" else None)).encode())
    if lab[0] == "binary" and lab[1] is not None:
        h.update(np.asarray(lab[1]).tobytes())
    if pick is not None:
        h.update(pick.tobytes())
    return shard.directory, src, which, cols.start, cols.stop, h.hexdigest()


def _t_bins(shard, src, pick, which, cols, lab, edges):
    ex = examples(shard, src, pick)
    labels, c = _labels(ex, lab)
    r, bins = ds.bin_part_and_bins(columns(ex, which, cols), labels, c, edges)
    key = _bins_key(shard, src, pick, which, cols, lab, edges)
    with _LOCK:
        _BINS[key] = bins
        while len(_BINS) > 1 and sum(b.nbytes for b in _BINS.values()) > BINS_BYTES:
            _BINS.pop(next(iter(_BINS)))  # the oldest: pass 3 finds its bins again if it still needs them
    return r


def _t_values(shard, src, pick, which, cols, lab, edges, keep):
    ex = examples(shard, src, pick)
    with _LOCK:  # pass 2 of this shard ran here (tasks of a shard go to one worker): its bins are kept
        bins = _BINS.pop(_bins_key(shard, src, pick, which, cols, lab, edges), None)
    return ds.values_part(columns(ex, which, cols), _labels(ex, lab)[0], edges, keep, bins)


def _t_sweep(r, keep, lab, *parts):
    """The sweep of a column block, from every shard's values at once (each part moves once)."""
    vals = parts[0]
    for p in parts[1:]:
        vals = ds.merge_values(vals, p)
    return ds.sweep(r, keep, vals, 2 if lab[0] == "binary" else lab[1])


def _t_literal_counts(shard, src, pick, units, thresholds, negs, heads, n_classes):
    """Gain ordering: per unit, each literal's true count among the positive and the negative examples."""
    ex = examples(shard, src, pick)
    out = []
    for j, t, neg in zip(units, thresholds, negs):
        y = unit_targets(ex, j, heads, n_classes)
        lits = (ex[0] >= t) ^ neg  # (E', n)
        out.append(np.stack([lits[y].sum(0), lits[~y].sum(0)]).astype(np.int64))
    return out


SUM_ROWS = 4096  # rows per step of a chained sum


def chained_sum(acc: np.ndarray | None, x: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """`acc` + the rows of `x` (or of (x - mean)**2), added one row after another in row order: numpy's own
    order for a sum over axis 0 of a C-ordered (E, n) array (row by row, not pairwise), so a sum carried from
    shard to shard in example order is the sum one machine computes, bit for bit. acc None: x's first row."""
    for a in range(0, x.shape[0], SUM_ROWS):
        part = np.asarray(x[a:a + SUM_ROWS])
        if mean is not None:
            part = np.square(np.subtract(part, mean))
        acc = np.add.reduce(part if acc is None else np.concatenate([acc[None], part]), axis=0)
    assert acc is not None
    return acc


def _t_sum(shard, src, pick, acc, mean):
    return chained_sum(acc, examples(shard, src, pick)[0], mean)


def std_from_sums(total: np.ndarray, squares: np.ndarray | None, e: int) -> np.ndarray:
    """numpy's `x.std(0)` (numpy._core._methods._var, then sqrt) from the chained sums: with squares None,
    the mean (1, n) the second sum needs; else the standard deviation (n,)."""
    count = np.intp(e)
    if squares is None:
        mean = total[None].copy()
        return np.true_divide(mean, count, out=mean, casting="unsafe")
    var = squares.copy()
    np.true_divide(var, np.maximum(count - 0, 0), out=var, casting="unsafe")
    return np.sqrt(var, out=var)


def _t_gain_orders(counts, n_pos, weights):
    """`weight_order` by each literal's information gain (splits.literal_gain from summed counts)."""
    from mofn2logic.search.splits import literal_gain_from_counts
    from mofn2logic.search.unit import weight_order

    return [weight_order(w, literal_gain_from_counts(on_pos, on_neg, int(pos), int(neg)))
            for (on_pos, on_neg), (pos, neg), w in zip(counts, n_pos, weights)]


def _t_hist(shard, src, pick, units, thresholds, negs, orders, heads, n_classes):
    """This shard's prefix histogram of every unit of the block (None: no examples here), from the literal
    matrix as sparse rows (`histograms.sparse_prefix_histogram`: the dense histogram's arrays)."""
    from mofn2logic.distributed.histograms import sparse_prefix_histogram

    ex = examples(shard, src, pick)
    if len(ex[2]) == 0:
        return [None] * len(units)
    shared = all(t is thresholds[0] or np.array_equal(t, thresholds[0]) for t in thresholds)
    out = []
    for j, t, neg, order in zip(units, thresholds, negs, orders):
        rows = sparse_rows(shard, src, pick, ex, np.ascontiguousarray(t), shared)
        h = sparse_prefix_histogram(rows, order, neg, unit_targets(ex, j, heads, n_classes))
        if len(ex[2]) < 2**31:  # int32 counts: half the bytes to move (merges and _t_rules work in int64)
            h = dataclasses.replace(h, pos=h.pos.astype(np.int32), neg=h.neg.astype(np.int32))
        out.append(h)
    return out


def _t_class_counts(shard, src, pick, units, heads, n_classes):
    ex = examples(shard, src, pick)
    out = []
    for j in units:
        y = unit_targets(ex, j, heads, n_classes)
        out.append(np.array([int(y.sum()), int((~y).sum())], np.int64))
    return out


def _t_rules(hists, units, thresholds, weights, orders, heads, fan_in, where, betas, method, offsets):
    """Each unit's candidates, choice and front from its summed histogram (search_unit, one method)."""
    from mofn2logic.ir.rules import FrontPoint, ScoredRule, ThresholdLiteral, UnitRules
    from mofn2logic.search.unit import candidates_from_histogram, choose, pareto_front

    out = []
    for h, j, t, w, order in zip(hists, units, thresholds, weights, orders):
        h = dataclasses.replace(h, pos=h.pos.astype(np.int64, copy=False), neg=h.neg.astype(np.int64, copy=False))
        n_pos, n_neg = int(h.pos[0]), int(h.neg[0])
        c = candidates_from_histogram(h, n_pos, n_neg, fan_in, where)
        chosen = choose(c, tuple(betas))
        # the rules' literals are prefixes of one list: shared objects, pickled once per unit (not once per rule)
        lits = []
        for k in order[: max((int(c.n[i]) for i in chosen), default=0)]:
            if offsets is None:
                lits.append(ThresholdLiteral(input=int(k), threshold=float(t[k]), positive=bool(w[k] > 0)))
            else:
                ch, dy, dx = offsets[k]
                lits.append(ThresholdLiteral(input=int(ch), threshold=float(t[k]), positive=bool(w[k] > 0),
                                             offset=(int(dy), int(dx))))
        rules = [ScoredRule(beta=float(beta), n=int(c.n[i]), m=int(c.m[i]), error=float(c.error[i]),
                            complexity=float(c.complexity[i]), method=method, literals=tuple(lits[: c.n[i]]))
                 for beta, i in zip(betas, chosen)]
        front = tuple(FrontPoint(int(c.n[i]), int(c.m[i]), float(c.error[i]), float(c.complexity[i]))
                      for i in pareto_front(c))
        head = None if heads is None else float(heads[j])
        out.append(UnitRules(unit=int(j), threshold=head, rules=tuple(rules), front=front))
    return out


# --------------------------------------------------------------------------- the client side

class _Layer:
    """One layer's examples on the cluster: its source and each shard's part of the seeded draw."""

    def __init__(self, client, store: ShardSet, src: Source, picks: list[np.ndarray | None], n_examples: int) -> None:
        self.client, self.store, self.src, self.picks = client, store, src, picks
        self.n_examples = n_examples
        # each shard's examples: its part of the draw, or all its (sample, position) pairs (no draw: n_examples
        # is then the samples times the positions per sample)
        per_sample = n_examples // max(1, store.n_samples)
        self.sizes = [len(p) if p is not None else sh.n * per_sample for sh, p in zip(store.shards, picks)]
        self.homes = _homes(client, len(store.shards))
        self._sweeps = dict.fromkeys(sorted(client.scheduler_info().get("workers", {})), 0)  # columns swept, per worker

    def _each(self, fn, *args, priority: int = 0) -> list:
        """One task per shard (with examples), each on its shard's home worker while that worker is up: its
        examples, sparse rows and bins stay cached there from task to task."""
        return [self.client.submit(fn, sh, self.src, pk, *args, pure=False, workers=home, allow_other_workers=True,
                                   priority=priority)
                for sh, pk, home in zip(self.store.shards, self.picks, self.homes) if pk is None or len(pk)]

    def splits(self, which: str, k: int, lab: tuple) -> np.ndarray:
        """(L, k) thresholds of the k columns (the layer's inputs or targets) against the labels `lab`."""
        return np.concatenate(result(self.submit_splits(which, k, lab), self.client), axis=1)

    def submit_splits(self, which: str, k: int, lab: tuple) -> list:
        """`splits`' tasks, submitted: one future per column block, of its (L, block) thresholds."""
        n_lab = 1 if lab[0] == "pred" else (lab[2] if lab[1] is None else len(lab[1]))
        n_cls = lab[1] if lab[0] == "pred" else 2
        per_shard = max(1, max(len(p) if p is not None else sh.n for sh, p in zip(self.store.shards, self.picks)))
        live = sum(1 for n in self.sizes if n)
        n_bins = ds.bin_count(self.n_examples, live, n_lab, n_cls)
        size = ds.sample_size(n_bins, live)
        # blocks within the memory bounds, and enough of them (of 32 columns or more) to keep every worker busy:
        # about 8 per worker, so that the sweeps (one task per block) share out evenly and the last one, which
        # a worker may run alone, is short (16 per worker: more tasks, whose scheduling cost more than it saved)
        step = max(1, min(COLUMN_BYTES // (8 * per_shard), COUNT_BYTES // (8 * n_bins * n_lab * n_cls),
                          max(32, -(-k // (8 * n_workers(self.client))))))
        outs = []
        # priorities: a worker runs block b's pass 2 before block b - 3's sweep, so that no shard's next
        # bins wait behind a sweep while another worker, needing them for pass 3, idles (three blocks ahead
        # at most: what waits to be swept stays within a few blocks' values); pass 1 (a few values per
        # column) runs first, so every block's edges are ready when its pass 2 could start
        for b, c0 in enumerate(range(0, k, step)):
            cols = slice(c0, min(k, c0 + step))
            edges = self.client.submit(_t_edges, n_bins, *self._each(_t_sample, which, cols, size, priority=1),
                                       pure=False, priority=1)
            r = tree_reduce(self.client, ds.merge_bins, self._each(_t_bins, which, cols, lab, edges, priority=-b),
                            priority=-b)
            keep = self.client.submit(ds.select_bins, r, pure=False, priority=-b)
            vals = self._each(_t_values, which, cols, lab, edges, keep, priority=-b - 1)
            outs.append(self.client.submit(_t_sweep, r, keep, lab, *vals, pure=False, priority=-b - 3,
                                           **self._sweeper(cols)))
        return outs

    def _sweeper(self, cols: slice) -> dict:
        """Where a block's sweep goes: the worker with the fewest columns to sweep so far (loosely: another
        takes it if that one is lost). Left to the scheduler, sweeps -- whose inputs come equally from
        every shard -- fell unevenly (9 to 8 of 17, about a sweep's time of one worker waiting)."""
        if not self._sweeps:
            return {}
        w = min(self._sweeps, key=lambda a: (self._sweeps[a], a))
        self._sweeps[w] += cols.stop - cols.start
        return {"workers": [w], "allow_other_workers": True}

    def std(self) -> np.ndarray:
        """numpy's std over axis 0 of the layer's examples (E, n): two sums carried from shard to shard in
        example order (a chain, not a tree: each pass is sequential over the shards, one read of each). With
        n >= 2 numpy sums axis 0 row after row (one contiguous column, n = 1, it would sum pairwise; such a
        layer is refused before: the complexity of a unit with one input is undefined)."""
        live = [(sh, pk, home) for sh, pk, home in zip(self.store.shards, self.picks, self.homes)
                if pk is None or len(pk)]
        total = None
        for sh, pk, home in live:
            total = self.client.submit(_t_sum, sh, self.src, pk, total, None, pure=False, workers=home,
                                       allow_other_workers=True)
        mean = self.client.submit(std_from_sums, total, None, self.n_examples, pure=False)
        squares = None
        for sh, pk, home in live:
            squares = self.client.submit(_t_sum, sh, self.src, pk, squares, mean, pure=False, workers=home,
                                         allow_other_workers=True)
        return result(self.client.submit(std_from_sums, total, squares, self.n_examples, pure=False), self.client)

    def search_pooled(self, units: int, thresholds: np.ndarray, weights: np.ndarray, heads, n_classes: int, *,
                      order: str, fan_in: int, where: str, betas, offsets, small_n: int, pool_size: int, opts,
                      cut_values) -> list:
        """Orders exact and best: each block of units searched by one task, reading its literals' counts and
        rows from the shards (`distributed.best`)."""
        from mofn2logic.distributed.best import units_task

        std = self.std() if order == "best" else None
        lay = {"shards": self.store.shards, "picks": self.picks, "homes": self.homes, "src": self.src,
               "n_examples": self.n_examples, "sizes": self.sizes}
        workers = sorted(self.client.scheduler_info().get("workers", {}))
        # spread round robin (loosely): left to the scheduler, which cannot see that they wait on rounds of
        # shard tasks, the unit tasks piled up unevenly (5 to 3)
        outs = [self.client.submit(units_task, lay, list(range(u0, min(units, u0 + POOLED_UNITS_PER_TASK))),
                                   thresholds, weights, heads, n_classes, fan_in, offsets, order, tuple(betas), small_n,
                                   pool_size, where, opts, std, cut_values, pure=False,
                                   **({"workers": [workers[b % len(workers)]], "allow_other_workers": True}
                                      if workers else {}))
                for b, u0 in enumerate(range(0, units, POOLED_UNITS_PER_TASK))]
        return [u for block in result(outs, self.client) for u in block]

    def search(self, units: int, thresholds: np.ndarray, weights: np.ndarray, heads, n_classes: int, *,
               order: str, fan_in: int, where: str, betas, offsets) -> list:
        from mofn2logic.search.unit import weight_order

        std = self.std() if order == "std" else None
        blocks = [list(range(u0, min(units, u0 + UNITS_PER_TASK))) for u0 in range(0, units, UNITS_PER_TASK)]
        outs = []
        for b in blocks:
            ths = [thresholds if thresholds.ndim == 1 else thresholds[j] for j in b]
            negs = [weights[j] < 0 for j in b]
            ws = [weights[j] for j in b]
            if order == "gain":
                counts = tree_reduce(self.client, add_lists, self._each(_t_literal_counts, b, ths, negs, heads, n_classes))
                sizes = tree_reduce(self.client, add_lists, self._each(_t_class_counts, b, heads, n_classes))
                orders: Any = self.client.submit(_t_gain_orders, counts, sizes, ws, pure=False)
            elif std is not None:
                orders = [weight_order(w, np.abs(w) * std) for w in ws]
            else:
                orders = [weight_order(w) for w in ws]
            hists = tree_reduce(self.client, merge_lists, self._each(_t_hist, b, ths, negs, orders, heads, n_classes))
            # below the histograms in priority: every shard's histograms first, so that no worker waits on the
            # last block's while another runs an earlier block's rules; the rules then share out at the end
            outs.append(self.client.submit(_t_rules, hists, b, ths, ws, orders, heads, fan_in, where, tuple(betas),
                                           order, offsets, pure=False, priority=-1))
        return [u for block in result(outs, self.client) for u in block]


def _homes(client, n_shards: int) -> list:
    """Shard k's preferred worker: the k-th of the workers in address order, round robin (None: any)."""
    addresses = sorted(client.scheduler_info().get("workers", {}))
    return [[addresses[k % len(addresses)]] if addresses else None for k in range(n_shards)]


def _picks(store: ShardSet, total: int, per_sample: int, budget: int, seed: int) -> tuple[list, int]:
    """Each shard's part (local flat indices) of the seeded draw of `budget` of `total` (sample, position)
    pairs (None: all of the shard's pairs), and the draw's size -- conv_examples.sample_examples' draw."""
    if total <= budget:
        return [None] * len(store.shards), total
    flat = np.sort(np.random.default_rng(seed).choice(total, size=budget, replace=False))
    out = []
    for sh in store.shards:
        a, b = np.searchsorted(flat, [sh.start * per_sample, sh.stop * per_sample])
        out.append(flat[a:b] - sh.start * per_sample)
    return out, budget


def refuse(order: str, conv_position: str, fit_on: str) -> None:
    """The options the cluster cannot run exactly: one line each, before any work."""
    from mofn2logic.search.layer import ORDERS

    if order not in ORDERS:
        raise SearchError(f"order {order!r} is unknown; expected one of {', '.join(ORDERS)}")
    if conv_position != "all":
        raise SearchError(f"conv position {conv_position!r} does not run on a Dask cluster; expected 'all', or no "
                          "--scheduler/--workers")
    if fit_on != "network":
        raise SearchError(f"fit-on {fit_on!r} does not run on a Dask cluster (the program's atoms are not sharded); "
                          "expected 'network', or no --scheduler/--workers")


def extract_sharded(client, model, store: ShardSet, *, layers: Sequence[str] | None = None, mode: str = "chain",
                    order: str = "weight", betas: Sequence[float] = (0.0, 0.1, 0.2, 1.0, 5.0, 1000.0),
                    small_n: int = 3, pool_size: int = 16, conv_examples: int = 20000, conv_position: str = "all",
                    seed: int = 0, provenance: Mapping[str, object] | Callable[[], Mapping[str, object]] | None = None,
                    log=None,
                    cuts: int | None = None, exact_pool: int | None = None, validation: float | None = None,
                    improve_steps: int | None = None, fit_on: str = "network", device: str = "cpu") -> Any:
    """The rule set `search.network.extract` gives on the store's activations, computed on the cluster.
    `provenance`: its entries, or a function giving them, called when the rules are done."""
    from mofn2logic.ir.rules import RuleSet
    from mofn2logic.search import network as nw
    from mofn2logic.search.conv_examples import full_weight, literal_offsets
    from mofn2logic.search.exact import DEFAULT_CUTS, DEFAULT_IMPROVE_STEPS, DEFAULT_POOL, DEFAULT_VALIDATION
    from mofn2logic.version import __version__

    cuts = DEFAULT_CUTS if cuts is None else cuts
    exact_pool = DEFAULT_POOL if exact_pool is None else exact_pool
    validation = DEFAULT_VALIDATION if validation is None else validation
    improve_steps = DEFAULT_IMPROVE_STEPS if improve_steps is None else improve_steps
    betas = nw.check_betas(betas)
    if mode not in nw.MODES:
        raise SearchError(f"mode {mode!r} is unknown; expected one of {', '.join(nw.MODES)}")
    refuse(order, conv_position, fit_on)
    if small_n < 0 or pool_size < 1 or conv_examples < 1:
        raise SearchError(f"small-n must be >= 0, pool size and conv examples >= 1; got {small_n}, {pool_size}, "
                          f"{conv_examples}")
    network = model.network
    names, wanted = nw.wanted_layers(network, layers)
    n = store.n_samples
    n_classes = int(store.shapes[network.output][0])
    classes = np.flatnonzero(store.class_counts)
    if len(classes) < 2:
        raise SearchError(f"all {n} samples are predicted as class {int(classes[0])}: splits against the "
                          "predicted class carry no information; give data the network assigns to 2 or more classes")
    shapes = {k: np.empty((0, *v), np.dtype(store.dtypes[k])) for k, v in store.shapes.items()}
    path, sha = str(model.path.resolve()), model.sha256
    last = max(names.index(w) for w in wanted)
    out = []
    prev_heads: np.ndarray | None = None
    for i, layer in enumerate(network.layers[: last + 1]):
        is_output = i == len(network.layers) - 1
        selected = layer.name in wanted
        where = f"layer {layer.name!r}"
        if layer.kind == "dense":
            lay = _Layer(client, store, Source(path, sha, i, "examples"), [None] * len(store.shards), n)
        else:
            oh, ow = store.shapes[layer.output][1:]
            picks, size = _picks(store, n * oh * ow, oh * ow, conv_examples, nw.draw_seeds(seed, i)[0])
            lay = _Layer(client, store, Source(path, sha, i, "examples"), picks, size)
        # the head splits go first and run beside the input splits (neither needs the other)
        head_parts = None if is_output else lay.submit_splits("targets", layer.units, ("pred", n_classes))
        chain_inputs, chained = None, False
        if selected and mode == "chain":
            chain_inputs, chained = _chain_inputs(client, store, network, i, prev_heads, lay, n_classes,
                                                  conv_examples, nw.draw_seeds(seed, i)[1], Source(path, sha, i, "channels"))
        heads = None if head_parts is None else np.concatenate(result(head_parts, client), axis=1)[0]
        if selected and mode == "chain" and not chained and order in ("exact", "best") and chain_inputs is not None:
            from mofn2logic.distributed.best import target_splits

            # new input splits for this layer's own targets, as search.network.target_input_splits chooses them
            chain_inputs = target_splits(lay, layer, chain_inputs, heads, n_classes, layer.units)
        if selected:
            if log:
                log(f"layer {layer.name!r}: {layer.kind}, {layer.units} units, fan-in {layer.fan_in}, "
                    f"{lay.n_examples} examples, {mode} mode, order {order}, on {len(store.shards)} shards, "
                    f"{n_workers(client)} Dask workers")
            weights = full_weight(layer) if layer.kind == "conv" else layer.weight
            offsets = np.stack(literal_offsets(layer), 1) if layer.kind == "conv" else None
            if mode == "chain":
                thr = chain_inputs
            else:
                thr = lay.splits("inputs", weights.shape[1], ("binary", heads, n_classes))
            if order in ("exact", "best"):
                from mofn2logic.distributed.best import layer_cut_values
                from mofn2logic.search.exact import ExactOptions

                opts = ExactOptions(small_n=small_n, pool=exact_pool, cuts=cuts, validation=validation,
                                    improve_steps=improve_steps)
                cut_values = (layer_cut_values(lay, weights.shape[1], cuts) if mode == "paper" and cuts > 0 else None)
                units = lay.search_pooled(layer.units, np.asarray(thr), weights, heads, n_classes, order=order,
                                          fan_in=layer.fan_in, where=where, betas=betas, offsets=offsets,
                                          small_n=small_n, pool_size=pool_size, opts=opts, cut_values=cut_values)
            else:
                units = lay.search(layer.units, np.asarray(thr), weights, heads, n_classes, order=order,
                                   fan_in=layer.fan_in, where=where, betas=betas, offsets=offsets)
            out.append(nw._layer_rules(layer, units, mode, order, lay.n_examples, conv_position,
                                       nw._steps_between(network, i), shapes, chained, "network"))
        prev_heads = heads
    prov = {
        "package": "mofn2logic", "version": __version__, **((provenance() if callable(provenance) else provenance) or {}),
        "options": {"mode": mode, "order": order, "betas": list(betas), "layers": wanted, "small_n": small_n,
                    "pool_size": pool_size, "conv_examples": conv_examples, "conv_position": conv_position,
                    "seed": seed, "n_samples": int(n), "cuts": cuts, "exact_pool": exact_pool,
                    "validation": validation, "improve_steps": improve_steps, "fit_on": fit_on},
    }
    given = getattr(model, "names", None)  # the default image names (the Dask path takes no user names)
    return RuleSet(betas=betas, layers=tuple(out), provenance=json.dumps(prov, sort_keys=True),
                   names=given if given and not given.units else None)


def _chain_inputs(client, store: ShardSet, network, i: int, prev_heads, lay: _Layer, n_classes: int, budget: int,
                  seed: int, channels: Source) -> tuple[np.ndarray, bool]:
    """search.network._chain_input_thresholds on the cluster: carried head splits, or new splits."""
    from mofn2logic.search import network as nw
    from mofn2logic.search.conv_examples import literal_offsets

    layer = network.layers[i]
    dtype = np.dtype(store.dtypes[layer.input])
    per_elem = None
    if i > 0 and prev_heads is not None:
        prev = network.layers[i - 1]
        per_elem = nw.propagate_thresholds(prev_heads, store.shapes[prev.output], nw._steps_between(network, i))
    if layer.kind == "dense":
        k = int(np.prod(store.shapes[layer.input]))
        if per_elem is not None and per_elem.size == k:
            return per_elem.reshape(-1).astype(dtype), True
        return lay.splits("inputs", k, ("pred", n_classes))[0], False
    ch, _, _ = literal_offsets(layer)
    chained = per_elem is not None and per_elem.ndim == 3 and bool(np.all(per_elem == per_elem[:, :1, :1]))
    if chained and per_elem is not None:
        per_channel = per_elem[:, 0, 0].astype(dtype)
    else:
        c, h, w = store.shapes[layer.input]
        picks, size = _picks(store, store.n_samples * h * w, h * w, budget, seed)
        per_channel = _Layer(client, store, channels, picks, size).splits("inputs", c, ("pred", n_classes))[0]
    return per_channel[ch], chained
