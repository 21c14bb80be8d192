"""From a chain-mode rule set and a cut to a layered logic program (docs/method.md, section 5)."""

from __future__ import annotations

import json
import math

from mofn2logic.errors import ProgramError
from mofn2logic.ir.names import Names
from mofn2logic.ir.program import (
    AtomLiteral,
    AtomNamesTable,
    Block,
    DecisionListBlock,
    IndexBlock,
    InputTests,
    MofNRule,
    PoolBlock,
    Program,
    RuleBlock,
)
from mofn2logic.ir.rules import LayerRules, RuleSet
from mofn2logic.ir.steps import INDEX_STEPS, AvgPool, GlobalAvgPool, MaxPool, Step, index_map
from mofn2logic.program.check import check_program
from mofn2logic.program.fold import activation_range, fold_constants
from mofn2logic.program.prune import named_atoms, prune


def compile_program(rs: RuleSet, cut: str | None = None, beta: float | None = None, name: str = "",
                    fold: bool = True, complete: bool = False) -> Program:
    """The program from layer `cut` (default: the first) to the output, with each unit's rule for `beta`
    (default: the smallest beta, i.e. the most faithful rules). Literals that are constant on every
    value their layer's activation can produce are folded into M and N, and rules no class depends
    on are pruned; the result passes `check_program`.

    `complete`: nothing is pruned, and the input tests are every threshold the rule set knows for
    the cut layer's inputs (its literals under every beta, and the head splits of the layer below
    where the inputs carry them unchanged): the atoms a class block fitted later (a decision list,
    `mofn2logic.search.decision_list`) may read; prune after fitting it."""
    if not rs.layers:
        raise ProgramError("the rule set has no layers")
    names = [la.name for la in rs.layers]
    cut = cut or names[0]
    if cut not in names:
        raise ProgramError(f"cut layer {cut!r} does not exist; the rule set has {', '.join(map(repr, names))}")
    beta = min(rs.betas) if beta is None else float(beta)
    if beta not in rs.betas:
        have = ", ".join(f"{b:g}" for b in rs.betas)
        raise ProgramError(f"the rule set has no rules for beta {beta:g}; it has {have}")
    layers = rs.layers[names.index(cut):]
    for la in layers:
        if la.mode != "chain":
            raise ProgramError(f"layer {la.name!r} was extracted in {la.mode} mode; a program needs chain mode "
                               "(one threshold per unit): extract with --mode chain")
        if la.conv is not None and la.conv_position != "all":
            raise ProgramError(f"layer {la.name!r} has rules for a single position (--conv-position best); "
                               "a program needs rules shared by every position")
    for prev, la in zip(layers, layers[1:]):
        feeds = la.steps[0].input if la.steps else la.input_tensor
        if feeds and prev.output_tensor and feeds != prev.output_tensor:
            raise ProgramError(f"layer {la.name!r} does not read layer {prev.name!r} (it reads {feeds!r}): "
                               "extract every layer from the cut to the output")
        if not la.chained:
            raise ProgramError(f"the inputs of layer {la.name!r} were split anew instead of carrying the thresholds "
                               f"of {prev.name!r} (a step between them breaks the chain): cut the program at "
                               f"{la.name!r} or later")
    if layers[-1].units[0].threshold is not None:
        raise ProgramError(f"the last layer in the rule set, {layers[-1].name!r}, is not the output layer; "
                           "extract every layer from the cut to the output")
    prov = json.loads(rs.provenance)
    blocks: list[Block] = []
    source = ""
    for k, la in enumerate(layers):
        if k > 0:
            source = _steps(la, layers[k - 1], source, blocks)
        blocks.append(rule_block(la, beta, source))
    k = names.index(cut)
    below = rs.layers[k - 1] if k > 0 and complete else None
    inp = input_tests(layers[0], beta, rs.betas if complete else None, below)
    program = Program(name=name or str(prov.get("model", "")), blocks=tuple(blocks), input=inp,
                      names=atom_names(rs.names, rs.layers[k - 1] if k > 0 else None, layers[0], inp, tuple(blocks)))
    check_program(program, "compiled program")
    ranges = {la.name: activation_range(la.activation) for la in layers}
    ranges[""] = activation_range(rs.layers[k - 1].activation) if k > 0 else None
    folded = fold_constants(program, ranges) if fold else program
    if complete:
        return Program(folded.name, folded.input, folded.blocks, folded.decision, named_atoms(folded, folded.names))
    return prune(folded)


# Steps that keep a sample's values in C order: flat index i before them is flat index i after them.
ORDER_KEEPING = ("identity", "flatten", "reshape")


def atom_names(names: Names | None, below: LayerRules | None, first: LayerRules, inp: InputTests,
               blocks: tuple[Block, ...]) -> AtomNamesTable:
    """The program's names table from the rule set's `names`. Input tests: at the network's first
    layer (`below` None), the input names (given, or pixel[r,c] for an image) of a dense cut; at a
    later cut, the names of `below`'s units (channels for a conv cut), when the values reach the cut
    in order. Rule blocks: their units' names; the last block: the class names (else its units')."""
    if names is None:
        names = Names()
    table: list[tuple[str, tuple[tuple[int, str], ...]]] = []
    in_order = all(s.op in ORDER_KEEPING for s in first.steps)
    size = inp.shape[0] if inp.per_channel else math.prod(inp.shape)
    looked: list[tuple[int, str | None]] = []
    if below is None and not inp.per_channel and in_order:
        full = len(names.inputs) if names.inputs else math.prod(names.input_shape) if names.input_shape else None
        if full == size:
            looked = [(i, names.input_name(i)) for i in range(size)]
    elif below is not None and in_order and (inp.per_channel or below.kind == "dense"):
        looked = [(i, names.unit_name(below.name, i)) for i in range(size)]
    table.append(("", tuple((i, n) for i, n in looked if n is not None)))
    out = blocks[-1]
    for b in blocks:
        if isinstance(b, (RuleBlock, DecisionListBlock)):
            units = [(u, (names.class_name(u) if b is out else None) or names.unit_name(b.name, u))
                     for u in range(b.shape[0])]
            table.append((b.name, tuple((u, n) for u, n in units if n is not None)))
    return tuple((block, units) for block, units in table if units)


def rule_block(la: LayerRules, beta: float, source: str) -> RuleBlock:
    rules = []
    for u in la.units:
        r = u.rule(beta)
        lits = tuple(AtomLiteral(li.input, li.positive, li.offset) for li in r.literals)
        rules.append(MofNRule(unit=u.unit, m=r.m, lits=lits, threshold=u.threshold))
    stride = la.conv.strides if la.conv is not None else (1, 1)
    return RuleBlock(name=la.name, kind=la.kind, source=source, shape=tuple(la.output_shape), rules=tuple(rules),
                     stride=stride)


def input_tests(la: LayerRules, beta: float, betas: tuple[float, ...] | None = None,
                below: LayerRules | None = None) -> InputTests:
    """The thresholds of the literals of `beta`'s rules (or of every beta in `betas`), and with `below`
    the head splits of that layer where `la`'s inputs carry them unchanged (chained, no step between)."""
    per_channel = la.kind == "conv"
    tests: dict[int, float] = {}
    for b in betas or (beta,):
        for u in la.units:
            for li in u.rule(b).literals:
                if tests.setdefault(li.input, li.threshold) != li.threshold:
                    raise ProgramError(f"input {li.input} of layer {la.name!r} has two thresholds "
                                       f"({tests[li.input]!r} and {li.threshold!r}): not a chain-mode rule set")
    if below is not None and la.chained and not [s for s in la.steps if s.op != "identity"]:
        for u in below.units:
            if u.threshold is not None and tests.setdefault(u.unit, u.threshold) != u.threshold:
                raise ProgramError(f"input {u.unit} of layer {la.name!r} has threshold {tests[u.unit]!r}; the "
                                   f"head split of {below.name!r} unit {u.unit} is {u.threshold!r}")
    return InputTests(tensor=la.input_tensor, shape=tuple(la.input_shape), per_channel=per_channel,
                      tests=tuple(sorted(tests.items())))


def _steps(la: LayerRules, prev: LayerRules, source: str, blocks: list[Block]) -> str:
    """Turn the steps between two layers into pool and index blocks; return the new source.
    Runs of index steps become one gather (`index_map`); max pools become pool blocks."""
    source = prev.name
    shape = tuple(prev.output_shape)
    pending: list[Step] = []  # index steps not yet turned into a block

    def flush() -> None:
        nonlocal source, shape
        if pending:
            new_shape, index = index_map(pending, shape)
            taken = {b.name for b in blocks}
            name = next(n for n in (f"{la.name}/input", *(f"{la.name}/input{i}" for i in range(1, len(blocks) + 2)))
                        if n not in taken)
            blocks.append(IndexBlock(name=name, source=source, shape=new_shape, index=tuple(int(i) for i in index)))
            source, shape = name, new_shape
            pending.clear()

    for k, step in enumerate(la.steps):
        if isinstance(step, (AvgPool, GlobalAvgPool)):
            raise ProgramError(f"average pooling between {prev.name!r} and {la.name!r} is not exact on thresholded "
                               f"units: cut the program at {la.name!r} instead")
        if isinstance(step, MaxPool):
            flush()
            new_shape = step.output_shape(shape)
            tag = f"{la.name}/maxpool{k}"
            blocks.append(PoolBlock(name=tag, source=source, shape=new_shape, pool=step))  # type: ignore[arg-type]
            source, shape = tag, new_shape
        elif isinstance(step, INDEX_STEPS):
            if step.op != "identity":
                pending.append(step)
        else:  # pragma: no cover - every step type is one of the above
            raise ProgramError(f"step {step.op!r} between {prev.name!r} and {la.name!r} is not supported in a program")
    flush()
    return source
