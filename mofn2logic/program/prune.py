"""Drop the rules and input tests that no class depends on (a reachability pass with networkx)."""

from __future__ import annotations

import networkx as nx
import numpy as np

from mofn2logic.ir.program import (
    AtomNamesTable,
    DecisionListBlock,
    InputTests,
    PoolBlock,
    Program,
    RuleBlock,
    source_shape,
)
from mofn2logic.program.check import check_program


def dependency_graph(program: Program) -> nx.DiGraph:
    """Edges from an atom to the atoms it reads. Conv and pool atoms are taken per channel
    (a first-order rule reads the same channels at every position). A decision list's rules are
    dense rules from the class they name."""
    g = nx.DiGraph()

    def channel_of(source: str, flat: int) -> tuple[str, int]:
        shape = source_shape(program, source)
        if source == "":
            return (source, flat // int(np.prod(shape[1:])) if program.input.per_channel else flat)
        b = program.block(source)
        if isinstance(b, PoolBlock) or (isinstance(b, RuleBlock) and b.kind == "conv"):
            return (source, flat // int(np.prod(shape[1:])))
        return (source, flat)

    for b in program.blocks:
        if isinstance(b, (RuleBlock, DecisionListBlock)):
            for r in b.rules:
                g.add_node((b.name, r.unit))
                for li in r.lits:
                    src = (b.source, li.src) if b.kind == "conv" else channel_of(b.source, li.src)
                    g.add_edge((b.name, r.unit), src)
        elif isinstance(b, PoolBlock):
            for c in range(b.shape[0]):
                g.add_edge((b.name, c), (b.source, c))
        else:
            for k, i in enumerate(b.index):
                g.add_edge((b.name, k), channel_of(b.source, i))
    return g


def prune(program: Program) -> Program:
    """The program without rules and input tests that no class depends on."""
    g = dependency_graph(program)
    out = program.output
    reach: set[tuple[str, int]] = set()
    for r in out.rules:
        reach.add((out.name, r.unit))
        reach |= nx.descendants(g, (out.name, r.unit))
    blocks = []
    for b in program.blocks:
        if isinstance(b, RuleBlock) and b is not out:
            b = RuleBlock(b.name, b.kind, b.source, b.shape, tuple(r for r in b.rules if (b.name, r.unit) in reach),
                          b.stride)
        blocks.append(b)
    inp = program.input
    inp = InputTests(inp.tensor, inp.shape, inp.per_channel, tuple(t for t in inp.tests if ("", t[0]) in reach))
    pruned = Program(program.name, inp, tuple(blocks), program.decision)
    pruned = Program(pruned.name, inp, pruned.blocks, pruned.decision, named_atoms(pruned, program.names))
    check_program(pruned, "pruned program")
    return pruned


def named_atoms(program: Program, names: AtomNamesTable) -> AtomNamesTable:
    """The entries of `names` for atoms `program` has: tested inputs, hidden units with a rule, every class."""
    have: dict[str, set[int]] = {"": {i for i, _ in program.input.tests}}
    for b in program.blocks:
        if isinstance(b, (RuleBlock, DecisionListBlock)):
            have[b.name] = set(range(b.shape[0])) if b is program.output else {r.unit for r in b.rules}
    out = []
    for block, units in names:
        kept = tuple((u, n) for u, n in units if u in have.get(block, ()))
        if kept:
            out.append((block, kept))
    return tuple(out)
