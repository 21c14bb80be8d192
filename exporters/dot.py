"""Graphviz DOT export: the rule graph. Layers are ranks, atoms are nodes (a convolution's atom
is its channel: the rule is shared by positions), edges run from a literal's atom to the rule
that reads it, solid for positive literals and dashed for negated ones, and each rule node
says "M of N". Pool and index blocks are followed through to the atoms they carry. Layers
with more than `max_units` atoms with rules show the `max_units` with the most literals and
one summary node for the rest.
"""

from __future__ import annotations

import os
from collections import defaultdict

from mofn2logic.exporters.base import Printer
from mofn2logic.ir.program import IndexBlock, PoolBlock, Program, RuleBlock


def quote_id(text: str) -> str:
    """A DOT double-quoted ID for any string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


def _label(text: str) -> str:
    # inside a label, \\n etc. are escapes; keep user text literal
    return quote_id(text)


class DotPrinter(Printer):
    target = "DOT"
    options = {"max_units": 24, "max_inputs": 48, "rankdir": "BT"}

    def _print_Program(self, p: Program) -> str:
        self.p = p
        lines = [f"digraph {quote_id(p.name or 'program')} {{",
                 f"  rankdir={self.settings['rankdir']};",
                 '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica", fontsize=10];',
                 '  edge [arrowsize=0.5];']
        edges: dict[tuple[str, str], list[bool]] = defaultdict(list)
        shown: dict[str, set[int]] = {}
        rule_blocks = p.rule_blocks()
        for b in rule_blocks:
            rules = sorted(b.rules, key=lambda r: (-r.n, r.unit))
            keep = {r.unit for r in rules[: self.settings["max_units"]]} if b is not p.output else {r.unit for r in rules}
            shown[b.name] = keep
            rank = []
            for r in b.rules:
                if r.unit not in keep:
                    continue
                nid = self._node(b.name, r.unit)
                what = "class" if b is p.output else ("channel" if b.kind == "conv" else "unit")
                thr = "" if r.threshold is None else f" (>= {r.threshold:.4g})"
                lines.append(f"  {nid} [label={_label(f'{b.name} {what} {r.unit}{thr}')}, xlabel={_label(f'{r.m} of {r.n}')}"
                             + (', fillcolor="#dbe9f6"' if b is p.output else "") + "];")
                rank.append(nid)
                for li in r.lits:
                    for src_layer, src_unit in self._atoms(b, li.src):
                        edges[(self._node(src_layer, src_unit), nid)].append(li.positive)
            hidden = len(b.rules) - len(keep)
            if hidden > 0:
                nid = quote_id(f"{b.name}/more")
                lines.append(f"  {nid} [label={_label(f'... {hidden} more rules of {b.name}')}, shape=plaintext];")
                rank.append(nid)
            if rank:
                lines.append(f"  {{ rank=same; {' '.join(rank)} }}")
        inputs = sorted({s for s, _ in edges if s.startswith('"input')}, key=_natural)
        limit = self.settings["max_inputs"]
        tests = dict(p.input.tests)
        for nid in inputs[:limit]:
            unit = int(nid.rsplit("[", 1)[1].split("]")[0])
            what = "channel " if p.input.per_channel else ""
            text = f"{p.input.tensor} {what}{unit} >= {tests[unit]:.4g}" if unit in tests else f"{p.input.tensor} {unit}"
            lines.append(f'  {nid} [label={_label(text)}, shape=ellipse, fillcolor="#fff3d6"];')
        if len(inputs) > limit:
            lines.append(f'  "input/more" [label="... {len(inputs) - limit} more inputs", shape=plaintext];')
        dropped = set(inputs[limit:])
        # only edges between shown nodes
        visible = {self._node(name, u) for name, units in shown.items() for u in units}
        for (a, head), signs in sorted(edges.items()):
            if a in dropped or (not a.startswith('"input') and a not in visible):
                continue
            for positive in sorted(set(signs), reverse=True):
                n = signs.count(positive)
                style = 'color="#2b7a3b"' if positive else 'color="#b03030", style=dashed'
                label = f', label="{n}"' if n > 1 else ""
                lines.append(f"  {a} -> {head} [{style}{label}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _node(self, layer: str, unit: int) -> str:
        return quote_id(f"{layer or 'input'}[{unit}]")

    def _atoms(self, b: RuleBlock, src: int) -> list[tuple[str, int]]:
        """The rule-layer (or input) atoms behind literal `src` of block `b`, through pool/index blocks."""
        source = b.source
        if b.kind == "conv":
            return [self._channel(source, src)]
        idx = src
        while True:
            if source == "":
                shape = self.p.input.shape
                unit = idx // _plane(shape) if self.p.input.per_channel else idx
                return [("", unit)]
            blk = self.p.block(source)
            if isinstance(blk, IndexBlock):
                idx, source = blk.index[idx], blk.source
            elif isinstance(blk, PoolBlock):
                return [self._channel(blk.source, idx // _plane(blk.shape))]
            elif blk.kind == "conv":
                return [(blk.name, idx // _plane(blk.shape))]
            else:
                return [(blk.name, idx)]

    def _channel(self, source: str, channel: int) -> tuple[str, int]:
        while source != "" and isinstance(self.p.block(source), PoolBlock):
            source = self.p.block(source).source
        return (source, channel)


def _plane(shape) -> int:
    n = 1
    for d in shape[1:]:
        n *= int(d)
    return n


def _natural(s: str):
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def to_dot(program: Program, **options) -> str:
    return DotPrinter(**options).doprint(program)


def write_dot(program: Program, path: str | os.PathLike[str], **options) -> None:
    from mofn2logic.files import write_text_atomic

    write_text_atomic(path, to_dot(program, **options))


def to_svg(program: Program, **options) -> str:
    """The rule graph as SVG: `to_dot` laid out by Graphviz `dot` (ToolMissingError without it)."""
    return render_svg(to_dot(program, **options))


def write_svg(program: Program, path: str | os.PathLike[str], **options) -> None:
    from mofn2logic.files import write_text_atomic

    write_text_atomic(path, to_svg(program, **options))


def render_svg(dot_text: str) -> str:
    """Lay the graph out with Graphviz `dot` (a real layout engine, never our own)."""
    import shutil
    import subprocess

    from mofn2logic.errors import ExportError, ToolMissingError

    exe = shutil.which("dot")
    if exe is None:
        raise ToolMissingError("Graphviz 'dot' is not installed; install it with: sudo apt-get install graphviz")
    proc = subprocess.run([exe, "-Tsvg"], input=dot_text, capture_output=True, text=True)
    if proc.returncode:
        raise ExportError(f"Graphviz dot failed: {' '.join(proc.stderr.split())[:300]}")
    return proc.stdout
