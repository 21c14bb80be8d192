"""Consistency of a program: sources defined before use, literals within their source, no cycles,
shapes that follow from their sources. The postcondition of compile and prune, and what every
reader checks before a program reaches an engine."""

from __future__ import annotations

import networkx as nx
import numpy as np

from mofn2logic.errors import ProgramError
from mofn2logic.ir.program import IndexBlock, PoolBlock, Program, RuleBlock


def check_program(p: Program, where: str = "program") -> None:
    g = nx.DiGraph()
    names = [b.name for b in p.blocks]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ProgramError(f"{where}: block {sorted(dup)[0]!r} is defined twice")
    if not p.blocks or not isinstance(p.blocks[-1], RuleBlock):
        raise ProgramError(f"{where}: the last block must be a dense or conv rule layer (the classes)")
    if p.decision != "margin":
        raise ProgramError(f"{where}: decision {p.decision!r} is unknown; expected margin")
    for b in p.blocks:
        if b.source != "" and b.source not in names:
            raise ProgramError(f"{where}: block {b.name!r} reads {b.source!r}, which is not defined")
        g.add_edge(b.name, b.source)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        raise ProgramError(f"{where}: blocks form a cycle: {' -> '.join(repr(a) for a, _ in cycle)}")
    defined = {""}
    for b in p.blocks:
        if b.source not in defined:
            raise ProgramError(f"{where}: block {b.name!r} reads {b.source!r} before it is defined")
        defined.add(b.name)
        src_shape = p.input.shape if b.source == "" else p.block(b.source).shape
        size = int(np.prod(src_shape))
        if isinstance(b, RuleBlock):
            limit = src_shape[0] if b.kind == "conv" else size
            units = b.shape[0]
            for r in b.rules:
                if not 0 <= r.unit < units:
                    raise ProgramError(f"{where}: block {b.name!r} has a rule for unit {r.unit} of {units}")
                for li in r.lits:
                    if not 0 <= li.src < limit:
                        raise ProgramError(f"{where}: rule {r.unit} of {b.name!r} uses atom {li.src} of {b.source or 'input'!r}, "
                                           f"which is not defined (it has {limit})")
                    if (li.offset is None) != (b.kind == "dense"):
                        raise ProgramError(f"{where}: rule {r.unit} of {b.name!r}: "
                                           f"{'conv literals need' if b.kind == 'conv' else 'dense literals take no'} an offset")
                if not 0 <= r.m <= r.n + 1:
                    raise ProgramError(f"{where}: rule {r.unit} of {b.name!r} asks {r.m} of {r.n} literals")
        elif isinstance(b, IndexBlock):
            if len(b.index) != int(np.prod(b.shape)) or any(not 0 <= i < size for i in b.index):
                raise ProgramError(f"{where}: index block {b.name!r} maps outside its source")
        elif isinstance(b, PoolBlock):
            if len(src_shape) != 3:
                raise ProgramError(f"{where}: pool block {b.name!r} reads a source without channels and positions")
            try:
                want = b.pool.output_shape(src_shape)
            except ProgramError as e:
                raise ProgramError(f"{where}: pool block {b.name!r}: {e}") from e
            if tuple(b.shape) != want:
                raise ProgramError(f"{where}: pool block {b.name!r} has shape {list(b.shape)}; its kernel over "
                                   f"{list(src_shape)} gives {list(want)}")
