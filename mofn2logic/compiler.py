"""From a chain-mode rule set and a cut to a layered logic program (METHOD.md section 4)."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np

from mofn2logic.errors import ProgramError
from mofn2logic.program import Block, IndexLayer, InputLayer, Lit, MofN, PoolLayer, Program, RuleLayer
from mofn2logic.rules import LayerRules, RuleSet


def compile_program(rs: RuleSet, cut: str | None = None, beta: float | None = None, name: str = "") -> Program:
    """The program from layer `cut` (default: the first) to the output, with each unit's rule for `beta`
    (default: the smallest beta, i.e. the most faithful rules)."""
    if not rs.layers:
        raise ProgramError("the rule set has no layers")
    names = [la.name for la in rs.layers]
    cut = cut or names[0]
    if cut not in names:
        raise ProgramError(f"cut layer {cut!r} does not exist; the rule set has {', '.join(map(repr, names))}")
    beta = min(rs.betas) if beta is None else float(beta)
    if beta not in rs.betas:
        raise ProgramError(f"the rule set has no rules for beta {beta:g}; it has {', '.join(f'{b:g}' for b in rs.betas)}")
    layers = rs.layers[names.index(cut):]
    for la in layers:
        if la.mode != "chain":
            raise ProgramError(f"layer {la.name!r} was extracted in {la.mode} mode; a program needs chain mode "
                               "(one threshold per unit): extract with --mode chain")
        if la.conv is not None and la.conv.position != "all":
            raise ProgramError(f"layer {la.name!r} has rules for a single position (--conv-position best); "
                               "a program needs rules shared by every position")
    if layers[-1].units[0].threshold is not None:
        raise ProgramError(f"the last layer in the rule set, {layers[-1].name!r}, is not the output layer; "
                           "extract every layer from the cut to the output")
    prov = json.loads(rs.provenance)
    blocks: list[Block] = []
    source = ""
    for k, la in enumerate(layers):
        if k > 0:
            source = _steps(la, layers[k - 1], source, blocks)
        blocks.append(_rule_layer(la, beta, source))
    program = Program(name=name or str(prov.get("model", "")), input=_input(layers[0], beta), blocks=tuple(blocks))
    return prune(program)


def _rule_layer(la: LayerRules, beta: float, source: str) -> RuleLayer:
    rules = []
    for u in la.units:
        r = u.rule(beta)
        lits = tuple(Lit(li.input, li.positive, tuple(li.offset) if li.offset is not None else None) for li in r.literals)
        rules.append(MofN(unit=u.unit, m=r.m, lits=lits, threshold=u.threshold))
    stride = tuple(la.conv.strides) if la.conv is not None else (1, 1)
    return RuleLayer(name=la.name, kind=la.kind, source=source, shape=tuple(la.output_shape), rules=tuple(rules),
                     stride=stride)


def _input(la: LayerRules, beta: float) -> InputLayer:
    per_channel = la.kind == "conv"
    tests: dict[int, float] = {}
    for u in la.units:
        for li in u.rule(beta).literals:
            if tests.setdefault(li.input, li.threshold) != li.threshold:
                raise ProgramError(f"input {li.input} of layer {la.name!r} has two thresholds "
                                   f"({tests[li.input]!r} and {li.threshold!r}): not a chain-mode rule set")
    return InputLayer(tensor=la.input_tensor, shape=tuple(la.input_shape), per_channel=per_channel,
                      tests=tuple(sorted(tests.items())))


def _steps(la: LayerRules, prev: LayerRules, source: str, blocks: list[Block]) -> str:
    """Turn the steps between two layers into Pool and Index blocks; return the new source."""
    source = prev.name
    shape = tuple(prev.output_shape)
    index = None  # pending flat index map over `source`
    for k, (op, attrs_json) in enumerate(la.steps):
        attrs = json.loads(attrs_json)
        tag = f"{la.name}/{op}{k}"
        if op == "identity":
            continue
        if op in ("avgpool", "globalavgpool"):
            raise ProgramError(f"average pooling between {prev.name!r} and {la.name!r} is not exact on thresholded "
                               f"units: cut the program at {la.name!r} instead")
        if op == "maxpool":
            if index is not None:
                raise ProgramError(f"max pooling after a reshape between {prev.name!r} and {la.name!r} is not supported")
            kernel = tuple(attrs["kernel"])
            strides = tuple(attrs.get("strides") or kernel)
            pads = tuple(attrs.get("pads") or (0, 0, 0, 0))
            dil = tuple(attrs.get("dilations") or (1, 1))
            if len(kernel) != 2 or len(shape) != 3:
                raise ProgramError(f"max pooling between {prev.name!r} and {la.name!r} is not 2-D")
            oh = _pooled(shape[1], kernel[0], strides[0], pads[0], pads[2], dil[0], attrs.get("ceil_mode", 0))
            ow = _pooled(shape[2], kernel[1], strides[1], pads[1], pads[3], dil[1], attrs.get("ceil_mode", 0))
            new_shape = (shape[0], oh, ow)
            blocks.append(PoolLayer(name=tag, source=source, shape=new_shape, kernel=kernel, stride=strides,
                                    pads=pads, dilation=dil))
            source, shape = tag, new_shape
            continue
        arr = (np.arange(int(np.prod(shape))) if index is None else np.asarray(index)).reshape((1, *shape))
        if op == "flatten":
            a = attrs.get("axis", 1)
            arr = arr.reshape(int(np.prod(arr.shape[:a])), -1)
        elif op == "reshape":
            target = [arr.shape[d] if v == 0 else v for d, v in enumerate(attrs["shape"])]
            target[0] = 1 if target and target[0] != -1 else -1
            arr = arr.reshape(target)
        elif op == "transpose":
            perm = attrs.get("perm")
            if perm is None or perm[0] != 0:
                raise ProgramError(f"a transpose that moves the batch axis between {prev.name!r} and {la.name!r}")
            arr = np.transpose(arr, perm)
        else:
            raise ProgramError(f"step {op!r} between {prev.name!r} and {la.name!r} is not supported in a program")
        index, shape = arr.reshape(-1), tuple(int(d) for d in arr.shape[1:])
    if index is not None:
        name = f"{la.name}/input"
        blocks.append(IndexLayer(name=name, source=source, shape=shape, index=tuple(int(i) for i in index)))
        source = name
    return source


def _pooled(size: int, k: int, s: int, p0: int, p1: int, d: int, ceil: int) -> int:
    span = size + p0 + p1 - d * (k - 1) - 1
    return (-(-span // s) if ceil else span // s) + 1


# --------------------------------------------------------------------------- pruning

def dependency_graph(program: Program) -> nx.DiGraph:
    """Edges from an atom to the atoms it reads. Conv and pool atoms are taken per channel
    (a first-order rule reads the same channels at every position)."""
    g = nx.DiGraph()

    def node(source: str, flat_or_channel: int) -> tuple[str, int]:
        return (source, flat_or_channel)

    def channel_of(source: str, flat: int) -> tuple[str, int]:
        shape = program.input.shape if source == "" else program.block(source).shape
        if source == "":
            per_channel = program.input.per_channel
            return node(source, flat // int(np.prod(shape[1:])) if per_channel else flat)
        b = program.block(source)
        if isinstance(b, (PoolLayer,)) or (isinstance(b, RuleLayer) and b.kind == "conv"):
            return node(source, flat // int(np.prod(shape[1:])))
        return node(source, flat)

    for b in program.blocks:
        if isinstance(b, RuleLayer):
            for r in b.rules:
                g.add_node((b.name, r.unit))
                for li in r.lits:
                    src = node(b.source, li.src) if b.kind == "conv" else channel_of(b.source, li.src)
                    g.add_edge((b.name, r.unit), src)
        elif isinstance(b, PoolLayer):
            for c in range(b.shape[0]):
                g.add_edge((b.name, c), (b.source, c))
        else:
            for k, i in enumerate(b.index):
                g.add_edge((b.name, k), channel_of(b.source, i))
    return g


def prune(program: Program) -> Program:
    """Drop rules and input tests that no class depends on."""
    g = dependency_graph(program)
    out = program.output
    reach: set = set()
    for r in out.rules:
        reach.add((out.name, r.unit))
        reach |= nx.descendants(g, (out.name, r.unit))
    blocks = []
    for b in program.blocks:
        if isinstance(b, RuleLayer) and b is not out:
            b = RuleLayer(b.name, b.kind, b.source, b.shape, tuple(r for r in b.rules if (b.name, r.unit) in reach),
                          b.stride)
        blocks.append(b)
    inp = program.input
    inp = InputLayer(inp.tensor, inp.shape, inp.per_channel, tuple(t for t in inp.tests if ("", t[0]) in reach))
    return Program(program.name, inp, tuple(blocks), program.decision)
