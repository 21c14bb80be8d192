"""Rules for the layers of a network from its harvested activations (docs/method.md, sections 2-4).

Modes:
  ``paper``: input splits per (input, target) pair, as the reference does;
  ``chain``: every input unit carries one threshold -- the head split of the unit it comes from
  (through max pooling, flatten, reshape and transposes, which preserve thresholds), or a new
  split where there is no layer below or an average pool breaks the chain -- so the layers
  compose into one logic program (docs/method.md, section 2).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mofn2logic.errors import SearchError
from mofn2logic.ir.network import Layer, Network
from mofn2logic.ir.rules import LayerRules, RuleSet, UnitRules
from mofn2logic.ir.steps import AvgPool, GlobalAvgPool, Step
from mofn2logic.search.backends import DEFAULT_BUDGET, make_backend
from mofn2logic.search.conv_examples import (
    best_positions,
    full_weight,
    gather_patches,
    literal_offsets,
    sample_examples,
)
from mofn2logic.search.layer import MAX_SMALL_SUBSETS, ORDERS, LayerProblem, search_layer, small_subsets
from mofn2logic.search.splits import best_splits, binary_splits_per_target
from mofn2logic.version import __version__

DEFAULT_BETAS = (0.0, 0.1, 0.2, 1.0, 5.0, 1000.0)  # the reference's betas (docs/method.md, section 3)
MODES = ("paper", "chain")
CONV_POSITIONS = ("all", "best")  # one rule shared by every position, or the reference's best-IG position


def predicted_class(network: Network, acts: Mapping[str, np.ndarray]) -> np.ndarray:
    """argmax of the output layer (first index on ties; docs/method.md, section 1)."""
    return np.argmax(np.asarray(acts[network.output]), axis=1)


def check_betas(betas: Sequence[float]) -> tuple[float, ...]:
    out = []
    for b in betas:
        try:
            v = float(b)
        except (TypeError, ValueError):
            v = float("nan")
        if not np.isfinite(v) or v < 0:
            raise SearchError(f"beta {b!r} is not a non-negative number; expected e.g. 0,0.1,0.2,1,5,1000")
        out.append(v)
    if not out:
        raise SearchError("no beta given; expected at least one non-negative number")
    return tuple(out)


def extract(
    network: Network,
    acts: Mapping[str, np.ndarray],
    *,
    layers: Sequence[str] | None = None,
    mode: str = "chain",
    order: str = "weight",
    betas: Sequence[float] = DEFAULT_BETAS,
    device: str = "auto",
    small_n: int = 3,
    pool_size: int = 16,
    conv_examples: int = 20000,
    conv_position: str = "all",
    seed: int = 0,
    memory_budget: int = DEFAULT_BUDGET,
    provenance: Mapping[str, object] | None = None,
    progress: bool | None = None,
    log=None,
    predicted: np.ndarray | None = None,
) -> RuleSet:
    """Search M-of-N rules for the chosen layers (default: all) of `network`. `predicted` is the
    network's class per sample (default: the argmax of the output in `acts`)."""
    betas = check_betas(betas)
    if mode not in MODES:
        raise SearchError(f"mode {mode!r} is unknown; expected one of {', '.join(MODES)}")
    if order not in ORDERS:
        raise SearchError(f"order {order!r} is unknown; expected one of {', '.join(ORDERS)}")
    if conv_position not in CONV_POSITIONS:
        raise SearchError(f"conv position {conv_position!r} is unknown; expected one of {', '.join(CONV_POSITIONS)}")
    if small_n < 0 or pool_size < 1 or conv_examples < 1:
        raise SearchError(f"small-n must be >= 0, pool size and conv examples >= 1; got {small_n}, {pool_size}, "
                          f"{conv_examples}")
    if order == "best" and small_subsets(pool_size, small_n) > MAX_SMALL_SUBSETS:
        raise SearchError(f"the small-N search with a pool of {pool_size} literals and N up to {small_n} would score "
                          f"{small_subsets(pool_size, small_n):,} subsets per unit; expected at most "
                          f"{MAX_SMALL_SUBSETS:,}: lower the pool or small-n")
    names = [la.name for la in network.layers]
    wanted = list(names) if not layers else list(layers)
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise SearchError(f"unknown layer{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                          f"the model has {', '.join(map(repr, names))}")
    pred = predicted_class(network, acts) if predicted is None else np.asarray(predicted)
    n_classes = int(acts[network.output].shape[1])
    classes = np.unique(pred)
    if len(classes) < 2:
        raise SearchError(f"all {len(pred)} samples are predicted as class {int(classes[0])}: splits against the "
                          "predicted class carry no information; give data the network assigns to 2 or more classes")
    backend = make_backend(device, memory_budget)
    last = max(names.index(n) for n in wanted)
    out: list[LayerRules] = []
    prev_heads: np.ndarray | None = None
    for i, layer in enumerate(network.layers[: last + 1]):
        is_output = i == len(network.layers) - 1
        ex = _examples(network, layer, acts, pred, conv_examples, conv_position, seed + i, n_classes)
        heads = None if is_output else _heads(layer, ex, n_classes)
        selected = layer.name in wanted
        if selected:
            if log:
                log(f"layer {layer.name!r}: {layer.kind}, {layer.units} units, fan-in {layer.fan_in}, "
                    f"{ex.n_examples} examples, {mode} mode, order {order}, backend {backend.name}")
            chain_inputs, chained = None, False
            if mode == "chain":
                chain_inputs, chained = _chain_input_thresholds(network, i, prev_heads, acts, pred, n_classes,
                                                                conv_examples, seed + 1000 + i)
            units = _search(layer, ex, heads, chain_inputs, n_classes, mode=mode, order=order, betas=betas,
                            backend=backend, small_n=small_n, pool_size=pool_size, progress=progress,
                            is_output=is_output)
            out.append(_layer_rules(layer, units, mode, order, ex.n_examples, conv_position,
                                    _steps_between(network, i), acts, chained))
        prev_heads = heads
    prov = {
        "package": "mofn2logic", "version": __version__, **(provenance or {}),
        "options": {"mode": mode, "order": order, "betas": list(betas), "layers": wanted, "small_n": small_n,
                    "pool_size": pool_size, "conv_examples": conv_examples, "conv_position": conv_position,
                    "seed": seed, "n_samples": int(len(pred))},
    }
    return RuleSet(betas=betas, layers=tuple(out), provenance=json.dumps(prov, sort_keys=True))


def optimality_report(network: Network, acts: Mapping[str, np.ndarray], *, mode: str = "chain",
                      betas: Sequence[float] = DEFAULT_BETAS, conv_examples: int = 20000, seed: int = 0,
                      max_inputs: int = 12) -> dict[str, dict[str, dict[str, float]]]:
    """For every layer with fan-in <= max_inputs: each ordering's distance to the true optimum."""
    from mofn2logic.search.optimality import optimality

    betas = check_betas(betas)
    pred = predicted_class(network, acts)
    n_classes = int(np.asarray(acts[network.output]).shape[1])
    report = {}
    prev_heads = None
    for i, layer in enumerate(network.layers):
        is_output = i == len(network.layers) - 1
        ex = _examples(network, layer, acts, pred, conv_examples, "all", seed + i, n_classes)
        heads = None if is_output else _heads(layer, ex, n_classes)
        if layer.fan_in <= max_inputs:
            chain = (_chain_input_thresholds(network, i, prev_heads, acts, pred, n_classes, conv_examples,
                                             seed + 1000 + i)[0] if mode == "chain" else None)
            (problem,) = _problems(layer, ex, heads, chain, n_classes, mode=mode, is_output=is_output)
            report[layer.name] = optimality(problem, betas)
        prev_heads = heads
    return report


# --------------------------------------------------------------------------- examples

@dataclass(frozen=True, slots=True, eq=False)
class Examples:
    """A layer's (or one channel's) examples: inputs (E, fan-in), targets (E, units) and the
    network's predicted class per example."""

    x: np.ndarray
    targets: np.ndarray
    pred: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class LayerExamples:
    """Examples shared by every unit, or (the reference's best-position option) one set per channel."""

    n_examples: int
    shared: Examples | None = None
    per_channel: tuple[Examples, ...] | None = None

    def parts(self) -> tuple[Examples, ...]:
        return self.per_channel if self.per_channel is not None else (self.shared,)  # type: ignore[return-value]


def _examples(network, layer: Layer, acts, pred, budget, position, seed, n_classes) -> LayerExamples:
    x = acts[layer.input]
    y = acts[layer.output]
    if layer.kind == "dense":
        shared = Examples(np.asarray(x).reshape(len(pred), -1), np.asarray(y).reshape(len(pred), -1), pred)
        return LayerExamples(len(pred), shared=shared)
    if position == "best":
        pos = best_positions(y, pred, n_classes)
        e = len(pred)
        per = []
        for ch in range(layer.units):
            oy, ox = np.full(e, pos[ch, 0]), np.full(e, pos[ch, 1])
            per.append(Examples(gather_patches(x, layer, np.arange(e), oy, ox),
                                np.asarray(y[:, ch, pos[ch, 0], pos[ch, 1]])[:, None], pred))
        return LayerExamples(e, per_channel=tuple(per))
    ce = sample_examples(x, y, layer, budget, seed)
    return LayerExamples(len(ce.sample), shared=Examples(ce.patches, ce.targets, pred[ce.sample]))


def _heads(layer: Layer, ex: LayerExamples, n_classes: int) -> np.ndarray:
    """Head split of every unit (channel) against the predicted class (docs/method.md, sections 2 and 4)."""
    return np.concatenate([best_splits(p.targets, p.pred, n_classes)[0] for p in ex.parts()])


# --------------------------------------------------------------------------- chain thresholds

def _steps_between(network: Network, i: int) -> list[Step]:
    seq = network.sequence
    layer = network.layers[i]
    pos = next(k for k, s in enumerate(seq) if s is layer)
    steps: list[Step] = []
    k = pos - 1
    while k >= 0:
        s = seq[k]
        if isinstance(s, Layer):
            break
        steps.insert(0, s)
        k -= 1
    return steps


def propagate_thresholds(per_unit: np.ndarray, shape: tuple[int, ...], steps: Sequence[Step]) -> np.ndarray | None:
    """Carry the previous layer's head thresholds (one per unit or channel) through the steps to the
    next layer's input, or None where a step (average pooling) makes new splits necessary.
    Max pooling, flatten, reshape and transposes move values without changing them
    (docs/method.md, section 2), so the threshold of each moved value moves with it."""
    from mofn2logic.errors import ProgramError

    arr = (per_unit.reshape((-1,) + (1,) * (len(shape) - 1)) * np.ones(shape, per_unit.dtype))[None]
    for s in steps:
        if isinstance(s, (AvgPool, GlobalAvgPool)):
            return None
        try:
            arr = s.apply(arr)
        except ProgramError:
            return None
    return arr[0]


def _chain_input_thresholds(network, i, prev_heads, acts, pred, n_classes, budget, seed) -> tuple[np.ndarray, bool]:
    """One threshold per literal index of layer i (the same for every target): the carried head splits, or
    new splits against the predicted class where none can be carried (docs/method.md, section 2).
    The flag says whether they were carried (the layer then composes with the one below)."""
    layer = network.layers[i]
    per_elem = None
    if i > 0 and prev_heads is not None:
        prev = network.layers[i - 1]
        shape = np.asarray(acts[prev.output]).shape[1:]
        per_elem = propagate_thresholds(prev_heads, shape, _steps_between(network, i))
    x = acts[layer.input]
    if layer.kind == "dense":
        n = int(np.prod(np.asarray(x).shape[1:]))
        if per_elem is not None and per_elem.size == n:
            return per_elem.reshape(-1).astype(x.dtype), True
        return best_splits(np.asarray(x).reshape(len(pred), -1), pred, n_classes)[0], False
    ch, _, _ = literal_offsets(layer)
    chained = per_elem is not None and per_elem.ndim == 3 and bool(np.all(per_elem == per_elem[:, :1, :1]))
    if chained and per_elem is not None:
        per_channel = per_elem[:, 0, 0].astype(x.dtype)
    else:  # a new split per input channel, over (sample, position) values
        e, c = x.shape[0], x.shape[1]
        vals = np.asarray(x).reshape(e, c, -1)
        total = e * vals.shape[2]
        pick = np.arange(total) if total <= budget else np.sort(
            np.random.default_rng(seed).choice(total, size=budget, replace=False))
        s, p = np.divmod(pick, vals.shape[2])
        per_channel = best_splits(vals[s, :, p], pred[s], n_classes)[0]
    return per_channel[ch], chained


# --------------------------------------------------------------------------- search

def _problems(layer, ex, heads, chain_inputs, n_classes, *, mode, is_output) -> list[LayerProblem]:
    """The layer's search problem: one for all units, or one per channel (best-position mode)."""
    weights = full_weight(layer) if layer.kind == "conv" else layer.weight
    offsets = np.stack(literal_offsets(layer), 1) if layer.kind == "conv" else None
    problems = []
    for ch, p in enumerate(ex.parts()):
        sl = slice(None) if ex.per_channel is None else slice(ch, ch + 1)
        if is_output:
            tb = (p.pred[:, None] == np.arange(n_classes)[None, :])[:, sl]
        else:
            tb = p.targets >= heads[sl]
        thr = chain_inputs if mode == "chain" else binary_splits_per_target(p.x, tb)
        problems.append(LayerProblem(x=p.x, weights=weights[sl], targets=tb, input_thresholds=thr,
                                     fan_in=layer.fan_in, head_thresholds=None if heads is None else heads[sl],
                                     offsets=offsets))
    return problems


def _search(layer, ex, heads, chain_inputs, n_classes, *, mode, order, betas, backend, small_n, pool_size,
            progress, is_output) -> tuple[UnitRules, ...]:
    problems = _problems(layer, ex, heads, chain_inputs, n_classes, mode=mode, is_output=is_output)
    units: list[UnitRules] = []
    for ch, problem in enumerate(problems):
        found = search_layer(problem, betas=betas, order=order, backend=backend, small_n=small_n,
                             pool_size=pool_size, where=f"layer {layer.name!r}",
                             progress=progress if len(problems) == 1 else False)
        units.extend(found if len(problems) == 1 else
                     [UnitRules(unit=ch, threshold=u.threshold, rules=u.rules, front=u.front) for u in found])
    return tuple(units)


def _layer_rules(layer: Layer, units, mode, order, n_examples, position, steps, acts, chained) -> LayerRules:
    return LayerRules(name=layer.name, kind=layer.kind, mode=mode, order=order, activation=layer.activation,
                      fan_in=layer.fan_in, input_tensor=layer.input, output_tensor=layer.output,
                      input_shape=tuple(int(d) for d in np.asarray(acts[layer.input]).shape[1:]),
                      output_shape=tuple(int(d) for d in np.asarray(acts[layer.output]).shape[1:]),
                      n_examples=int(n_examples), units=tuple(units), conv=layer.conv,
                      conv_position=position if layer.conv is not None else "all", steps=tuple(steps),
                      chained=bool(chained))


def summarize(rs: RuleSet) -> list[dict[str, object]]:
    """Per layer and beta: units, mean error, mean complexity, mean N, share of units with error <= 1%
    (the layer's trade-off curve, docs/method.md, section 3)."""
    rows = []
    for la in rs.layers:
        for b in rs.betas:
            rules = [u.rule(b) for u in la.units]
            rows.append({"layer": la.name, "beta": b, "units": len(rules),
                         "mean_error": float(np.mean([r.error for r in rules])),
                         "mean_complexity": float(np.mean([r.complexity for r in rules])),
                         "mean_n": float(np.mean([r.n for r in rules])),
                         "share_error_le_1pct": float(np.mean([r.error <= 0.01 for r in rules]))})
    return rows
