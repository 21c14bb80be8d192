"""SWI-Prolog export: every rule of the program as a clause a person can read.

The clause form (one file; ``swipl program.pl`` runs it standalone):

* Data: ``x(Sample, I..., Value)``, one fact per value of the cut tensor at its per-sample
  coordinates ``I...``: ``x(S, 21, V)`` for a vector, ``x(S, C, Y, X, V)`` for an image.
  `data_facts` writes them; the exported file declares ``x/N`` dynamic.
* Input tests, one clause each, on the predicate named after the cut tensor. Per unit:
  ``'relu_2'(S, 21) :- x(S, 21, V), V >= 9.3975.``; per channel, one clause covers every
  position of the channel: ``'image'(S, 0, Y, X) :- x(S, 0, Y, X, V), V >= 0.96875.``
* Dense rules, one clause per unit, on the predicate named after the block:
  ``'node_linear_1'(S, 3) :- at_least(7, [\\+ 'node_linear'(S, 21), 'node_linear'(S, 28)]).``
  A literal names its source atom by its coordinates in the source's shape.
* Convolution rules, one first-order clause per output channel, shared by every position:
  ``'c2'(S, 5, Y, X) :- position(Y, X, 8, 8), at_least(3, ['c1'(S, 2, Y - 1, X), \\+ 'c1'(S, 0, Y, X + 1)]).``
  A literal reads its source at ``(sy * Y + dy, sx * X + dx)`` (``2 * Y - 1`` for stride 2).
  Outside its grid an atom holds only by a padding clause, written for the channels whose
  padding passes the threshold (the network pads with 0, so the atom is ``0 >= threshold``):
  ``'c1'(_, 4, Y, X) :- outside(Y, X, 8, 8).``
* Pool blocks, one clause (some position of the window holds; geometry: the ``maxpool/7`` fact):
  ``'p'(S, C, Y, X) :- window('p', Y, X, Y1, X1), 'c2'(S, C, Y1, X1).``
* Index blocks, one clause per atom: ``'flat'(S, 17) :- 'p'(S, 1, 0, 1).``
* A decision list (the class block of a program with decision ``first``): ordered clauses with
  cuts, the first whose rule holds names the class, the default last:
  ``'out'(S, Class) :- at_least(2, ['h'(S, 4), \\+ 'h'(S, 7)]), !, Class = 3.`` ...
  ``'out'(_, 0).`` (the class is bound after the cut, so asking ``'out'(S, 1)`` is exact too).
* Header facts: ``program_name/1``, ``decision/1``, ``input(Tensor, Shape, Grain, Predicate)``,
  ``block(Order, Name, Kind, Predicate, Source, Shape)`` (Source: the predicate the block reads),
  ``stride(Predicate, SY, SX)``, ``maxpool(Predicate, kernel(..), strides(..), pads(Top, Left,
  Bottom, Right), dilations(..), ceil_mode(Bool), onnx(Input, Output, Node))``, and per rule
  ``threshold(Predicate, Unit, T)`` (the head split the atom stands for), and per named atom
  ``label(Predicate, Unit, Name)`` (the user's name: Unit is the flat index, a channel or a class).
* Names (`Program.names`): besides the ``label/3`` facts, each input test and rule that speaks of a
  named atom has a comment saying it in names, as a person would write it:
  ``% 'malignant' :- at_least(2, ['worst radius' >= 16.8, \\+ 'mean texture' >= 21.3]).``
  (an atom without a name keeps its clause form there; thresholds in the shortest form that reads
  back in float32 when they are float32, as in the rule cards). Comments are only read by people; the
  ``label/3`` facts carry the names back (`mofn2logic.exporters.prolog_read`).

Predicates are named after the blocks and the cut tensor, every name a quoted atom
(`ATOMS.quote`). A name that is an SWI-Prolog built-in, a runtime or header predicate, starts
with ``$``, or is taken already (the cut tensor named like a block) gets the first free suffix
``_2``, ``_3``, ..., blocks first in order, then the input; the ``block``/``input`` facts say
which predicate is which.

The helpers (``at_least/2``, ``position/4``, ``outside/4``, ``window/5``, ``predict/2``,
``margins/2``, ``explain/3``, ``classify_file/2``) are the package file
``grammars/mofn_runtime.pl``, copied verbatim at the end of every exported file; it documents
the proof term of ``explain/3``. Rule and pool predicates are tabled (``:- table``), except the
classes: ``predict/2`` and ``explain/3`` ask the clauses top-down, one sample at a time, while
``classify_file/2`` reads the same clauses and evaluates them bottom-up, block by block, on every
sample at once (an atom's truth over the samples is one integer, a rule a bit-sliced count).
`mofn2logic.exporters.prolog_read` reads the clauses back into the identical program.
"""

from __future__ import annotations

import functools
import os
import re
from importlib import resources
from typing import Any

import numpy as np

from mofn2logic.exporters.base import Printer
from mofn2logic.exporters.quoting import Quoting
from mofn2logic.exporters.wording import shortest
from mofn2logic.ir.program import (
    AtomLiteral,
    DecisionListBlock,
    IndexBlock,
    InputTests,
    MofNRule,
    PoolBlock,
    Program,
    RuleBlock,
    pad_truth,
    source_shape,
)

# Prolog's quoted-atom escapes (ISO + SWI): backslash, quote and control characters.
ATOMS = Quoting({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a", "\b": "\\b",
                 "\f": "\\f", "\v": "\\v", "\0": "\\0\\"}, "\\x{:x}\\", r"\\x([0-9a-fA-F]+)\\")

RUNTIME = "mofn_runtime.pl"
# The header facts a program holds, and the data predicate: no block may take these names.
FACTS = ("program_name", "decision", "input", "block", "stride", "maxpool", "threshold", "label", "x")
# Atoms SWI-Prolog reads specially as a predicate name or inside `:- table Name/Arity`.
SPECIAL = (":", "|", "/", "//")
WIDTH = 100  # a clause longer than this is broken over lines


@functools.cache
def runtime_text() -> str:
    """The runtime (`grammars/mofn_runtime.pl`), as shipped in the package."""
    return resources.files("mofn2logic.grammars").joinpath(RUNTIME).read_text(encoding="utf-8")


def runtime_marker() -> str:
    """The runtime's first line: where the program ends in an exported file."""
    return runtime_text().split("\n", 1)[0]


@functools.cache
def reserved_names() -> frozenset[str]:
    """Names no block predicate may take: SWI-Prolog's built-ins and special atoms, the runtime's
    predicates and the header facts."""
    runtime = set(re.findall(r"^([a-z]\w*)\s*(?:\(|:-|\.)", runtime_text(), re.M))
    return frozenset(SWI_BUILTINS.split()) | runtime | set(FACTS) | set(SPECIAL)


def quote_atom(name: str) -> str:
    """A Prolog quoted atom for any string."""
    return ATOMS.quote(name)


def number(v: float) -> str:
    """A float in plain Prolog syntax (a digit on both sides of the dot; exponent allowed); the
    shortest text that reads back as the same double (`repr`)."""
    s = repr(float(v))
    if s in ("inf", "-inf", "nan"):
        raise ValueError(f"{s} has no Prolog float syntax")
    mant, _, exp = s.partition("e")
    if "." not in mant:
        mant += ".0"
    return mant + ("e" + exp if exp else "")


def _data_number(v: float) -> str:
    if np.isnan(v):
        return "1.5NaN"
    if np.isinf(v):
        return "1.0Inf" if v > 0 else "-1.0Inf"
    return number(v)


def _list(values) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def predicate_names(p: Program) -> dict[str, str]:
    """Block name -> its predicate's name, and "" -> the input tests' predicate: unique, none a
    built-in, runtime or header predicate (first free suffix _2, _3, ..., blocks first)."""
    reserved = reserved_names()
    taken: set[str] = set()

    def pick(name: str) -> str:
        cand, k = name, 2
        while cand in taken or cand in reserved or cand == name and name.startswith("$"):
            cand, k = f"{name}_{k}", k + 1
        taken.add(cand)
        return cand

    out = {b.name: pick(b.name) for b in p.blocks}
    out[""] = pick(p.input.tensor)
    return out


def coordinates(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major coordinates of a flat index."""
    out = []
    for d in reversed(shape):
        flat, r = divmod(int(flat), int(d))
        out.append(r)
    return tuple(reversed(out))


def _offset(var: str, stride: int, d: int) -> str:
    base = var if stride == 1 else f"{stride} * {var}"
    return base if d == 0 else f"{base} + {d}" if d > 0 else f"{base} - {-d}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _wrap_list(prefix: str, items: list[str], suffix: str) -> str:
    """`prefix[items]suffix` on one line, or broken after commas with the items aligned."""
    one = prefix + "[" + ", ".join(items) + "]" + suffix
    if len(one) <= WIDTH:
        return one
    indent = " " * (len(prefix) + 1)
    lines, line = [], prefix + "["
    for k, item in enumerate(items):
        piece = item + ("," if k < len(items) - 1 else "]" + suffix)
        if k and len(line) + 1 + len(piece) > WIDTH:
            lines.append(line)
            line = indent + piece
        else:
            line += (" " if k else "") + piece
    lines.append(line)
    return "\n".join(lines)


class PrologPrinter(Printer):
    """The program as SWI-Prolog clauses (module docstring); options: ``comments`` (a comment
    line per block), ``runtime`` (append the runtime so the file runs standalone)."""

    target = "Prolog"
    options = {"comments": True, "runtime": True}

    def _print_Program(self, p: Program) -> str:
        from mofn2logic.program.check import check_program

        check_program(p, "the program to export")
        self.program = p
        self.pred = predicate_names(p)
        self.q = {k: quote_atom(v) for k, v in self.pred.items()}
        inp = p.input
        lines = [
            ":- encoding(utf8).",
            f"% {quote_atom(p.name)}: an M-of-N logic program exported by mofn2logic for SWI-Prolog.",
            "% Load data as x(Sample, I..., Value) facts (one per value of the cut tensor at its coordinates),",
            "% then ask predict(Sample, Class) or explain(Sample, Class, Proof); batch: classify_file(File, atoms).",
            "% at_least(M, Literals): at least M of the literals hold (\\+ A: A does not hold). The runtime",
            "% at the end of the file documents every helper and the proof term of explain/3.",
            f":- dynamic x/{len(inp.shape) + 2}.",
            ":- discontiguous threshold/3, stride/3, maxpool/7.",
            "",
            f"program_name({quote_atom(p.name)}).",
            f"decision({p.decision}).",
            f"input({quote_atom(inp.tensor)}, {_list(inp.shape)}, {'channel' if inp.per_channel else 'unit'}, "
            f"{self.q['']}).",
        ]
        for k, b in enumerate(p.blocks, 1):
            kind = (b.kind if isinstance(b, RuleBlock) else "pool" if isinstance(b, PoolBlock)
                    else "decision_list" if isinstance(b, DecisionListBlock) else "index")
            lines.append(f"block({k}, {quote_atom(b.name)}, {kind}, {self.q[b.name]}, {self.q[b.source]}, "
                         f"{_list(b.shape)}).")
        for b in p.blocks:
            if isinstance(b, RuleBlock) and (b.kind == "conv" or tuple(b.stride) != (1, 1)):
                lines.append(f"stride({self.q[b.name]}, {b.stride[0]}, {b.stride[1]}).")
            elif isinstance(b, PoolBlock):
                mp = b.pool
                lines.append(
                    f"maxpool({self.q[b.name]}, kernel({mp.kernel[0]}, {mp.kernel[1]}), "
                    f"strides({mp.strides[0]}, {mp.strides[1]}), pads({', '.join(str(int(v)) for v in mp.pads)}), "
                    f"dilations({mp.dilations[0]}, {mp.dilations[1]}), ceil_mode({str(bool(mp.ceil_mode)).lower()}), "
                    f"onnx({quote_atom(mp.input)}, {quote_atom(mp.output)}, {quote_atom(mp.node)})).")
        for block, units in p.names:
            lines += [f"label({self.q[block]}, {u}, {quote_atom(n)})." for u, n in units]
        # Channels read through padding that holds (0 >= threshold): a padding clause each.
        self.padding: dict[str, list[int]] = {}
        for b in p.blocks:
            if isinstance(b, RuleBlock) and b.kind == "conv" and b.source not in self.padding:
                self.padding[b.source] = [c for c in range(source_shape(p, b.source)[0]) if pad_truth(p, b.source, c)]
        lines.append("")
        lines.append(self._print(inp))
        for b in p.blocks:
            lines.append("")
            lines.append(self._print(b))
        text = "\n".join(lines) + "\n"
        if self.settings["runtime"]:
            text += "\n" + runtime_text()
        return text

    def _padding(self, name: str) -> list[str]:
        """Padding clauses of the block (or input, name "") that a conv reads outside its grid."""
        channels = self.padding.get(name, [])
        if not channels:
            return []
        _, h, w = source_shape(self.program, name)
        lines = self._comment(f"padding outside the {h} x {w} grid: 0 passes the threshold of "
                              f"{_count(len(channels), 'channel')[2:]} {', '.join(map(str, channels))}")
        return lines + [f"{self.q[name]}(_, {c}, Y, X) :- outside(Y, X, {h}, {w})." for c in channels]

    @staticmethod
    def _no_clauses(pred: str, arity: int, why: str) -> str:
        """Declares a predicate that has no clause, so that asking it fails (no atom holds)."""
        return f":- discontiguous {pred}/{arity}.  % {why}: no atom holds"

    def _comment(self, text: str) -> list[str]:
        return [f"% ---- {text}"] if self.settings["comments"] else []

    # ---- input tests -------------------------------------------------------------------
    def _print_InputTests(self, inp: InputTests) -> str:
        pred = self.q[""]
        lines = self._comment(f"input tests on tensor {quote_atom(inp.tensor)}, per "
                              f"{'channel' if inp.per_channel else 'unit'}: {pred}{self._args(inp.shape)}")
        if not inp.tests and not self.padding.get(""):
            lines.append(self._no_clauses(pred, len(inp.shape) + 1, "no tests"))
        for idx, t in inp.tests:
            if inp.per_channel:
                rest = self._vars(len(inp.shape) - 1)
                coords = ", ".join([str(int(idx)), *rest])
            else:
                coords = ", ".join(str(c) for c in coordinates(idx, inp.shape))
            name = self.program.atom_name("", idx)
            said = f"  % {quote_atom(name)} >= {shortest(t)}" if name is not None and self.settings["comments"] else ""
            lines.append(f"{pred}(S, {coords}) :- x(S, {coords}, V), V >= {number(t)}.{said}")
        return "\n".join(lines + self._padding(""))

    @staticmethod
    def _vars(n: int) -> list[str]:
        return ["Y", "X"] if n == 2 else [f"I{k}" for k in range(1, n + 1)]

    @staticmethod
    def _args(shape: tuple[int, ...]) -> str:
        names = ["C", "Y", "X"] if len(shape) == 3 else ["U"] if len(shape) == 1 else \
            [f"I{k}" for k in range(1, len(shape) + 1)]
        return "(" + ", ".join(["S", *names]) + ")"

    # ---- rule blocks ---------------------------------------------------------------------
    def _print_RuleBlock(self, b: RuleBlock) -> str:
        pred, src = self.q[b.name], self.q[b.source]
        last = b is self.program.blocks[-1]
        if b.kind == "dense":
            about = f"dense {quote_atom(b.name)}, {_count(b.shape[0], 'unit')}{' (the classes)' if last else ''}, " \
                    f"reads {src}"
        else:
            about = (f"conv {quote_atom(b.name)}, {_count(b.shape[0], 'channel')} on a {b.shape[1]} x {b.shape[2]} "
                     f"grid, stride {b.stride[0]} x {b.stride[1]}, reads {src}")
        lines = self._comment(about)
        if not b.rules and not self.padding.get(b.name):
            lines.append(self._no_clauses(pred, len(b.shape) + 1, "no rules"))
        if not last:
            lines.append(f":- table {pred}/{len(b.shape) + 1}.")
        lines += [f"threshold({pred}, {r.unit}, {number(r.threshold)})." for r in b.rules if r.threshold is not None]
        for r in b.rules:
            lines += self._said(b, r)
            lines.append(self._rule(b, r))
        return "\n".join(lines + self._padding(b.name))

    def _said(self, b: RuleBlock | DecisionListBlock, r: MofNRule) -> list[str]:
        """The rule in the user's names, as comment lines, when it speaks of a named atom (module docstring)."""
        if not self.program.names or not self.settings["comments"]:
            return []
        sample = "S" if r.lits else "_"
        head_name = self.program.atom_name(b.name, r.unit)
        named = head_name is not None
        lits = []
        for li in r.lits:
            word = self._named_literal(b, li)
            named = named or word is not None
            lits.append(self._literal(b, li, sample) if word is None else word if li.positive else f"\\+ {word}")
        if not named:
            return []
        head = quote_atom(head_name) if head_name is not None else (
            f"{self.q[b.name]}({sample}, {r.unit})" if b.kind != "conv" else f"{self.q[b.name]}({sample}, {r.unit}, Y, X)")
        return ["% " + line for line in _wrap_list(f"{head} :- at_least({r.m}, ", lits, ").").split("\n")]

    def _named_literal(self, b: RuleBlock | DecisionListBlock, li: AtomLiteral) -> str | None:
        """A dense literal's source atom in the user's name (followed through index blocks), with its
        test for an input: ``'worst radius' >= 16.8``; None when it has no name."""
        if isinstance(b, RuleBlock) and b.kind == "conv":
            name = self.program.atom_name(self._origin(b.source), li.src)
            if name is None:
                return None
            dy, dx = li.offset or (0, 0)
            return f"{quote_atom(name)} at ({dy}, {dx})"
        source, idx = b.source, li.src
        while source != "" and isinstance(self.program.block(source), IndexBlock):
            blk = self.program.block(source)
            idx, source = blk.index[idx], blk.source  # type: ignore[union-attr]
        shape = source_shape(self.program, source)
        key = idx if len(shape) == 1 or (source == "" and not self.program.input.per_channel) else idx // int(
            np.prod(shape[1:]))
        name = self.program.atom_name(self._origin(source), key)
        if name is None:
            return None
        t = dict(self.program.input.tests).get(idx)
        if source == "" and not self.program.input.per_channel and t is not None:
            return f"{quote_atom(name)} >= {shortest(t)}"
        if len(shape) > 1:
            return f"{quote_atom(name)}{list(coordinates(idx, shape)[1:])}"
        return quote_atom(name)

    def _origin(self, source: str) -> str:
        while source != "" and isinstance(self.program.block(source), PoolBlock):
            source = self.program.block(source).source
        return source

    def _rule(self, b: RuleBlock, r: MofNRule) -> str:
        pred = self.q[b.name]
        sample = "S" if r.lits else "_"
        lits = [self._literal(b, li, sample) for li in r.lits]
        if b.kind == "dense":
            head, guard = f"{pred}({sample}, {r.unit})", ""
        else:
            head, guard = f"{pred}({sample}, {r.unit}, Y, X)", f"position(Y, X, {b.shape[1]}, {b.shape[2]}), "
        one = _wrap_list(f"{head} :- {guard}at_least({r.m}, ", lits, ").")
        if "\n" not in one:
            return one
        guard_line = f"    {guard.rstrip()}\n" if guard else ""
        return f"{head} :-\n{guard_line}" + _wrap_list(f"    at_least({r.m}, ", lits, ").")

    def _print_DecisionListBlock(self, b: DecisionListBlock) -> str:
        pred, src = self.q[b.name], self.q[b.source]
        k = b.shape[0]
        lines = self._comment(f"decision list {quote_atom(b.name)}, {k} class{'' if k == 1 else 'es'}, reads {src}: "
                              f"the first rule that holds decides, else class {b.default}")
        for r in b.rules:
            lines += self._said(b, r)
            sample = "S" if r.lits else "_"
            lits = [self._literal(b, li, sample) for li in r.lits]
            head, tail = f"{pred}({sample}, Class)", f"), !, Class = {r.unit}."
            one = _wrap_list(f"{head} :- at_least({r.m}, ", lits, tail)
            lines.append(one if "\n" not in one else f"{head} :-\n" + _wrap_list(f"    at_least({r.m}, ", lits, tail))
        default = self.program.atom_name(b.name, b.default)
        if default is not None and self.settings["comments"]:
            lines.append(f"% otherwise {quote_atom(default)}.")
        lines.append(f"{pred}(_, {b.default}).")
        return "\n".join(lines)

    def _literal(self, b: RuleBlock | DecisionListBlock, li: AtomLiteral, sample: str) -> str:
        src = self.q[b.source]
        if isinstance(b, DecisionListBlock) or b.kind == "dense":
            coords = ", ".join(str(c) for c in coordinates(li.src, source_shape(self.program, b.source)))
        else:
            assert li.offset is not None  # a checked program: conv literals have offsets
            (dy, dx), (sy, sx) = li.offset, b.stride
            coords = f"{li.src}, {_offset('Y', sy, dy)}, {_offset('X', sx, dx)}"
        atom = f"{src}({sample}, {coords})"
        return atom if li.positive else f"\\+ {atom}"

    # ---- structural blocks ---------------------------------------------------------------
    def _print_PoolBlock(self, b: PoolBlock) -> str:
        pred, src = self.q[b.name], self.q[b.source]
        k = b.pool
        lines = self._comment(f"max pool {quote_atom(b.name)}, {k.kernel[0]} x {k.kernel[1]} windows, reads {src}: "
                              "an atom holds when some position of its window holds")
        lines.append(f":- table {pred}/4.")
        lines.append(f"{pred}(S, C, Y, X) :- window({pred}, Y, X, Y1, X1), {src}(S, C, Y1, X1).")
        return "\n".join(lines + self._padding(b.name))

    def _print_IndexBlock(self, b: IndexBlock) -> str:
        pred, src = self.q[b.name], self.q[b.source]
        lines = self._comment(f"index {quote_atom(b.name)}, shape {list(b.shape)}, reads {src}: each atom is "
                              "a copy of one source atom")
        shape = source_shape(self.program, b.source)
        for k, i in enumerate(b.index):
            out = ", ".join(str(c) for c in coordinates(k, b.shape))
            into = ", ".join(str(c) for c in coordinates(i, shape))
            lines.append(f"{pred}(S, {out}) :- {src}(S, {into}).")
        return "\n".join(lines + self._padding(b.name))


def to_prolog(program: Program, **options: Any) -> str:
    """The program as an SWI-Prolog file (module docstring); options: comments, runtime."""
    return PrologPrinter(**options).doprint(program)


def write_prolog(program: Program, path: str | os.PathLike[str], **options: Any) -> None:
    from mofn2logic.files import write_text_atomic

    write_text_atomic(path, to_prolog(program, **options))


def data_facts(x: np.ndarray, program: Program) -> str:
    """The samples as x(Sample, I..., Value) facts, one per value, at the cut tensor's per-sample
    coordinates; samples are numbered from 0 in order."""
    shape = tuple(int(d) for d in program.input.shape)
    x = np.asarray(x, dtype=np.float64).reshape((len(x), *shape))
    lines = [":- encoding(utf8).", f":- dynamic x/{len(shape) + 2}."]
    index = [", ".join(str(c) for c in np.unravel_index(i, shape)) + ", " for i in range(int(np.prod(shape)))]
    for s, row in enumerate(x.reshape(len(x), -1)):
        lines.extend(f"x({s}, {at}{_data_number(v)})." for at, v in zip(index, row.tolist()))
    return "\n".join(lines) + "\n"


# SWI-Prolog 9's built-in predicate names (system module and user hooks, '$' names left out),
# listed by: findall(N, ((predicate_property(system:H, defined) ; predicate_property(user:H, defined),
# \+ predicate_property(user:H, imported_from(_))), functor(H, N, _)), L). A block named like one
# of them gets a suffix, so the exported file never redefines a built-in.
SWI_BUILTINS = r"""
! *-> , -> . :< ; < <meta-call> = =.. =:= =< == =@= =\= > >:< >= ?= @ @< @=< @> @>= [|] \+ \= \== \=@=
abolish abolish_all_tables abolish_module_tables abolish_monotonic_tables abolish_nonincremental_tables
abolish_private_tables abolish_shared_tables abolish_table_subgoals abort absolute_file_name access_file
acyclic_term add_import_module answer_count_restraint append apply arg assert asserta assertz
at_end_of_stream at_halt atom atom_chars atom_codes atom_concat atom_length atom_number atom_prefix
atom_string atom_to_term atomic atomic_concat atomic_list_concat atomics_to_string attach_packs attvar
autoload autoload_path b_getval b_set_dict b_setval bagof between blob bounded_number break byte_count call
call_cleanup call_continuation call_dcg call_residue_vars call_shared_object_function call_with_depth_limit
call_with_inference_limit callable cancel_halt catch catch_with_backtrace char_code char_conversion char_type
character_count clause clause_property close close_shared_object code_type collation_key compare
compile_aux_clauses compile_predicates compiling compound compound_name_arguments compound_name_arity consult
context_module copy_predicate_clauses copy_stream_data copy_term copy_term_nat create_prolog_flag
current_arithmetic_function current_atom current_blob current_char_conversion current_engine current_flag
current_format_predicate current_functor current_input current_key current_locale current_module current_op
current_output current_predicate current_prolog_flag current_resource current_signal current_table
current_transaction current_trie cyclic_term date_time_stamp dcg_translate_rule default_module del_attr
del_attrs del_dict delete_directory delete_file delete_import_module det deterministic dict_create dict_pairs
directory_files discontiguous divmod downcase_atom duplicate_term dwim_match dwim_predicate dynamic
engine_create engine_destroy engine_fetch engine_next engine_next_reified engine_post engine_self
engine_yield ensure_loaded erase exception exists_directory exists_file exists_source expand_answer
expand_file_name expand_file_search_path expand_goal expand_query expand_term export fail false fast_read
fast_term_serialized fast_write file_base_name file_directory_name file_name_extension file_search_path
fill_buffer findall findnsols flag float float_class float_parts flush_output forall format format_predicate
format_time freeze frozen functor garbage_collect garbage_collect_atoms garbage_collect_clauses
gc_file_search_cache get get0 get_attr get_attrs get_byte get_char get_code get_dict get_flag get_single_char
get_string_code get_time getenv goal_expansion ground halt ignore import import_module initialization
initialize instance integer is is_absolute_file_name is_dict is_engine is_list is_most_general_term is_stream
is_thread is_trie keysort known_licenses leash length library_directory license line_count line_position
load_files locale_create locale_destroy locale_property make_directory make_library_index malloc_property
memberchk message_hook message_property message_queue_create message_queue_destroy message_queue_property
message_queue_set message_to_string meta_predicate module module_property module_transparent msort multifile
mutex_create mutex_destroy mutex_lock mutex_property mutex_statistics mutex_trylock mutex_unlock
mutex_unlock_all name nb_current nb_delete nb_getval nb_link_dict nb_linkarg nb_linkval nb_set_dict nb_setarg
nb_setval nl non_terminal nonground nonvar noprofile noprotocol normalize_space not not_exists notrace
nth_clause nth_integer_root_and_remainder number number_chars number_codes number_string numbervars on_signal
once op open open_null_stream open_resource open_shared_object open_string open_xterm peek_byte peek_char
peek_code peek_string phrase plus portray predicate_option_mode predicate_option_type predicate_property
print print_message print_message_lines print_toplevel_variables profiler prolog prolog_alert_signal
prolog_choice_attribute prolog_current_choice prolog_current_frame prolog_cut_to prolog_debug
prolog_file_type prolog_frame_attribute prolog_interrupt prolog_list_goal prolog_listen prolog_load_context
prolog_load_file prolog_nodebug prolog_skip_frame prolog_skip_level prolog_stack_property
prolog_to_os_filename prolog_unlisten prompt prompt1 protocol protocola protocolling public put put_attr
put_attrs put_byte put_char put_code put_dict qcompile radial_restraint random_property rational read
read_clause read_link read_pending_chars read_pending_codes read_string read_term read_term_from_atom
read_term_with_history recorda recorded recordz redefine_system_predicate reexport register_iri_scheme
reload_library_index rename_file repeat require reset reset_profiler residual_goals resource retract
retractall rule same_file same_term see seeing seek seen select_dict set_end_of_stream set_flag set_input
set_locale set_malloc set_module set_output set_prolog_IO set_prolog_flag set_prolog_gc_thread
set_prolog_stack set_random set_stream set_stream_position set_system_IO setarg setenv setlocale setof
setup_call_catcher_cleanup setup_call_cleanup shell shift shift_for_copy sig_atomic sig_block sig_pending
sig_remove sig_unblock size_abstract_term size_file skip sleep snapshot sort source_file source_file_property
source_location split_string stamp_date_time start_abstract_tabling start_moded_tabling
start_subsumptive_tabling start_tabling statistics stream_pair stream_position_data stream_property string
string_bytes string_chars string_code string_codes string_concat string_length string_lower string_upper
strip_module style_check sub_atom sub_atom_icasechk sub_string subsumes_term succ tab table tabled_call tell
telling term_attvars term_expansion term_hash term_singletons term_string term_to_atom term_variables
text_to_string thread_affinity thread_alias thread_create thread_detach thread_exit thread_get_message
thread_idle thread_initialization thread_join thread_local thread_message_hook thread_peek_message
thread_property thread_self thread_send_message thread_setconcurrency thread_signal thread_statistics
thread_update thread_wait throw time_file tmp_file tmp_file_stream tnot told trace tracing transaction
transaction_updates trie_delete trie_destroy trie_gen trie_gen_compiled trie_insert trie_lookup trie_new
trie_property trie_term trie_update trim_heap trim_stacks true tty_get_capability tty_goto tty_put tty_size
ttyflush undefined undo unifiable unify_with_occurs_check unload_file unsetenv untable unwrap_predicate
upcase_atom use_foreign_library use_module var var_number var_property variant_hash variant_sha1
verbose_expansion version visible volatile wait_for_input wildcard_match with_mutex with_output_to
with_tty_raw working_directory write write_canonical write_length write_term writeln writeq zip_clone
zip_close_ zip_file_info_ zip_lock zip_open_stream zip_unlock zipper_goto zipper_open_current
zipper_open_new_file_in_zip
"""
