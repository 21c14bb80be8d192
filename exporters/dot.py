"""Graphviz DOT export: the rule graph as small multiples that stay readable as programs grow.

Every rule is drawn as its own star: the rule node ("class 3: at least 7 of 9") with one node per
literal beside it, so no two edges cross inside a rule. A literal node names the atom it tests
(an input test with its threshold, a hidden unit, a channel at an offset), green and solid when
it must hold, red and dashed when it must not. Atoms shared by several rules are repeated rather
than wired across the page. Each rule sits in a cluster of its own (a class of the output layer,
a unit of a hidden layer), and each layer in a cluster; the output layer comes first. Rules with
more than `max_literals` literals show the first ones (the search's order: the strongest weights
first) and one node counting the rest; hidden layers show the `max_units` rules with the most
literals and say how many are left out; `classes` ("3,8") draws only those classes. Every node
and edge has an SVG tooltip with the full test. A legend explains the marks.

A decision list (the class block of a program with decision ``first``) is drawn in its order: its
rules numbered from 1 ("1. class 3: at least 2 of 3"), each with its literals, chained by
"else" edges to the next and, after the last, to the default class ("otherwise class 0"). An
order cannot be filtered, so `classes` does not apply; past `max_units` rules the rest are
counted in one node before the default.
"""

from __future__ import annotations

import os

from mofn2logic.exporters.base import Printer
from mofn2logic.exporters.wording import AtomNames, shortest
from mofn2logic.ir.program import DecisionListBlock, MofNRule, Program, RuleBlock

POSITIVE, NEGATIVE = "#2b7a3b", "#b03030"
LAYOUT_SECONDS = 120  # Graphviz lays out thousands of nodes in seconds; past this something is wrong


def quote_id(text: str) -> str:
    """A DOT double-quoted ID (or label) for any string: user text stays literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


class DotPrinter(Printer):
    target = "DOT"
    options = {"max_units": 24, "max_literals": 12, "rankdir": "LR", "legend": True, "classes": ""}

    def _print_Program(self, p: Program) -> str:
        self.p = p
        self.names = AtomNames(p)
        lines = [f"digraph {quote_id(p.name or 'program')} {{",
                 f"  graph [rankdir={self.settings['rankdir']}, fontname=\"Helvetica\", fontsize=11, nodesep=0.06, "
                 f"ranksep=0.35, newrank=true, tooltip={quote_id('rules of ' + (p.name or 'the program'))}];",
                 '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica", fontsize=9, '
                 'height=0.2, margin="0.06,0.02"];',
                 '  edge [arrowsize=0.4];']
        if self.settings["legend"]:
            lines += self._legend()
        for b in reversed(p.atom_blocks()):
            lines += self._list(b) if isinstance(b, DecisionListBlock) else self._layer(b)
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _legend(self) -> list[str]:
        return [
            '  subgraph "cluster_legend" {',
            '    graph [label="legend", fontsize=9, style="rounded,dashed", color="#bbbbbb"];',
            '    "legend/rule" [label="rule: at least M of its N literals hold", fillcolor="#dbe9f6"];',
            f'    "legend/pos" [label="literal that must hold", color="{POSITIVE}"];',
            f'    "legend/neg" [label="literal that must not hold", color="{NEGATIVE}", style="rounded,filled,dashed"];',
            f'    "legend/pos" -> "legend/rule" [color="{POSITIVE}"];',
            f'    "legend/neg" -> "legend/rule" [color="{NEGATIVE}", style=dashed];',
            "  }",
        ]

    def _layer(self, b: RuleBlock) -> list[str]:
        is_output = b is self.p.output
        rules = list(b.rules)
        if is_output and self.settings["classes"]:  # "3,8": only these classes (a picture of a few)
            wanted = {int(c) for c in str(self.settings["classes"]).split(",") if c.strip()}
            rules = [r for r in rules if r.unit in wanted]
        if not is_output:
            keep = {r.unit for r in sorted(rules, key=lambda r: (-r.n, r.unit))[: self.settings["max_units"]]}
            rules = [r for r in rules if r.unit in keep]
        what = "classes" if is_output else f"{b.kind} layer"
        lines = [f"  subgraph {quote_id('cluster_' + b.name)} {{",
                 f"    graph [label={quote_id(f'{b.name} ({what})')}, style=rounded, color=\"#999999\"];"]
        for r in rules:
            lines += self._rule(b, r, is_output)
        left = len(b.rules) - len(rules)
        if left:
            lines.append(f"    {quote_id(b.name + '|more')} [label={quote_id(f'... {left} more rules of {b.name}')}, "
                         "shape=plaintext, style=\"\"];")
        lines.append("  }")
        return lines

    def _list(self, b: DecisionListBlock) -> list[str]:
        shown = b.rules[: self.settings["max_units"]]
        lines = [f"  subgraph {quote_id('cluster_' + b.name)} {{",
                 f"    graph [label={quote_id(f'{b.name} (decision list: the first rule that holds names the class)')}, "
                 "style=rounded, color=\"#999999\"];"]
        ids = []
        for k, r in enumerate(shown, 1):
            lines += self._rule(b, r, True, key=f"rule{k}", head=f"{k}. {self.names.head(b, r.unit)}")
            ids.append(quote_id(f"{b.name}|rule{k}"))
        left = len(b.rules) - len(shown)
        if left:
            ids.append(quote_id(b.name + "|more"))
            lines.append(f"    {ids[-1]} [label={quote_id(f'... {left} more rules of {b.name}')}, shape=plaintext, "
                         "style=\"\"];")
        ids.append(quote_id(b.name + "|default"))
        text = f"otherwise {self.names.head(b, b.default)}"
        lines.append(f'    {ids[-1]} [label={quote_id(text)}, tooltip={quote_id(text)}, fillcolor="#dbe9f6"];')
        lines += [f'    {a} -> {z} [label="else", fontsize=8, style=dotted, color="#888888"];' for a, z in zip(ids, ids[1:])]
        lines.append("  }")
        return lines

    def _rule(self, b: RuleBlock | DecisionListBlock, r: MofNRule, is_output: bool, key: str | None = None,
              head: str | None = None) -> list[str]:
        """A rule's star; `key` names its nodes (default: the unit) and `head` its label (a decision list's)."""
        if head is None:
            head = self.names.head(b, r.unit)
        if r.threshold is not None:
            head += f" (>= {shortest(r.threshold)})"
        key = str(r.unit) if key is None else key
        rid = quote_id(f"{b.name}|{key}")
        text = f"{head}: at least {r.m} of {r.n}"
        fill = "#dbe9f6" if is_output else "#eeeeee"
        label = quote_id(f"{head}\nat least {r.m} of {r.n}")
        lines = [f"    subgraph {quote_id(f'cluster_{b.name}|{key}')} {{",
                 '      graph [label="", style="rounded,filled", color="#e3e3e3", fillcolor="#fbfbfb"];',
                 f'      {rid} [label={label}, tooltip={quote_id(text)}, fillcolor="{fill}"];']
        shown = r.lits[: self.settings["max_literals"]]
        for k, li in enumerate(shown):
            label, full = self.names.literal(b, li)
            lid = quote_id(f"{b.name}|{key}|{k}")
            mark = "" if li.positive else "NOT "
            style = f'color="{POSITIVE}"' if li.positive else f'color="{NEGATIVE}", style="rounded,filled,dashed"'
            tip = f"{head} {'needs' if li.positive else 'needs NOT'}: {full}"
            lines.append(f"      {lid} [label={quote_id(mark + label)}, tooltip={quote_id(tip)}, {style}];")
            estyle = f'color="{POSITIVE}"' if li.positive else f'color="{NEGATIVE}", style=dashed'
            lines.append(f"      {lid} -> {rid} [{estyle}, tooltip={quote_id(tip)}];")
        rest = r.lits[len(shown):]
        if rest:
            pos = sum(li.positive for li in rest)
            summary = f"+ {len(rest)} more: {pos} that must hold, {len(rest) - pos} that must not"
            mid = quote_id(f"{b.name}|{key}|more")
            lines.append(f"      {mid} [label={quote_id(summary)}, tooltip={quote_id(summary)}, shape=plaintext, style=\"\"];")
            lines.append(f"      {mid} -> {rid} [style=dotted, color=\"#888888\"];")
        lines.append("    }")
        return lines


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
    try:
        proc = subprocess.run([exe, "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=LAYOUT_SECONDS)
    except subprocess.TimeoutExpired as e:
        raise ExportError(f"Graphviz dot did not lay the graph out within {LAYOUT_SECONDS} s; expected a smaller "
                          "graph (lower max_units or max_literals)") from e
    if proc.returncode:
        raise ExportError(f"Graphviz dot failed: {' '.join(proc.stderr.split())[:300]}")
    return proc.stdout
