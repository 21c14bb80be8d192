"""Rules for the layers of a network from its harvested activations (docs/method.md, sections 2-4).

Modes:
  ``paper``: input splits per (input, target) pair, as the reference does;
  ``chain``: every input unit carries one threshold -- the head split of the unit it comes from
  (through max pooling, flatten, reshape and transposes, which preserve thresholds), or a new
  split where there is no layer below or an average pool breaks the chain -- so the layers
  compose into one logic program (docs/method.md, section 2).
"""

from __future__ import annotations

import dataclasses
import json
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mofn2logic.errors import SearchError
from mofn2logic.ir.names import Names
from mofn2logic.ir.network import Layer, Network
from mofn2logic.ir.program import Block, InputTests, Program
from mofn2logic.ir.rules import LayerRules, RuleSet, UnitRules
from mofn2logic.ir.steps import AvgPool, GlobalAvgPool, Step
from mofn2logic.search.backends import DEFAULT_BUDGET, make_backend
from mofn2logic.search.conv_examples import (
    ConvDraws,
    DrawnConv,
    best_positions,
    draw,
    full_weight,
    gather_patches,
    literal_offsets,
    sample_examples,
)
from mofn2logic.search.exact import (
    DEFAULT_CUTS,
    DEFAULT_IMPROVE_STEPS,
    DEFAULT_POOL,
    DEFAULT_VALIDATION,
    MAX_CUTS,
    ExactOptions,
)
from mofn2logic.search.layer import (
    MAX_EXACT_SUBSETS,
    MAX_SMALL_SUBSETS,
    ORDERS,
    LayerProblem,
    order_methods,
    search_layer,
    small_subsets,
)
from mofn2logic.search.splits import best_splits, binary_splits_per_target
from mofn2logic.version import __version__

DEFAULT_CONV_EXAMPLES = 20000  # (sample, position) examples drawn per conv layer (docs/method.md, section 4)

DEFAULT_BETAS = (0.0, 0.1, 0.2, 1.0, 5.0, 1000.0)  # the reference's betas (docs/method.md, section 3)
MODES = ("paper", "chain")
FIT_ON = ("network", "program")  # chain mode: a layer's inputs are the network's activations, or the program's atoms
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


def wanted_layers(network: Network, layers: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(every layer's name, the layers asked for: all when `layers` is empty or None), unknown names refused."""
    names = [la.name for la in network.layers]
    wanted = list(names) if not layers else list(layers)
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise SearchError(f"unknown layer{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                          f"the model has {', '.join(map(repr, names))}")
    return names, wanted


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
    conv_examples: int = DEFAULT_CONV_EXAMPLES,
    conv_position: str = "all",
    seed: int = 0,
    memory_budget: int = DEFAULT_BUDGET,
    provenance: Mapping[str, object] | None = None,
    progress: bool | None = None,
    log=None,
    predicted: np.ndarray | None = None,
    cuts: int = DEFAULT_CUTS,
    exact_pool: int = DEFAULT_POOL,
    validation: float = DEFAULT_VALIDATION,
    improve_steps: int = DEFAULT_IMPROVE_STEPS,
    fit_on: str = "network",
    names: Names | None = None,
    drawn: Mapping[str, DrawnConv] | None = None,
    reuse: RuleSet | None = None,
) -> RuleSet:
    """Search M-of-N rules for the chosen layers (default: all) of `network`. `predicted` is the
    network's class per sample (default: the argmax of the output in `acts`). `names` (the
    user's names of inputs, units and classes, `mofn2logic.ir.names.make_names`) go into the rule set.

    Orders ``exact`` and ``best`` also run the threshold-aware exact search over rules of at most
    `small_n` literals from a pool of `exact_pool` literals (quantile `cuts` per input in paper mode),
    choosing among near-equal subsets on a `validation` share of the examples, and improve each
    beta's best rule by up to `improve_steps` local moves (docs/method.md, section 3.10).
    ``fit_on="program"`` (chain mode) fits each layer above the first requested one on the atoms that
    the program compiled from the rules below computes, instead of the network's activations, so that
    each layer corrects the errors under it (docs/method.md, section 3.10).
    `drawn`: the conv layers' examples gathered during the harvest (`conv_draws`), whose tensors
    `acts` then need not hold.
    `reuse`: a rule set searched with these options on these activations and fitted on them (`run`'s
    chain extraction): a layer this extraction fits on the network's activations is taken from it (its
    rules at `betas`, which do not depend on the other betas searched) instead of searched again. Its
    units keep that search's front, whose local moves were made for all of its betas."""
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
    if fit_on not in FIT_ON:
        raise SearchError(f"fit-on {fit_on!r} is unknown; expected one of {', '.join(FIT_ON)}")
    if fit_on == "program" and mode != "chain":
        raise SearchError(f"fit-on 'program' needs chain mode (a program); got mode {mode!r}")
    if not (0 <= cuts <= MAX_CUTS) or exact_pool < 1 or improve_steps < 0 or not (0.0 <= validation < 1.0):
        raise SearchError(f"cuts must be in 0..{MAX_CUTS}, the exact pool >= 1, improve steps >= 0 and the validation "
                          f"share in [0, 1); got {cuts}, {exact_pool}, {improve_steps}, {validation}")
    if "exact" in order_methods(order) and small_subsets(exact_pool, small_n) > MAX_EXACT_SUBSETS:
        raise SearchError(f"the exact search with a pool of {exact_pool} literals and N up to {small_n} would score "
                          f"{small_subsets(exact_pool, small_n):,} subsets per unit; expected at most "
                          f"{MAX_EXACT_SUBSETS:,}: lower the exact pool or small-n")
    exact = ExactOptions(small_n=small_n, pool=exact_pool, cuts=cuts, validation=validation, improve_steps=improve_steps)
    if order == "best" and small_subsets(pool_size, small_n) > MAX_SMALL_SUBSETS:
        raise SearchError(f"the small-N search with a pool of {pool_size} literals and N up to {small_n} would score "
                          f"{small_subsets(pool_size, small_n):,} subsets per unit; expected at most "
                          f"{MAX_SMALL_SUBSETS:,}: lower the pool or small-n")
    layer_names, wanted = wanted_layers(network, layers)
    drawn = dict(drawn or {})
    _check_drawn(network, drawn, conv_examples, seed, conv_position, fit_on)
    pred = predicted_class(network, acts) if predicted is None else np.asarray(predicted)
    if reuse is not None:
        _check_reuse(reuse, {"mode": mode, "order": order, "small_n": small_n, "pool_size": pool_size,
                             "conv_examples": conv_examples, "conv_position": conv_position, "seed": seed,
                             "n_samples": int(len(pred)), "cuts": cuts, "exact_pool": exact_pool,
                             "validation": validation, "improve_steps": improve_steps}, betas)
    n_classes = int(acts[network.output].shape[1])
    classes = np.unique(pred)
    if len(classes) < 2:
        raise SearchError(f"all {len(pred)} samples are predicted as class {int(classes[0])}: splits against the "
                          "predicted class carry no information; give data the network assigns to 2 or more classes")
    backend = make_backend(device, memory_budget)
    last = max(layer_names.index(n) for n in wanted)
    out: list[LayerRules] = []
    prev_heads: np.ndarray | None = None
    program: _ProgramSoFar | None = None  # fit_on="program": the program from the current cut up to layer i - 1
    for i, layer in enumerate(network.layers[: last + 1]):
        is_output = i == len(network.layers) - 1
        selected = layer.name in wanted
        chain_inputs, chained = None, False
        if selected and mode == "chain":
            chain_inputs, chained = _chain_input_thresholds(network, i, prev_heads, acts, pred, n_classes,
                                                            conv_examples, draw_seeds(seed, i)[1], drawn)
        on_program = (fit_on == "program" and program is not None and chained and out
                      and out[-1].name == network.layers[i - 1].name)
        coded = codes = None
        if on_program and program is not None and chain_inputs is not None:
            coded, codes = program.coded_input(network, i, acts, chain_inputs)
        layer_acts = acts if coded is None else ChainMap({layer.input: coded}, acts)  # type: ignore[arg-type]
        ex = _examples(network, layer, layer_acts, pred, conv_examples, conv_position, draw_seeds(seed, i)[0], n_classes,
                       drawn.get(layer.name))
        heads = None if is_output else _heads(layer, ex, n_classes)
        taken = _taken(reuse, layer.name, betas) if selected and coded is None else None
        if (selected and mode == "chain" and not chained and chain_inputs is not None and taken is None
                and "exact" in order_methods(order) and ex.shared is not None):
            chain_inputs = target_input_splits(layer, ex.shared, _binary_targets(ex.shared, heads, n_classes, is_output),
                                               chain_inputs)
        if selected:
            if log:
                log(f"layer {layer.name!r}: {layer.kind}, {layer.units} units, fan-in {layer.fan_in}, "
                    f"{ex.n_examples} examples, {mode} mode, order {order}, backend {backend.name}"
                    + (", fitted on the program's atoms" if coded is not None else "")
                    + (", taken from the rule set given to reuse" if taken is not None else ""))
            units = taken if taken is not None else _search(
                layer, ex, heads, chain_inputs if codes is None else codes, n_classes, mode=mode, order=order,
                betas=betas, backend=backend, small_n=small_n, pool_size=pool_size, progress=progress,
                is_output=is_output, exact=exact, recorded=chain_inputs if codes is not None else None)
            out.append(_layer_rules(layer, units, mode, order, ex.n_examples, conv_position,
                                    _steps_between(network, i), acts, chained, "program" if coded is not None else
                                    "network", drawn))
            if fit_on == "program" and not is_output:
                program = (program.extend(out[-1], acts) if coded is not None and program is not None
                           else _ProgramSoFar.start(out[-1], acts, min(betas)))
        else:
            program = None
        prev_heads = heads
    prov = {
        "package": "mofn2logic", "version": __version__, **(provenance or {}),
        "options": {"mode": mode, "order": order, "betas": list(betas), "layers": wanted, "small_n": small_n,
                    "pool_size": pool_size, "conv_examples": conv_examples, "conv_position": conv_position,
                    "seed": seed, "n_samples": int(len(pred)), "cuts": cuts, "exact_pool": exact_pool,
                    "validation": validation, "improve_steps": improve_steps, "fit_on": fit_on},
    }
    if names:  # unit names of the layers this rule set holds
        kept = {la.name for la in out}
        names = dataclasses.replace(names, units=tuple(u for u in names.units if u[0] in kept))
    return RuleSet(betas=betas, layers=tuple(out), provenance=json.dumps(prov, sort_keys=True),
                   names=names if names else None)


def _check_reuse(reuse: RuleSet, options: Mapping[str, object], betas: Sequence[float]) -> None:
    """Refuse a rule set whose layers cannot stand for this extraction's searches on the network's activations."""
    try:
        had = json.loads(reuse.provenance)["options"]
    except (ValueError, KeyError, TypeError):
        had = {}
    differ = sorted(k for k, v in options.items() if had.get(k) != v)
    differ += [f"beta {b:g}" for b in betas if b not in reuse.betas]
    if had.get("fit_on") != "network":
        differ.append("fit-on")
    if differ:
        raise SearchError(f"the rule set to reuse differs in {', '.join(differ)}; expected one searched with the same "
                          "mode, order, search options and betas, fitted on the network's activations")


def _taken(reuse: RuleSet | None, name: str, betas: Sequence[float]) -> tuple[UnitRules, ...] | None:
    """Layer `name`'s units from `reuse`, their rules at `betas` only; None when it has no such layer."""
    la = None if reuse is None else next((la for la in reuse.layers if la.name == name), None)
    if la is None:
        return None
    return tuple(dataclasses.replace(u, rules=tuple(u.rule(b) for b in betas)) for u in la.units)


def optimality_report(network: Network, acts: Mapping[str, np.ndarray], *, mode: str = "chain",
                      betas: Sequence[float] = DEFAULT_BETAS, conv_examples: int = DEFAULT_CONV_EXAMPLES, seed: int = 0,
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
        ex = _examples(network, layer, acts, pred, conv_examples, "all", draw_seeds(seed, i)[0], n_classes)
        heads = None if is_output else _heads(layer, ex, n_classes)
        if layer.fan_in <= max_inputs:
            chain = (_chain_input_thresholds(network, i, prev_heads, acts, pred, n_classes, conv_examples,
                                             draw_seeds(seed, i)[1])[0] if mode == "chain" else None)
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


def _examples(network, layer: Layer, acts, pred, budget, position, seed, n_classes,
              drawn: DrawnConv | None = None) -> LayerExamples:
    if drawn is not None:  # gathered during the harvest: the same draw as sample_examples below
        ce = drawn.examples
        return LayerExamples(len(ce.sample), shared=Examples(ce.patches, ce.targets, pred[ce.sample]))
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


# --------------------------------------------------------------------------- conv tensors read during the harvest

def draw_seeds(seed: int, i: int) -> tuple[int, int]:
    """Seeds of layer i's two draws: its conv examples, and its input-split values where a conv layer's
    thresholds cannot be carried from the layer below."""
    return seed + i, seed + 1000 + i


def conv_draws(network: Network, n_samples: int, layers: Sequence[str] | None, conv_examples: int,
               seed: int) -> ConvDraws | None:
    """The `harvest(on_batch=...)` reader that gathers what `extract` (fit on the network, every
    position) reads of the conv layers up to the last of `layers`, with the seeds `extract` uses;
    None when those layers hold no convolution."""
    layer_names, wanted = wanted_layers(network, layers)
    last = max(layer_names.index(n) for n in wanted)
    convs = {la.name: (la, *draw_seeds(seed, i)) for i, la in enumerate(network.layers[: last + 1])
             if la.kind == "conv"}
    return ConvDraws(convs, n_samples, conv_examples) if convs else None


def stored_tensors(network: Network) -> set[str]:
    """The tensors a harvest must still hold in full when `conv_draws` reads the conv layers'
    tensors: the dense layers' inputs and outputs and the network's output."""
    return {t for la in network.layers if la.kind != "conv" for t in (la.input, la.output)} | {network.output}


def tensor_shape(acts: Mapping[str, np.ndarray], drawn: Mapping[str, DrawnConv] | None, name: str) -> tuple[int, ...]:
    """Per-sample shape of tensor `name`: held by `acts`, or read through a conv layer's draws."""
    if name in acts:
        return tuple(int(d) for d in np.asarray(acts[name]).shape[1:])
    for d in (drawn or {}).values():
        for tensor, shape in ((d.input_tensor, d.input_shape), (d.output_tensor, d.output_shape)):
            if tensor == name:
                return shape
    raise SearchError(f"tensor {name!r} was neither harvested nor drawn")


def _check_drawn(network: Network, drawn: Mapping[str, DrawnConv], budget: int, seed: int, position: str,
                 fit_on: str) -> None:
    """Draws stand for the whole tensors only where extract would draw the same examples."""
    if not drawn:
        return
    if position != "all" or fit_on != "network":
        raise SearchError(f"conv examples drawn during the harvest serve conv position 'all' fitted on the network; "
                          f"got {position!r} fitted on the {fit_on}")
    for i, la in enumerate(network.layers):
        d = drawn.get(la.name)
        if d is not None and (d.budget, d.seed, d.split_seed) != (budget, *draw_seeds(seed, i)):
            raise SearchError(f"layer {la.name!r}: its examples were drawn with budget {d.budget} and seed {d.seed}; "
                              f"extract draws {budget} with seed {draw_seeds(seed, i)[0]}")


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


def _chain_input_thresholds(network, i, prev_heads, acts, pred, n_classes, budget, seed,
                            drawn: Mapping[str, DrawnConv] | None = None) -> tuple[np.ndarray, bool]:
    """One threshold per literal index of layer i (the same for every target): the carried head splits, or
    new splits against the predicted class where none can be carried (docs/method.md, section 2).
    The flag says whether they were carried (the layer then composes with the one below)."""
    layer = network.layers[i]
    per_elem = None
    if i > 0 and prev_heads is not None:
        prev = network.layers[i - 1]
        shape = tensor_shape(acts, drawn, prev.output)
        per_elem = propagate_thresholds(prev_heads, shape, _steps_between(network, i))
    d = (drawn or {}).get(layer.name)  # a convolution whose input was read through the harvest's draws
    x = acts[layer.input] if d is None else None
    if layer.kind == "dense" and x is not None:
        n = int(np.prod(np.asarray(x).shape[1:]))
        if per_elem is not None and per_elem.size == n:
            return per_elem.reshape(-1).astype(x.dtype), True
        return best_splits(np.asarray(x).reshape(len(pred), -1), pred, n_classes)[0], False
    ch, _, _ = literal_offsets(layer)
    chained = per_elem is not None and per_elem.ndim == 3 and bool(np.all(per_elem == per_elem[:, :1, :1]))
    dtype = x.dtype if x is not None else d.examples.patches.dtype  # type: ignore[union-attr]
    if chained and per_elem is not None:
        per_channel = per_elem[:, 0, 0].astype(dtype)
    elif d is not None:  # the same (sample, position) draw, gathered during the harvest
        per_channel = best_splits(d.split_values, pred[d.split_sample], n_classes)[0]
    else:  # a new split per input channel, over (sample, position) values
        e, c = x.shape[0], x.shape[1]  # type: ignore[union-attr]
        vals = np.asarray(x).reshape(e, c, -1)
        s, p = np.divmod(draw(e * vals.shape[2], budget, seed), vals.shape[2])  # as ConvDraws draws it
        per_channel = best_splits(vals[s, :, p], pred[s], n_classes)[0]
    return per_channel[ch], chained


def _binary_targets(p: Examples, heads: np.ndarray | None, n_classes: int, is_output: bool) -> np.ndarray:
    return (p.pred[:, None] == np.arange(n_classes)[None, :]) if is_output or heads is None else p.targets >= heads


def target_input_splits(layer: Layer, ex: Examples, targets: np.ndarray, current: np.ndarray,
                        cuts: int = MAX_CUTS) -> np.ndarray:
    """New input splits of a chain-mode layer chosen for its own targets (orders exact and best;
    docs/method.md, section 3.10): per input unit (dense) or input channel (convolution), among its
    `cuts` quantile cuts and the `current` split, the threshold whose literals carry the most
    information gain about the layer's binarised targets, summed over literal indices and units
    (the lowest threshold on ties). One threshold per input, as a program's input tests need."""
    from mofn2logic.search.kernels import bin_counts
    from mofn2logic.search.splits import xlogx_table

    x = ex.x  # (E, n) values per literal index
    group = input_groups(layer, x.shape[1])
    inputs = np.unique(group)
    cand = {int(g): split_candidates(x[:, group == g], current, group, g, cuts) for g in inputs}
    bins = candidate_bins(x, cand, group)
    width = max(len(c) for c in cand.values())
    score = np.zeros((x.shape[1], width))
    every = np.ones(x.shape[0], bool)
    table = xlogx_table(x.shape[0])
    for j in range(targets.shape[1]):
        score += split_score(bin_counts(bins, np.ascontiguousarray(targets[:, j]), every, width + 1), table)
    return pick_splits(current, group, cand, score)


# target_input_splits in pieces, which the Dask search (distributed.best.target_splits) runs on the shards

def input_groups(layer: Layer, n: int) -> np.ndarray:
    """Literal index -> the input it reads (a convolution's channel; a dense layer's own input)."""
    return literal_offsets(layer)[0] if layer.kind == "conv" else np.arange(n)


def split_candidates(values: np.ndarray, current: np.ndarray, group: np.ndarray, g: int, cuts: int) -> np.ndarray:
    """Input g's candidate thresholds: the quantile cuts of its values (every literal index, example-major)
    and its current split."""
    from mofn2logic.search.exact import quantile_cuts

    return np.unique(np.concatenate([quantile_cuts(values.ravel(), cuts), np.asarray(current)[group == g][:1]]))


def candidate_bins(x: np.ndarray, cand: dict[int, np.ndarray], group: np.ndarray) -> np.ndarray:
    """(n, E) uint8: each example's bin among its input's candidates, per literal index."""
    bins = np.empty((x.shape[1], x.shape[0]), np.uint8)
    for k in range(x.shape[1]):
        bins[k] = np.searchsorted(cand[int(group[k])], x[:, k], side="right")
    return bins


def split_score(counts: np.ndarray, table: np.ndarray) -> np.ndarray:
    """One unit's gain of every (literal index, candidate) from its counts (n, bins, 2) (`table`: xlogx_table of
    the example count)."""
    from mofn2logic.search.splits import split_gain

    above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1][:, 1:]  # x >= cut c: bins c + 1 and above
    below = counts.sum(1)[:, None, :] - above
    return np.nan_to_num(split_gain(above, below, table))


def pick_splits(current: np.ndarray, group: np.ndarray, cand: dict[int, np.ndarray], score: np.ndarray) -> np.ndarray:
    """Per input, the candidate of the highest score summed over its literal indices (the lowest on ties)."""
    out = np.asarray(current).copy()
    for g in np.unique(group):
        at = group == g
        c = cand[int(g)]
        total = score[at][:, : len(c)].sum(0)
        out[at] = c[int(np.argmax(total))]
    return out.astype(np.asarray(current).dtype)


# --------------------------------------------------------------------------- search

def _problems(layer, ex, heads, chain_inputs, n_classes, *, mode, is_output, recorded=None) -> list[LayerProblem]:
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
                                     offsets=offsets, free_thresholds=mode == "paper", recorded_thresholds=recorded))
    return problems


def _search(layer, ex, heads, chain_inputs, n_classes, *, mode, order, betas, backend, small_n, pool_size,
            progress, is_output, exact=None, recorded=None) -> tuple[UnitRules, ...]:
    problems = _problems(layer, ex, heads, chain_inputs, n_classes, mode=mode, is_output=is_output, recorded=recorded)
    units: list[UnitRules] = []
    for ch, problem in enumerate(problems):
        found = search_layer(problem, betas=betas, order=order, backend=backend, small_n=small_n,
                             pool_size=pool_size, where=f"layer {layer.name!r}",
                             progress=progress if len(problems) == 1 else False, exact=exact)
        units.extend(found if len(problems) == 1 else
                     [UnitRules(unit=ch, threshold=u.threshold, rules=u.rules, front=u.front) for u in found])
    return tuple(units)


def _layer_rules(layer: Layer, units, mode, order, n_examples, position, steps, acts, chained,
                 fit_on: str = "network", drawn: Mapping[str, DrawnConv] | None = None) -> LayerRules:
    return LayerRules(name=layer.name, kind=layer.kind, mode=mode, order=order, activation=layer.activation,
                      fan_in=layer.fan_in, input_tensor=layer.input, output_tensor=layer.output,
                      input_shape=tensor_shape(acts, drawn, layer.input),
                      output_shape=tensor_shape(acts, drawn, layer.output),
                      n_examples=int(n_examples), units=tuple(units), conv=layer.conv,
                      conv_position=position if layer.conv is not None else "all", steps=tuple(steps),
                      chained=bool(chained), fit_on=fit_on)


# --------------------------------------------------------------------------- fitting on the program's atoms

@dataclass(frozen=True, slots=True, eq=False)
class _ProgramSoFar:
    """The program from a cut up to the last layer fitted (its rules for one beta), and the atoms it
    computes on every sample: what the next layer reads when it is fitted on the program
    (docs/method.md, section 3.10)."""

    input: InputTests
    blocks: tuple[Block, ...]
    atoms: dict[str, np.ndarray]  # block name ("" for the input tests) -> (samples, *shape) bool
    last: LayerRules
    beta: float

    @staticmethod
    def start(la: LayerRules, acts: Mapping[str, np.ndarray], beta: float) -> _ProgramSoFar:
        from mofn2logic.engines.numpy_engine import input_atoms
        from mofn2logic.program.compile import input_tests

        inp = input_tests(la, beta)
        first = Program("", inp, ())
        atoms = {"": input_atoms(first, np.asarray(acts[la.input_tensor]))}
        return _ProgramSoFar(inp, (), atoms, la, beta)._with_rules(la, "")

    def _with_rules(self, la: LayerRules, source: str) -> _ProgramSoFar:
        from mofn2logic.engines.block_counts import conv_atoms, dense_atoms  # the numpy engine's atoms, as products
        from mofn2logic.program.compile import rule_block

        block = rule_block(la, self.beta, source)
        blocks = (*self.blocks, block)
        src = self.atoms[source]
        e = src.shape[0]
        got = (dense_atoms(src.reshape(e, -1), block) if block.kind == "dense"
               else conv_atoms(Program("", self.input, blocks), src, block))
        # only the newest block's atoms are read again: drop the others (they can be large)
        return _ProgramSoFar(self.input, blocks, {block.name: got}, la, self.beta)

    def extend(self, la: LayerRules, acts: Mapping[str, np.ndarray]) -> _ProgramSoFar:
        """Add layer `la` (fitted on this program's atoms) and compute its atoms."""
        source, atoms, blocks = self._through_steps(la)
        return _ProgramSoFar(self.input, blocks, atoms, self.last, self.beta)._with_rules(la, source)

    def _through_steps(self, la: LayerRules) -> tuple[str, dict[str, np.ndarray], tuple[Block, ...]]:
        from mofn2logic.engines.numpy_engine import structural
        from mofn2logic.program.compile import _steps

        blocks = list(self.blocks)
        source = _steps(la, self.last, self.last.name, blocks)
        atoms = dict(self.atoms)
        for b in blocks[len(self.blocks):]:
            atoms[b.name] = structural(atoms[b.source], b)  # type: ignore[arg-type]
        return source, {source: atoms[source]}, tuple(blocks)

    def coded_input(self, network: Network, i: int, acts: Mapping[str, np.ndarray],
                    chain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Layer i's input as the program computes it: atoms coded 1 (true) and -1 (false) as int8, in the
        shape of the network's tensor, so that a convolution's zero padding reads 0; and per literal index
        the cut that reads the code: 0 where the padding is true (0 >= the chain threshold), else 0.5."""
        layer = network.layers[i]
        probe = _layer_probe(layer, network, i, acts)
        source, atoms, _ = self._through_steps(probe)
        a = atoms[source]
        shape = np.asarray(acts[layer.input]).shape
        coded = np.where(a.reshape(shape), np.int8(1), np.int8(-1))
        codes = np.where(np.asarray(chain) <= 0, 0.0, 0.5) if layer.kind == "conv" else np.full(len(chain), 0.5)
        return coded, codes.astype(np.float32)


def _layer_probe(layer: Layer, network: Network, i: int, acts: Mapping[str, np.ndarray]) -> LayerRules:
    """A rule-less LayerRules of layer i: what turning the steps below it into blocks needs."""
    return _layer_rules(layer, (), "chain", "weight", 0, "all", _steps_between(network, i), acts, True)


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
