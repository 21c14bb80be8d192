"""Read an exported Prolog program back into the IR: the clause form of `exporters/prolog.py`
(everything before the runtime), parsed with the Lark grammar `grammars/prolog.lark` by one
Transformer, then checked clause by clause against the forms the exporter writes. Export then
read gives the identical program (floats are written with `repr`); every program read goes
through `check_program`. Errors are `RuleSyntaxError` with file:line:column.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedInput, v_args

from mofn2logic.errors import Mofn2LogicError, RuleSyntaxError
from mofn2logic.exporters.prolog import ATOMS, runtime_marker
from mofn2logic.ir.program import (
    AtomLiteral,
    Block,
    DecisionListBlock,
    IndexBlock,
    InputTests,
    MofNRule,
    PoolBlock,
    Program,
    RuleBlock,
    pad_truth,
)
from mofn2logic.ir.steps import MaxPool

# ---- terms ------------------------------------------------------------------------------

class Atom(str):
    """A Prolog atom (its text, unquoted)."""


class Var(str):
    """A Prolog variable (its name)."""


@dataclass(frozen=True)
class Struct:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Neg:
    goal: Any


@dataclass(frozen=True)
class Ge:
    left: Any
    right: Any


@dataclass(frozen=True)
class Eq:
    left: Any
    right: Any


CUT = Atom("!")


@dataclass(frozen=True)
class Arith:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class Statement:
    kind: str  # "fact" | "clause" | "directive"
    head: Any
    body: tuple[Any, ...]
    line: int
    column: int


class _Terms(Transformer):
    """The parse tree as terms and statements (the one Transformer)."""

    def quoted(self, items: list[Token]) -> Atom:
        token = str(items[0])
        try:
            return Atom(ATOMS.unquote(token))
        except ValueError as e:
            raise RuleSyntaxError(f"{items[0].line}:{items[0].column}: atom {token[:40]}: {e}") from e

    def plain(self, items: list[Token]) -> Atom:
        return Atom(str(items[0]))

    def var(self, items: list[Token]) -> Var:
        return Var(str(items[0]))

    def number(self, items: list[Token]) -> int | float:
        text = str(items[0])
        return float(text) if any(c in text for c in ".eE") else int(text)

    def compound(self, items: list[Any]) -> Struct:
        return Struct(items[0], tuple(items[1:]))

    def plist(self, items: list[Any]) -> list[Any]:
        return [i for i in items if i is not None]

    def negation(self, items: list[Any]) -> Neg:
        return Neg(items[0])

    def at_least_as(self, items: list[Any]) -> Ge:
        return Ge(items[0], items[1])

    def unify(self, items: list[Any]) -> Eq:
        return Eq(items[0], items[1])

    def cut(self, items: list[Any]) -> Atom:
        return CUT

    def add(self, items: list[Any]) -> Arith:
        return Arith("+", items[0], items[1])

    def sub(self, items: list[Any]) -> Arith:
        return Arith("-", items[0], items[1])

    def mul(self, items: list[Any]) -> Arith:
        return Arith("*", items[0], items[1])

    def div(self, items: list[Any]) -> Arith:
        return Arith("/", items[0], items[1])

    def declaration(self, items: list[Any]) -> Struct:
        return Struct(str(items[0]), tuple(items[1:]))

    def body(self, items: list[Any]) -> tuple[Any, ...]:
        return tuple(items)

    @v_args(meta=True)
    def clause(self, meta: Any, items: list[Any]) -> Statement:
        return Statement("clause", items[0], items[1], meta.line, meta.column)

    @v_args(meta=True)
    def fact(self, meta: Any, items: list[Any]) -> Statement:
        return Statement("fact", items[0], (), meta.line, meta.column)

    @v_args(meta=True)
    def directive(self, meta: Any, items: list[Any]) -> Statement:
        return Statement("directive", items[0], (), meta.line, meta.column)

    def start(self, items: list[Statement]) -> list[Statement]:
        return items


@functools.cache
def _parser() -> Lark:
    return Lark.open_from_package("mofn2logic.grammars", "prolog.lark", parser="lalr", maybe_placeholders=True,
                                  propagate_positions=True)


# ---- clause forms -> program ---------------------------------------------------------------

HEADER = {"program_name": 1, "decision": 1, "input": 4, "block": 6, "stride": 3, "maxpool": 7, "threshold": 3,
          "label": 3}
DIRECTIVES = ("encoding", "table", "dynamic", "discontiguous")


class _Bad(Exception):
    def __init__(self, at: Statement | None, msg: str) -> None:
        super().__init__(msg)
        self.at = at


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _ints(v: Any, at: Statement, what: str, n: int | None = None) -> tuple[int, ...]:
    if not isinstance(v, list) or not all(_is_int(i) for i in v) or (n is not None and len(v) != n):
        raise _Bad(at, f"{what} is {_show(v)}; expected a list of {n or ''} integers".replace("  ", " "))
    return tuple(v)


def _struct(v: Any, name: str, arity: int, at: Statement, what: str) -> tuple[Any, ...]:
    if not isinstance(v, Struct) or v.name != name or len(v.args) != arity:
        raise _Bad(at, f"{what} is {_show(v)}; expected {name}/{arity}")
    return v.args


def _int_args(v: Any, name: str, arity: int, at: Statement) -> tuple[int, ...]:
    args = _struct(v, name, arity, at, name)
    if not all(_is_int(a) for a in args):
        raise _Bad(at, f"{name}(...) holds {_show(v)}; expected {arity} integers")
    return args


def _atom(v: Any, at: Statement, what: str) -> str:
    if not isinstance(v, Atom):
        raise _Bad(at, f"{what} is {_show(v)}; expected an atom")
    return str(v)


def _float(v: Any, at: Statement, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(at, f"{what} is {_show(v)}; expected a number")
    return float(v)


def _show(v: Any) -> str:
    if isinstance(v, Atom):
        return ATOMS.quote(v)
    if isinstance(v, Struct):
        return f"{ATOMS.quote(v.name)}({', '.join(_show(a) for a in v.args)})"
    if isinstance(v, Neg):
        return f"\\+ {_show(v.goal)}"
    if isinstance(v, Ge):
        return f"{_show(v.left)} >= {_show(v.right)}"
    if isinstance(v, Eq):
        return f"{_show(v.left)} = {_show(v.right)}"
    if isinstance(v, Arith):
        return f"{_show(v.left)} {v.op} {_show(v.right)}"
    if isinstance(v, list):
        return "[" + ", ".join(_show(i) for i in v) + "]"
    return str(v)


def _ravel(coords: tuple[int, ...], shape: tuple[int, ...], at: Statement, what: str) -> int:
    if len(coords) != len(shape) or any(not 0 <= c < d for c, d in zip(coords, shape)):
        raise _Bad(at, f"{what} has coordinates {list(coords)}, outside shape {list(shape)}")
    flat = 0
    for c, d in zip(coords, shape):
        flat = flat * d + c
    return flat


def _linear(e: Any, var: str, at: Statement) -> tuple[int, int]:
    """(coefficient, offset) of `e` when it is one of var, var + k, var - k, s * var (+|- k)."""
    base, off = e, 0
    if isinstance(e, Arith) and e.op in "+-" and _is_int(e.right) and e.right > 0:
        base, off = e.left, e.right if e.op == "+" else -e.right
    if base == Var(var) and isinstance(base, Var):
        return 1, off
    if (isinstance(base, Arith) and base.op == "*" and _is_int(base.left) and base.left > 1
            and isinstance(base.right, Var) and base.right == var):
        return base.left, off
    raise _Bad(at, f"position {_show(e)} is not {var}, {var} + k, {var} - k or s * {var} (+|- k)")


class _Reader:
    def __init__(self, statements: list[Statement]) -> None:
        self.facts: dict[str, list[Statement]] = {}
        self.clauses: dict[str, list[Statement]] = {}
        self.other_facts: list[Statement] = []  # a decision list's default, once its predicate is known
        for st in statements:
            if st.kind == "directive":
                name = st.head.name if isinstance(st.head, Struct) else st.head
                if name not in DIRECTIVES:
                    raise _Bad(st, f"directive {_show(st.head)} is not one mofn2logic writes")
                continue
            if not isinstance(st.head, Struct) or not isinstance(st.head.name, Atom):
                raise _Bad(st, f"{_show(st.head)} is not a fact or clause mofn2logic writes")
            if st.kind == "fact":
                if st.head.name not in HEADER:
                    self.other_facts.append(st)
                    continue
                if HEADER[st.head.name] != len(st.head.args):
                    raise _Bad(st, f"fact {_show(st.head)} is not one mofn2logic writes")
                self.facts.setdefault(st.head.name, []).append(st)
            else:
                self.clauses.setdefault(st.head.name, []).append(st)

    def one(self, name: str) -> Statement:
        found = self.facts.get(name, [])
        if len(found) != 1:
            raise _Bad(found[1] if found else None,
                       f"expected one {name}/{HEADER[name]} fact, found {len(found)}")
        return found[0]

    def program(self) -> Program:
        st = self.one("program_name")
        name = _atom(st.head.args[0], st, "the program name")
        st = self.one("decision")
        decision = _atom(st.head.args[0], st, "the decision")
        st = self.one("input")
        tensor_a, shape_a, grain_a, pred_a = st.head.args
        tensor = _atom(tensor_a, st, "the input tensor")
        in_shape = _ints(shape_a, st, "the input shape")
        if not in_shape or min(in_shape) < 1:
            raise _Bad(st, f"the input shape is {list(in_shape)}; expected positive sizes")
        grain = _atom(grain_a, st, "the input grain")
        if grain not in ("unit", "channel"):
            raise _Bad(st, f"the input grain is {grain!r}; expected unit or channel")
        self.shapes: dict[str, tuple[int, ...]] = {_atom(pred_a, st, "the input predicate"): in_shape}
        self.names: dict[str, str] = {str(pred_a): ""}
        self.at: dict[str, Statement] = {str(pred_a): st}

        decls = []
        for st in self.facts.get("block", []):
            order, bname, kind, pred, src, shape = st.head.args
            if not _is_int(order):
                raise _Bad(st, f"block order {_show(order)} is not an integer")
            bname = _atom(bname, st, "the block name")
            kind = _atom(kind, st, "the block kind")
            if kind not in ("dense", "conv", "pool", "index", "decision_list"):
                raise _Bad(st, f"block kind {kind!r}; expected dense, conv, pool, index or decision_list")
            pred = _atom(pred, st, "the block predicate")
            src = _atom(src, st, "the block source")
            if pred in self.names:
                raise _Bad(st, f"predicate {ATOMS.quote(pred)} names two blocks (or a block and the input)")
            self.names[pred] = bname
            self.shapes[pred] = _ints(shape, st, "the block shape")
            self.at[pred] = st
            decls.append((order, st, bname, kind, pred, src))
        if sorted(d[0] for d in decls) != list(range(1, len(decls) + 1)):
            raise _Bad(None, f"the block orders are {sorted(d[0] for d in decls)}; expected 1 to {len(decls)}")
        decls.sort(key=lambda d: d[0])

        self.strides = self._keyed("stride", lambda st, a: (_is_int(a[1]) and _is_int(a[2])) and (a[1], a[2]))
        self.pools: dict[str, MaxPool] = {}
        for st in self.facts.get("maxpool", []):
            pred, kernel, strides, pads, dil, ceil, onnx = st.head.args
            ceil_v = _atom(_struct(ceil, "ceil_mode", 1, st, "ceil_mode")[0], st, "ceil_mode")
            if ceil_v not in ("true", "false"):
                raise _Bad(st, f"ceil_mode({ceil_v}); expected true or false")
            names = tuple(_atom(a, st, "an ONNX name") for a in _struct(onnx, "onnx", 3, st, "onnx"))
            pool = MaxPool(kernel=_int_args(kernel, "kernel", 2, st),  # type: ignore[arg-type]
                           strides=_int_args(strides, "strides", 2, st),  # type: ignore[arg-type]
                           pads=_int_args(pads, "pads", 4, st),  # type: ignore[arg-type]
                           dilations=_int_args(dil, "dilations", 2, st),  # type: ignore[arg-type]
                           ceil_mode=ceil_v == "true", input=names[0], output=names[1], node=names[2])
            self._add(self.pools, _atom(pred, st, "the pool predicate"), pool, st, "maxpool")
        self.thresholds: dict[tuple[str, int], float] = {}
        for st in self.facts.get("threshold", []):
            pred, unit, t = st.head.args
            if not _is_int(unit):
                raise _Bad(st, f"threshold unit {_show(unit)} is not an integer")
            self._add(self.thresholds, (_atom(pred, st, "the predicate"), unit), _float(t, st, "the threshold"), st,
                      "threshold")
        for key, what in ((self.strides, "stride"), (self.pools, "maxpool")):
            for pred in key:
                if pred not in self.names:
                    raise _Bad(self.facts[what][0], f"{what} fact for {ATOMS.quote(pred)}, which no block declares")
        for (pred, _), _t in self.thresholds.items():
            if pred not in self.names or self.names[pred] == "":
                raise _Bad(self.facts["threshold"][0],
                           f"threshold fact for {ATOMS.quote(pred)}, which no block declares")
        for pred in self.clauses:
            if pred not in self.names:
                raise _Bad(self.clauses[pred][0], f"clause for {ATOMS.quote(pred)}, which no block or input declares")
        lists = {pred for _, _, _, kind, pred, _ in decls if kind == "decision_list"}
        self.defaults: dict[str, list[Statement]] = {}
        for st in self.other_facts:
            if st.head.name not in lists:
                raise _Bad(st, f"fact {_show(st.head)} is not one mofn2logic writes")
            self.defaults.setdefault(st.head.name, []).append(st)

        self.padding: dict[str, set[int]] = {}
        inp = InputTests(tensor, in_shape, grain == "channel", self._input(str(pred_a), in_shape, grain == "channel"))
        blocks: list[Block] = []
        for _, st, bname, kind, pred, src in decls:
            if src not in self.names:
                raise _Bad(st, f"block {bname!r} reads {ATOMS.quote(src)}, which no block or input declares")
            source = self.names[src]
            if kind in ("dense", "conv"):
                blocks.append(self._rules(st, bname, kind, pred, src, source))
            elif kind == "decision_list":
                blocks.append(self._list(st, bname, pred, src, source))
            elif kind == "pool":
                blocks.append(self._pool(st, bname, pred, src, source))
            else:
                blocks.append(self._index(st, bname, pred, src, source))
        return Program(name, inp, tuple(blocks), decision, self._labels([""] + [d[2] for d in decls]))

    def _labels(self, order: list[str]) -> tuple[tuple[str, tuple[tuple[int, str], ...]], ...]:
        """The names table from the label/3 facts, in program order (check_program checks the rest)."""
        found: dict[str, dict[int, str]] = {}
        for st in self.facts.get("label", []):
            pred, unit, text = st.head.args
            pred = _atom(pred, st, "the labelled predicate")
            if pred not in self.names:
                raise _Bad(st, f"label fact for {ATOMS.quote(pred)}, which no block or input declares")
            if not _is_int(unit):
                raise _Bad(st, f"label unit {_show(unit)} is not an integer")
            self._add(found.setdefault(self.names[pred], {}), unit, _atom(text, st, "the label"), st, "label")
        return tuple((b, tuple(sorted(found[b].items()))) for b in order if b in found)

    def _keyed(self, name: str, value) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for st in self.facts.get(name, []):
            v = value(st, st.head.args)
            if not v:
                raise _Bad(st, f"{name} fact {_show(st.head)} is malformed")
            self._add(out, _atom(st.head.args[0], st, "the predicate"), v, st, name)
        return out

    @staticmethod
    def _add(d: dict, key: Any, value: Any, st: Statement, what: str) -> None:
        if key in d:
            raise _Bad(st, f"a second {what} fact for the same predicate")
        d[key] = value

    def _split(self, pred: str) -> tuple[list[Statement], list[Statement]]:
        """The predicate's clauses: (its own, its padding clauses)."""
        own: list[Statement] = []
        pads: list[Statement] = []
        for st in self.clauses.get(pred, []):
            is_pad = len(st.body) == 1 and isinstance(st.body[0], Struct) and st.body[0].name == "outside"
            (pads if is_pad else own).append(st)
        for st in pads:
            shape = self.shapes[pred]
            args = st.head.args
            if (len(shape) != 3 or len(args) != 4 or args[0] != Var("_") or not _is_int(args[1])
                    or not isinstance(args[2], Var) or not isinstance(args[3], Var)
                    or st.body[0].args != (args[2], args[3], shape[1], shape[2])):
                raise _Bad(st, f"padding clause {_show(st.head)} :- {_show(st.body[0])} does not have the form "
                               f"P(_, Channel, Y, X) :- outside(Y, X, Height, Width) over its grid")
            if args[1] in self.padding.setdefault(pred, set()):
                raise _Bad(st, f"a second padding clause for channel {args[1]}")
            self.padding[pred].add(args[1])
        return own, pads

    def _input(self, pred: str, shape: tuple[int, ...], per_channel: bool) -> tuple[tuple[int, float], ...]:
        own, _ = self._split(pred)
        tests = []
        for st in own:
            h = st.head.args
            form = (f"{ATOMS.quote(pred)}(S, Index...) :- x(S, Index..., V), V >= Threshold"
                    + (" (Index: a channel and variables)" if per_channel else " (Index: integers)"))
            if (len(h) != len(shape) + 1 or not isinstance(h[0], Var) or len(st.body) != 2
                    or not isinstance(st.body[0], Struct) or st.body[0].name != "x"
                    or st.body[0].args[:-1] != h or not isinstance(st.body[0].args[-1], Var)
                    or not isinstance(st.body[1], Ge) or st.body[1].left != st.body[0].args[-1]):
                raise _Bad(st, f"input test {_show(st.head)} does not have the form {form}")
            t = _float(st.body[1].right, st, "the input threshold")
            if per_channel:
                rest = h[2:]
                if (not _is_int(h[1]) or not all(isinstance(v, Var) and v != "_" for v in rest)
                        or len(set(rest)) != len(rest) or h[0] in rest):
                    raise _Bad(st, f"input test {_show(st.head)} does not have the form {form}")
                if not 0 <= h[1] < shape[0]:
                    raise _Bad(st, f"input test of channel {h[1]}, outside the input's {shape[0]} channels")
                tests.append((h[1], t))
            else:
                if not all(_is_int(v) for v in h[1:]):
                    raise _Bad(st, f"input test {_show(st.head)} does not have the form {form}")
                tests.append((_ravel(h[1:], shape, st, "input test"), t))
        return tuple(tests)

    def _rules(self, decl: Statement, name: str, kind: str, pred: str, src: str, source: str) -> RuleBlock:
        shape, src_shape = self.shapes[pred], self.shapes[src]
        stride = self.strides.get(pred, (1, 1))
        if kind == "conv" and pred not in self.strides:
            raise _Bad(decl, f"conv block {name!r} has no stride fact")
        if kind == "conv" and (len(shape) != 3 or len(src_shape) != 3):
            raise _Bad(decl, f"conv block {name!r} has shape {list(shape)} and reads shape {list(src_shape)}; "
                             "expected (channels, height, width) for both")
        own, _ = self._split(pred)
        rules = []
        for st in own:
            h = st.head.args
            if kind == "dense":
                ok = len(h) == 2 and isinstance(h[0], Var) and _is_int(h[1]) and len(st.body) == 1
                form = f"{ATOMS.quote(pred)}(S, Unit) :- at_least(M, Literals)"
            else:
                ok = (len(h) == 4 and isinstance(h[0], Var) and _is_int(h[1]) and h[2] == Var("Y") and h[3] == Var("X")
                      and len(st.body) == 2 and st.body[0] == Struct("position", (h[2], h[3], shape[1], shape[2])))
                form = (f"{ATOMS.quote(pred)}(S, Channel, Y, X) :- position(Y, X, {shape[1]}, {shape[2]}), "
                        "at_least(M, Literals)")
            goal = st.body[-1] if st.body else None
            if not ok or not isinstance(goal, Struct) or goal.name != "at_least" or len(goal.args) != 2 \
                    or not _is_int(goal.args[0]) or not isinstance(goal.args[1], list):
                raise _Bad(st, f"rule {_show(st.head)} does not have the form {form}")
            m, lits = goal.args
            sample = h[0]
            parsed = tuple(self._literal(st, lit, kind, sample, src, src_shape, stride) for lit in lits)
            if lits and sample == "_":
                raise _Bad(st, "a rule with literals needs a named sample variable")
            rules.append(MofNRule(h[1], m, parsed, self.thresholds.get((pred, h[1]))))
        units = {r.unit for r in rules}
        extra = [u for (p, u) in self.thresholds if p == pred and u not in units]
        if extra:
            raise _Bad(self.facts["threshold"][0], f"threshold fact for unit {extra[0]} of {name!r}, which has no rule")
        return RuleBlock(name, kind, source, shape, tuple(rules), stride)

    def _list(self, decl: Statement, name: str, pred: str, src: str, source: str) -> DecisionListBlock:
        """Ordered clauses P(S, Class) :- at_least(M, Literals), !, Class = C, then the fact P(_, Default)."""
        shape, src_shape = self.shapes[pred], self.shapes[src]
        if len(shape) != 1:
            raise _Bad(decl, f"decision list {name!r} has shape {list(shape)}; expected [classes]")
        own, pads = self._split(pred)
        if pads:
            raise _Bad(pads[0], f"decision list {name!r} has a padding clause; a decision list is never padded")
        defaults = self.defaults.get(pred, [])
        if len(defaults) != 1:
            raise _Bad(defaults[1] if defaults else decl,
                       f"decision list {name!r} needs exactly one default fact {ATOMS.quote(pred)}(_, Class); "
                       f"found {len(defaults)}")
        default = defaults[0]
        if len(default.head.args) != 2 or default.head.args[0] != Var("_") or not _is_int(default.head.args[1]):
            raise _Bad(default, f"the default {_show(default.head)} of decision list {name!r} does not have the form "
                                f"{ATOMS.quote(pred)}(_, Class)")
        late = [st for st in own if (st.line, st.column) > (default.line, default.column)]
        if late:
            raise _Bad(late[0], f"a rule of decision list {name!r} comes after its default; the default is last")
        form = f"{ATOMS.quote(pred)}(S, Class) :- at_least(M, Literals), !, Class = C"
        rules = []
        for st in sorted(own, key=lambda st: (st.line, st.column)):
            h, body = st.head.args, st.body
            ok = (len(h) == 2 and isinstance(h[0], Var) and isinstance(h[1], Var) and h[1] != "_" and h[0] != h[1]
                  and len(body) == 3 and isinstance(body[0], Struct) and body[0].name == "at_least"
                  and len(body[0].args) == 2 and _is_int(body[0].args[0]) and isinstance(body[0].args[1], list)
                  and body[1] == CUT and isinstance(body[2], Eq) and body[2].left == h[1] and _is_int(body[2].right))
            if not ok:
                raise _Bad(st, f"rule {_show(st.head)} of decision list {name!r} does not have the form {form}")
            m, lits = body[0].args
            if lits and h[0] == "_":
                raise _Bad(st, "a rule with literals needs a named sample variable")
            parsed = tuple(self._literal(st, lit, "dense", h[0], src, src_shape, (1, 1)) for lit in lits)
            rules.append(MofNRule(body[2].right, m, parsed))
        return DecisionListBlock(name, source, (shape[0],), tuple(rules), default.head.args[1])

    def _literal(self, st: Statement, lit: Any, kind: str, sample: Any, src: str, src_shape: tuple[int, ...],
                 stride: tuple[int, int]) -> AtomLiteral:
        positive = not isinstance(lit, Neg)
        atom = lit if positive else lit.goal
        if not isinstance(atom, Struct) or atom.name != src or not atom.args or atom.args[0] != sample:
            raise _Bad(st, f"literal {_show(lit)} does not read the block's source {ATOMS.quote(src)} "
                           "for the rule's sample")
        args = atom.args[1:]
        if kind == "dense":
            if not all(_is_int(a) for a in args):
                raise _Bad(st, f"literal {_show(lit)}: expected integer coordinates")
            return AtomLiteral(_ravel(args, src_shape, st, f"literal {_show(lit)}"), positive)
        if len(args) != 3 or not _is_int(args[0]):
            raise _Bad(st, f"literal {_show(lit)}: expected Channel, Y +- dy, X +- dx")
        (sy, dy), (sx, dx) = _linear(args[1], "Y", st), _linear(args[2], "X", st)
        if (sy, sx) != tuple(stride):
            raise _Bad(st, f"literal {_show(lit)} steps by {sy} x {sx}; "
                           f"the block's stride is {stride[0]} x {stride[1]}")
        if not 0 <= args[0] < src_shape[0]:
            raise _Bad(st, f"literal {_show(lit)} reads channel {args[0]} of {src_shape[0]}")
        return AtomLiteral(args[0], positive, (dy, dx))

    def _pool(self, decl: Statement, name: str, pred: str, src: str, source: str) -> PoolBlock:
        if pred not in self.pools:
            raise _Bad(decl, f"pool block {name!r} has no maxpool fact")
        own, _ = self._split(pred)
        form = (f"{ATOMS.quote(pred)}(S, C, Y, X) :- window({ATOMS.quote(pred)}, Y, X, Y1, X1), "
                f"{ATOMS.quote(src)}(S, C, Y1, X1)")
        want_head = (Var("S"), Var("C"), Var("Y"), Var("X"))
        want_body = (Struct("window", (pred, Var("Y"), Var("X"), Var("Y1"), Var("X1"))),
                     Struct(src, (Var("S"), Var("C"), Var("Y1"), Var("X1"))))
        if len(own) != 1 or own[0].head.args != want_head or own[0].body != want_body:
            raise _Bad(own[-1] if own else decl, f"pool block {name!r} needs exactly one clause {form}")
        return PoolBlock(name, source, self.shapes[pred], self.pools[pred])  # type: ignore[arg-type]

    def _index(self, decl: Statement, name: str, pred: str, src: str, source: str) -> IndexBlock:
        shape, src_shape = self.shapes[pred], self.shapes[src]
        size = math.prod(shape)
        own, _ = self._split(pred)
        if size != len(own):
            raise _Bad(decl, f"index block {name!r} has {len(own)} clauses for its {size} atoms")
        index: list[int | None] = [None] * size
        for st in own:
            h = st.head.args
            body = st.body[0] if len(st.body) == 1 else None
            if (not h or not isinstance(h[0], Var) or not all(_is_int(a) for a in h[1:])
                    or not isinstance(body, Struct) or body.name != src or not body.args or body.args[0] != h[0]
                    or not all(_is_int(a) for a in body.args[1:])):
                raise _Bad(st, f"index clause {_show(st.head)} does not have the form "
                               f"{ATOMS.quote(pred)}(S, I...) :- {ATOMS.quote(src)}(S, J...)")
            k = _ravel(h[1:], shape, st, f"index atom {_show(st.head)}")
            if index[k] is not None:
                raise _Bad(st, f"index atom {_show(st.head)} is defined twice")
            index[k] = _ravel(body.args[1:], src_shape, st, f"source atom {_show(body)}")
        if None in index:
            missing = index.index(None)
            raise _Bad(decl, f"index block {name!r} has no clause for its atom {missing} (flat)")
        return IndexBlock(name, source, shape, tuple(index))  # type: ignore[arg-type]

    def check_padding(self, program: Program) -> None:
        """The padding clauses are the channels whose padding passes the threshold (a checked program)."""
        read_by_conv = {b.source for b in program.blocks if isinstance(b, RuleBlock) and b.kind == "conv"}
        pred_of = {v: k for k, v in self.names.items()}
        for source in read_by_conv:
            pred = pred_of[source]
            want = {c for c in range(self.shapes[pred][0]) if pad_truth(program, source, c)}
            if self.padding.get(pred, set()) != want:
                raise _Bad(self.at[pred], f"the padding clauses of {ATOMS.quote(pred)} cover channels "
                                          f"{sorted(self.padding.get(pred, set()))}; its thresholds say {sorted(want)}")
        for pred in self.padding:
            if self.names[pred] not in read_by_conv:
                raise _Bad(self.at[pred], f"{ATOMS.quote(pred)} has padding clauses, but no conv block reads it")


def parse_prolog(text: str, source: str = "<prolog>") -> Program:
    """The program of an exported Prolog text (its clauses before the runtime), checked."""
    marker = runtime_marker()
    cut = text.find(marker)
    body = text if cut < 0 else text[:cut]
    try:
        tree = _parser().parse(body)
    except UnexpectedInput as e:
        try:
            context = e.get_context(body).rstrip("\n")
        except Exception:
            context = ""
        raise RuleSyntaxError(f"{source}:{e.line}:{e.column}: not Prolog that mofn2logic writes\n{context}") from e
    from mofn2logic.program.check import check_program

    try:
        statements = _Terms().transform(tree)
        reader = _Reader(statements)
        program = reader.program()
        check_program(program, source)
        reader.check_padding(program)
    except _Bad as e:
        where = f"{source}:{e.at.line}:{e.at.column}" if e.at is not None else source
        raise RuleSyntaxError(f"{where}: {e}") from e
    except Mofn2LogicError:
        raise
    except Exception as e:  # lark wraps errors raised in callbacks; anything else is a malformed text
        inner = getattr(e, "orig_exc", e)
        if isinstance(inner, RuleSyntaxError):
            raise RuleSyntaxError(f"{source}:{inner}") from e
        raise RuleSyntaxError(f"{source}: not a program mofn2logic writes ({type(inner).__name__}: "
                              f"{str(inner)[:100]})") from e
    return program


def read_prolog(path: str | os.PathLike[str]) -> Program:
    from mofn2logic.files import read_text

    return parse_prolog(read_text(path, "Prolog"), str(path))
