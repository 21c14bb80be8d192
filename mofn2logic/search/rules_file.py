"""``rules.json``: the rule set as a file (format ``mofn2logic-rules``; written as version 2,
read in versions 1 and 2).

Version 2 lists each unit's literals once, in a table of parallel columns, and its rules (one
per beta) refer to that table::

    {"format": "mofn2logic-rules", "version": 2,
     "provenance": {"package", "version", "model", "model_sha256", "data", "data_sha256", "options"},
     ["names": {["inputs": [...] | "image": [C, H, W],] ["classes": [...],] ["units": {layer: {unit: name}}]},]
     "betas": [...],
     "layers": [{"name", "kind", "mode", "order", "activation", "fan_in", "input_tensor",
                 "output_tensor", "input_shape", "output_shape", "n_examples", "conv", "chained", "fit_on",
                 "steps": [{"op", ...attributes}],
                 "input_thresholds": {"input": [...], "threshold": [...]} or null,
                 "units": [{"unit", "threshold",
                            "literals": {"input": [...], "sign": "+-+...",
                                         ["threshold": [...],] ["dy": [...], "dx": [...]]},
                            "rules": [{"beta", "n", "m", "error", "complexity", "method"[, "literals": [...]]}],
                            "front": {"n": [...], "m": [...], "error": [...], "complexity": [...]}}]}]}

Entry k of a unit's table is the literal on input ``input[k]`` (the input unit, or for a
convolution the input channel at offset ``(dy[k], dx[k])``), positive iff ``sign[k]`` is ``+``;
its threshold is ``threshold[k]`` when the table has that column, and otherwise the layer's one
threshold for that input in ``input_thresholds`` (chain mode: every rule of the layer tests an
input against the same threshold, so it is stated once). A rule's literals are the table entries
at the indices of its ``literals``, or, without that key, the first ``n`` entries of the table:
the writer lists the longest rule first, so a rule of the weight order -- a prefix of that order
-- is just its ``n``. ``front`` holds the unit's Pareto front as parallel columns.

Version 1 spells every literal of every rule out (a 60 MB file for an MNIST CNN; version 2 is
about 20 times smaller)::

    "units": [{"unit", "threshold",
               "rules": [{"beta", "n", "m", "error", "complexity", "method",
                          "literals": [{"input", "threshold", "positive"[, "offset"]}]}],
               "front": [{"n", "m", "error", "complexity"}]}]

The fields mean what the IR's do (`mofn2logic.ir.rules`); ``conv`` holds the convolution's
attributes and ``position`` (all or best); ``steps`` the typed steps' attributes and tensors;
``chained`` (absent in older files: true in chain mode) whether the inputs' thresholds are the
head splits of the layer below; ``fit_on`` (absent in older files: network) what the rules were
fitted on; ``names`` (optional, either version) the user's names of the inputs, classes and hidden units
(`mofn2logic.ir.names`), or ``image``: the shape of an image input, named pixel[r,c] by default. Both versions
are read by the same strict reader: every field is type- and range-checked, and a bad one is a one-line
`ProgramError` that says where it is, what was expected and what arrived. Writing is deterministic: the same
rule set gives the same bytes.
"""

from __future__ import annotations

import json
import math
import operator
import os
from collections.abc import Callable
from typing import Any

from mofn2logic.errors import ProgramError
from mofn2logic.ir.names import Names
from mofn2logic.ir.network import ConvAttrs
from mofn2logic.ir.rules import FrontPoint, LayerRules, RuleSet, ScoredRule, ThresholdLiteral, UnitRules
from mofn2logic.ir.steps import STEP_TYPES, Step, step_fields

FORMAT = "mofn2logic-rules"
VERSION = 2
FIT_ON = ("network", "program")  # what a layer's rules were fitted on (LayerRules.fit_on)
VERSIONS = (1, 2)  # the versions this reader reads


# --------------------------------------------------------------------------- writing

def _layer_head(la: LayerRules) -> dict[str, Any]:
    conv = None
    if la.conv is not None:
        c = la.conv
        conv = {"kernel": list(c.kernel), "strides": list(c.strides), "pads": list(c.pads),
                "dilations": list(c.dilations), "groups": c.groups, "position": la.conv_position}
    return {"name": la.name, "kind": la.kind, "mode": la.mode, "order": la.order, "activation": la.activation,
            "fan_in": la.fan_in, "input_tensor": la.input_tensor, "output_tensor": la.output_tensor,
            "input_shape": list(la.input_shape), "output_shape": list(la.output_shape),
            "n_examples": la.n_examples, "conv": conv,
            "chained": la.chained, "fit_on": la.fit_on,
            "steps": [{"op": s.op, **step_fields(s), "input": s.input, "output": s.output, **({"node": s.node} if s.node else {})}
                      for s in la.steps]}


def to_dict_v1(rs: RuleSet) -> dict[str, Any]:
    """The version 1 document (every rule's literals spelled out); kept for tests and old readers."""
    def lit(li: ThresholdLiteral) -> dict[str, Any]:
        d: dict[str, Any] = {"input": li.input, "threshold": li.threshold, "positive": li.positive}
        if li.offset is not None:
            d["offset"] = list(li.offset)
        return d

    def unit(u: UnitRules) -> dict[str, Any]:
        return {
            "unit": u.unit, "threshold": u.threshold,
            "rules": [{"beta": r.beta, "n": r.n, "m": r.m, "error": r.error, "complexity": r.complexity,
                       "method": r.method, "literals": [lit(li) for li in r.literals]} for r in u.rules],
            "front": [{"n": f.n, "m": f.m, "error": f.error, "complexity": f.complexity} for f in u.front],
        }

    return {"format": FORMAT, "version": 1, "provenance": json.loads(rs.provenance),
            "betas": list(rs.betas), "layers": [{**_layer_head(la), "units": [unit(u) for u in la.units]}
                                                 for la in rs.layers]}


def dumps_v1(rs: RuleSet) -> str:
    return json.dumps(to_dict_v1(rs), indent=1, ensure_ascii=False) + "\n"


_KEY = operator.attrgetter("input", "threshold", "positive", "offset")
_RULE_FIELDS = ("beta", "n", "m", "error", "complexity", "method")


def _table(u: UnitRules) -> tuple[list[tuple[Any, ...]], list[list[int] | None]]:
    """The unit's literal table (literal keys, each once, longest rule first) and each rule's
    indices into it (None for a prefix of the table)."""
    keys = [list(map(_KEY, r.literals)) for r in u.rules]
    table: list[tuple[Any, ...]] = []
    index: dict[tuple[Any, ...], int] = {}
    for k in sorted(range(len(keys)), key=lambda k: -len(keys[k])):  # stable: ties keep rule order
        if keys[k] == table[:len(keys[k])]:
            continue
        for key in keys[k]:
            if key not in index:
                index[key] = len(table)
                table.append(key)
    return table, [None if ks == table[:len(ks)] else [index[key] for key in ks] for ks in keys]


def _shared_thresholds(tables: list[list[tuple[Any, ...]]]) -> dict[int, float] | None:
    """Input -> threshold when every literal of the layer on that input has the same one."""
    thr: dict[int, float] = {}
    for table in tables:
        for key in table:
            t = thr.setdefault(key[0], key[1])
            if t != key[1] or (t == 0 and math.copysign(1.0, t) != math.copysign(1.0, key[1])):
                return None
    return thr


def _layer_v2(la: LayerRules) -> dict[str, Any]:
    built = [_table(u) for u in la.units]
    shared = _shared_thresholds([table for table, _ in built])
    units = []
    for u, (table, refs) in zip(la.units, built):
        lits: dict[str, Any] = {"input": [key[0] for key in table],
                                "sign": "".join("+" if key[2] else "-" for key in table)}
        if shared is None:
            lits["threshold"] = [key[1] for key in table]
        if la.kind == "conv" or any(key[3] is not None for key in table):
            lits["dy"] = [key[3][0] for key in table]
            lits["dx"] = [key[3][1] for key in table]
        rules = []
        for r, ref in zip(u.rules, refs):
            d: dict[str, Any] = {"beta": r.beta, "n": r.n, "m": r.m, "error": r.error, "complexity": r.complexity,
                                 "method": r.method}
            if ref is not None:
                d["literals"] = ref
            rules.append(d)
        front = {"n": [f.n for f in u.front], "m": [f.m for f in u.front], "error": [f.error for f in u.front],
                 "complexity": [f.complexity for f in u.front]}
        units.append({"unit": u.unit, "threshold": u.threshold, "literals": lits, "rules": rules, "front": front})
    thresholds = None if shared is None else {"input": sorted(shared), "threshold": [shared[i] for i in sorted(shared)]}
    return {**_layer_head(la), "input_thresholds": thresholds, "units": units}


def to_dict(rs: RuleSet) -> dict[str, Any]:
    """The version 2 document of the rule set (plain JSON values)."""
    names = _names_dict(rs.names) if rs.names else None
    return {"format": FORMAT, "version": VERSION, "provenance": json.loads(rs.provenance),
            **({"names": names} if names else {}),
            "betas": list(rs.betas), "layers": [_layer_v2(la) for la in rs.layers]}


def _names_dict(names: Names) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if names.inputs:
        out["inputs"] = list(names.inputs)
    elif names.image:
        out["image"] = list(names.input_shape)  # the default pixel[r,c] names: the image's shape
    if names.classes:
        out["classes"] = list(names.classes)
    if names.units:
        out["units"] = {layer: {str(u): n for u, n in units} for layer, units in names.units}
    return out


def _scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list))


def _emit(v: Any, depth: int = 0) -> str:
    """JSON text: objects and lists of objects one entry a line; a list of numbers on one line
    (a long one, a column of a table, without spaces), and small objects of scalars (a rule, a
    step) on one line."""
    if isinstance(v, dict):
        if all(_scalar(x) or (isinstance(x, list) and len(x) <= 8 and all(map(_scalar, x))) for x in v.values()):
            return json.dumps(v, ensure_ascii=False)
        pad = " " * (depth + 1)
        body = ",\n".join(f"{pad}{json.dumps(k, ensure_ascii=False)}: {_emit(x, depth + 1)}" for k, x in v.items())
        return "{\n" + body + "\n" + " " * depth + "}"
    if isinstance(v, list) and not all(map(_scalar, v)):
        pad = " " * (depth + 1)
        return "[\n" + ",\n".join(pad + _emit(x, depth + 1) for x in v) + "\n" + " " * depth + "]"
    if isinstance(v, list) and len(v) > 8:
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(v, ensure_ascii=False)


def dumps(rs: RuleSet) -> str:
    """The rule set as rules.json text (version 2)."""
    return _emit(to_dict(rs)) + "\n"


# --------------------------------------------------------------------------- reading

# Bounds for what a rules file may declare (a hostile file must not drive allocations).
MAX_ATOMS = 1 << 26
MAX_GEOMETRY = 1 << 12


class _Reader:
    """Reads plain JSON values into typed fields; any mismatch is one ProgramError that says
    where, what was expected and what arrived."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, expected: str, got: Any) -> ProgramError:
        text = json.dumps(got)[:40] if isinstance(got, (int, float, str, bool, type(None))) else type(got).__name__
        return ProgramError(f"{self.source}: {where} is {text}; expected {expected}")

    def obj(self, v: Any, where: str) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(where, "an object", v)
        return v

    def key(self, d: dict[str, Any], k: str, where: str) -> Any:
        if k not in d:
            raise ProgramError(f"{self.source}: {where} lacks {k!r}")
        return d[k]

    def only(self, d: dict[str, Any], keys: set[str], where: str) -> None:
        """Refuses keys outside `keys` (a misspelt column must not fall back to a default)."""
        extra = sorted(set(d) - keys)
        if extra:
            raise ProgramError(f"{self.source}: {where} has an unknown field {extra[0]!r}; expected "
                               f"{', '.join(sorted(keys))}")

    def items(self, v: Any, where: str) -> list[Any]:
        if not isinstance(v, list):
            raise self.fail(where, "a list", v)
        return v

    def integer(self, v: Any, where: str, low: int | None = None, high: int | None = None) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or (low is not None and v < low) or (
                high is not None and v > high):
            rng = f" from {low}" if low is not None else ""
            rng += f" to {high}" if high is not None else ""
            raise self.fail(where, f"an integer{rng}", v)
        return v

    def number(self, v: Any, where: str, low: float | None = None) -> float:
        try:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (
                low is None or v >= low)
        except OverflowError:  # an integer too large for a float
            ok = False
        if not ok:
            raise self.fail(where, "a finite number" + (f" >= {low:g}" if low is not None else ""), v)
        return float(v)

    def text(self, v: Any, where: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(v, str) or (choices is not None and v not in choices):
            raise self.fail(where, "one of " + ", ".join(choices) if choices else "text", v)
        return v

    def flag(self, v: Any, where: str) -> bool:
        if not isinstance(v, bool):
            raise self.fail(where, "true or false", v)
        return v

    def ints(self, v: Any, where: str, n: int | None = None, low: int | None = None,
             high: int | None = None) -> tuple[int, ...]:
        items = self.items(v, where)
        if n is not None and len(items) != n:
            raise self.fail(where, f"{n} integers", v)
        return tuple(self.integer(x, f"{where}[{i}]", low, high) for i, x in enumerate(items))

    def int_column(self, v: Any, where: str, n: int | None, low: int, high: int) -> list[int]:
        """A long list of integers in [low, high] (a table column): checked in bulk, and the first
        bad entry named."""
        items = self.items(v, where)
        if n is not None and len(items) != n:
            raise ProgramError(f"{self.source}: {where} has {len(items)} entries; expected {n}")
        if not all(type(x) is int for x in items) or (items and (min(items) < low or max(items) > high)):
            for i, x in enumerate(items):
                self.integer(x, f"{where}[{i}]", low, high)
        return items

    def number_column(self, v: Any, where: str, n: int | None, low: float | None = None) -> list[float]:
        """A long list of finite numbers (a table column), as floats; the first bad entry named."""
        items = self.items(v, where)
        if n is not None and len(items) != n:
            raise ProgramError(f"{self.source}: {where} has {len(items)} entries; expected {n}")
        try:
            ok = all(type(x) is float or type(x) is int for x in items) and all(map(math.isfinite, items)) and (
                low is None or not items or min(items) >= low)
        except OverflowError:
            ok = False
        if not ok:
            return [self.number(x, f"{where}[{i}]", low) for i, x in enumerate(items)]
        return [float(x) for x in items]

    def shape(self, v: Any, where: str) -> tuple[int, ...]:
        shape = self.ints(v, where, low=1)
        if not shape or math.prod(shape) > MAX_ATOMS:
            raise self.fail(where, f"a non-empty shape of at most {MAX_ATOMS} values", v)
        return shape


def step_from_dict(d: dict[str, Any], where: str = "step", source: str = "rules") -> Step:
    """A typed step from its JSON form ``{"op": ..., attributes}`` (unknown attributes are refused)."""
    r = _Reader(source)
    d = r.obj(d, where)
    kind = STEP_TYPES.get(r.text(d.get("op"), f"{where} op", tuple(STEP_TYPES)))
    fields: dict[str, Any] = {}
    for k, v in d.items():
        if k == "op":
            continue
        if k in ("input", "output", "node"):
            fields[k] = r.text(v, f"{where} {k}")
        elif k in ("ceil_mode", "count_include_pad"):
            fields[k] = bool(r.integer(v, f"{where} {k}", 0, 1)) if not isinstance(v, bool) else v
        elif k == "axis":
            fields[k] = r.integer(v, f"{where} axis", -8, 8)
        elif k == "shape":
            fields[k] = r.ints(v, f"{where} shape", low=-1, high=MAX_ATOMS)
        elif k == "perm":
            fields[k] = r.ints(v, f"{where} perm", low=0, high=8)
        elif k in ("kernel", "strides", "dilations", "pads"):
            fields[k] = r.ints(v, f"{where} {k}", 4 if k == "pads" else 2, 0 if k == "pads" else 1, MAX_GEOMETRY)
        else:
            raise ProgramError(f"{source}: {where} has an unknown attribute {k!r}")
    try:
        return kind(**fields)  # type: ignore[misc]
    except TypeError as e:
        raise ProgramError(f"{source}: {where} ({d.get('op')}) lacks an attribute: {e}") from e


def _literal(r: _Reader, li: Any, where: str, conv: bool, limit: int) -> ThresholdLiteral:
    li = r.obj(li, where)
    offset = None
    if conv:
        offset = r.ints(r.key(li, "offset", where), f"{where} offset", 2, -MAX_GEOMETRY, MAX_GEOMETRY)
    elif "offset" in li:
        raise ProgramError(f"{r.source}: {where} has an offset; dense literals take none")
    return ThresholdLiteral(r.integer(r.key(li, "input", where), f"{where} input", 0, limit - 1),
                            r.number(r.key(li, "threshold", where), f"{where} threshold"),
                            r.flag(r.key(li, "positive", where), f"{where} positive"),
                            offset)  # type: ignore[arg-type]


def _rule(r: _Reader, rr: dict[str, Any], rw: str, n: int, lits: tuple[ThresholdLiteral, ...]) -> ScoredRule:
    return ScoredRule(beta=r.number(r.key(rr, "beta", rw), f"{rw} beta", 0.0), n=n,
                      m=r.integer(r.key(rr, "m", rw), f"{rw} m", 0, n + 1),
                      error=r.number(r.key(rr, "error", rw), f"{rw} error", 0.0),
                      complexity=r.number(r.key(rr, "complexity", rw), f"{rw} complexity", 0.0),
                      method=r.text(rr.get("method", "weight"), f"{rw} method"), literals=lits)


class _Layer:
    """What a layer's units are read against: its kind, bounds and (version 2) shared thresholds."""

    def __init__(self, where: str, conv: bool, units_limit: int, lit_limit: int,
                 thresholds: dict[int, float] | None) -> None:
        self.where, self.conv, self.units_limit, self.lit_limit = where, conv, units_limit, lit_limit
        self.thresholds = thresholds


def _rules_v1(r: _Reader, u: dict[str, Any], uw: str, la: _Layer) -> tuple[list[ScoredRule], list[FrontPoint]]:
    rules = []
    for j, rr in enumerate(r.items(r.key(u, "rules", uw), f"{uw} rules")):
        rw = f"{uw} rule #{j}"
        rr = r.obj(rr, rw)
        lits = tuple(_literal(r, li, f"{rw} literal #{q}", la.conv, la.lit_limit)
                     for q, li in enumerate(r.items(r.key(rr, "literals", rw), f"{rw} literals")))
        n = r.integer(r.key(rr, "n", rw), f"{rw} n", 0)
        if n != len(lits):
            raise ProgramError(f"{r.source}: {rw} says n = {n} but lists {len(lits)} literals")
        rules.append(_rule(r, rr, rw, n, lits))
    front = []
    for j, f in enumerate(r.items(u.get("front", []), f"{uw} front")):
        f = r.obj(f, f"{uw} front #{j}")
        front.append(FrontPoint(r.integer(r.key(f, "n", uw), f"{uw} front n", 0),
                                r.integer(r.key(f, "m", uw), f"{uw} front m", 0),
                                r.number(r.key(f, "error", uw), f"{uw} front error", 0.0),
                                r.number(r.key(f, "complexity", uw), f"{uw} front complexity", 0.0)))
    return rules, front


def _table_v2(r: _Reader, t: Any, where: str, la: _Layer) -> list[ThresholdLiteral]:
    t = r.obj(t, where)
    r.only(t, {"input", "sign", "threshold", "dy", "dx"} if la.conv else {"input", "sign", "threshold"}, where)
    inputs = r.int_column(r.key(t, "input", where), f"{where} input", None, 0, la.lit_limit - 1)
    n = len(inputs)
    sign = r.key(t, "sign", where)
    if not isinstance(sign, str) or len(sign) != n or sign.strip("+-"):
        raise r.fail(f"{where} sign", f"{n} characters, each + or -", sign)
    if "threshold" in t:
        thresholds = r.number_column(t["threshold"], f"{where} threshold", n)
    elif la.thresholds is None:
        raise ProgramError(f"{r.source}: {where} has no threshold column and {la.where} no input_thresholds")
    else:
        shared = la.thresholds
        missing = [i for i in inputs if i not in shared]
        if missing:
            raise ProgramError(f"{r.source}: {where} reads input {missing[0]}, which has no threshold in "
                               f"{la.where} input_thresholds")
        thresholds = [shared[i] for i in inputs]
    if not la.conv:
        return [ThresholdLiteral(i, th, s == "+") for i, th, s in zip(inputs, thresholds, sign)]
    dy = r.int_column(r.key(t, "dy", where), f"{where} dy", n, -MAX_GEOMETRY, MAX_GEOMETRY)
    dx = r.int_column(r.key(t, "dx", where), f"{where} dx", n, -MAX_GEOMETRY, MAX_GEOMETRY)
    return [ThresholdLiteral(i, th, s == "+", (a, b)) for i, th, s, a, b in zip(inputs, thresholds, sign, dy, dx)]


def _rules_v2(r: _Reader, u: dict[str, Any], uw: str, la: _Layer) -> tuple[list[ScoredRule], list[FrontPoint]]:
    r.only(u, {"unit", "threshold", "literals", "rules", "front"}, uw)
    table = _table_v2(r, r.key(u, "literals", uw), f"{uw} literals", la)
    rules = []
    for j, rr in enumerate(r.items(r.key(u, "rules", uw), f"{uw} rules")):
        rw = f"{uw} rule #{j}"
        rr = r.obj(rr, rw)
        r.only(rr, {*_RULE_FIELDS, "literals"}, rw)
        n = r.integer(r.key(rr, "n", rw), f"{rw} n", 0)
        if "literals" in rr:
            refs = r.int_column(rr["literals"], f"{rw} literals", None, 0, len(table) - 1)
            if n != len(refs):
                raise ProgramError(f"{r.source}: {rw} says n = {n} but lists {len(refs)} literals")
            lits = tuple(table[k] for k in refs)
        elif n > len(table):
            raise ProgramError(f"{r.source}: {rw} says n = {n} (the first n literals of the unit) but the unit "
                               f"lists {len(table)}")
        else:
            lits = tuple(table[:n])
        rules.append(_rule(r, rr, rw, n, lits))
    f = r.obj(r.key(u, "front", uw), f"{uw} front")
    fw = f"{uw} front"
    r.only(f, {"n", "m", "error", "complexity"}, fw)
    ns = r.int_column(r.key(f, "n", fw), f"{fw} n", None, 0, MAX_ATOMS)
    k = len(ns)
    front = [FrontPoint(*point) for point in zip(
        ns, r.int_column(r.key(f, "m", fw), f"{fw} m", k, 0, MAX_ATOMS + 1),
        r.number_column(r.key(f, "error", fw), f"{fw} error", k, 0.0),
        r.number_column(r.key(f, "complexity", fw), f"{fw} complexity", k, 0.0))]
    return rules, front


def _input_thresholds(r: _Reader, v: Any, where: str, limit: int) -> dict[int, float] | None:
    if v is None:
        return None
    v = r.obj(v, where)
    r.only(v, {"input", "threshold"}, where)
    inputs = r.int_column(r.key(v, "input", where), f"{where} input", None, 0, limit - 1)
    thresholds = r.number_column(r.key(v, "threshold", where), f"{where} threshold", len(inputs))
    out = dict(zip(inputs, thresholds))
    if len(out) != len(inputs):
        seen: set[int] = set()
        twice = next(i for i in inputs if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise ProgramError(f"{r.source}: {where} lists input {twice} twice")
    return out


UnitReader = Callable[[_Reader, dict[str, Any], str, _Layer], tuple[list[ScoredRule], list[FrontPoint]]]


def _layer(r: _Reader, la: Any, where: str, betas: tuple[float, ...], version: int) -> LayerRules:
    la = r.obj(la, where)
    k = lambda name: r.key(la, name, where)
    name = r.text(k("name"), f"{where} name")
    where = f"layer {name!r}"
    kind = r.text(k("kind"), f"{where} kind", ("dense", "conv"))
    mode = r.text(k("mode"), f"{where} mode", ("chain", "paper"))
    input_shape = r.shape(k("input_shape"), f"{where} input_shape")
    output_shape = r.shape(k("output_shape"), f"{where} output_shape")
    conv, position = None, "all"
    if kind == "conv":
        c = r.obj(k("conv"), f"{where} conv")
        ck = lambda name: r.key(c, name, f"{where} conv")
        conv = ConvAttrs(r.ints(ck("kernel"), f"{where} kernel", 2, 1, MAX_GEOMETRY),  # type: ignore[arg-type]
                         r.ints(ck("strides"), f"{where} strides", 2, 1, MAX_GEOMETRY),  # type: ignore[arg-type]
                         r.ints(ck("pads"), f"{where} pads", 4, 0, MAX_GEOMETRY),  # type: ignore[arg-type]
                         r.ints(ck("dilations"), f"{where} dilations", 2, 1, MAX_GEOMETRY),  # type: ignore[arg-type]
                         r.integer(ck("groups"), f"{where} groups", 1, MAX_GEOMETRY))
        position = r.text(ck("position"), f"{where} conv position", ("all", "best"))
        if len(input_shape) != 3 or len(output_shape) != 3:
            raise ProgramError(f"{r.source}: conv {where} has shapes {list(input_shape)} -> {list(output_shape)}; "
                               "expected (channels, height, width) both")
    elif k("conv") is not None:
        raise r.fail(f"{where} conv", "null for a dense layer", k("conv"))
    units_limit = output_shape[0] if kind == "conv" else math.prod(output_shape)
    lit_limit = input_shape[0] if kind == "conv" else math.prod(input_shape)
    shared = _input_thresholds(r, la.get("input_thresholds"), f"{where} input_thresholds", lit_limit) \
        if version == 2 else None
    context = _Layer(where, kind == "conv", units_limit, lit_limit, shared)
    read_rules: UnitReader = _rules_v2 if version == 2 else _rules_v1
    units, seen = [], set()
    for i, u in enumerate(r.items(k("units"), f"{where} units")):
        uw = f"{where} unit #{i}"
        u = r.obj(u, uw)
        unit = r.integer(r.key(u, "unit", uw), f"{uw} unit", 0, units_limit - 1)
        if unit in seen:
            raise ProgramError(f"{r.source}: {where} has two entries for unit {unit}")
        seen.add(unit)
        uw = f"{where} unit {unit}"
        thr = r.key(u, "threshold", uw)
        rules, front = read_rules(r, u, uw, context)
        missing = [b for b in betas if b not in {x.beta for x in rules}]
        if missing:
            raise ProgramError(f"{r.source}: {uw} has no rule for beta {missing[0]:g}")
        units.append(UnitRules(unit=unit, threshold=None if thr is None else r.number(thr, f"{uw} threshold"),
                               rules=tuple(rules), front=tuple(front)))
    if not units:
        raise ProgramError(f"{r.source}: {where} has no units")
    steps = tuple(step_from_dict(st, f"{where} step #{q}", r.source)
                  for q, st in enumerate(r.items(la.get("steps", []), f"{where} steps")))
    return LayerRules(
        name=name, kind=kind, mode=mode, order=r.text(k("order"), f"{where} order"),
        activation=r.text(k("activation"), f"{where} activation"),
        fan_in=r.integer(k("fan_in"), f"{where} fan_in", 1), input_tensor=r.text(k("input_tensor"), f"{where} input_tensor"),
        output_tensor=r.text(k("output_tensor"), f"{where} output_tensor"), input_shape=input_shape,
        output_shape=output_shape, n_examples=r.integer(k("n_examples"), f"{where} n_examples", 0),
        units=tuple(sorted(units, key=lambda u: u.unit)), conv=conv, conv_position=position, steps=steps,
        chained=r.flag(la.get("chained", mode == "chain"), f"{where} chained"),
        fit_on=r.text(la.get("fit_on", "network"), f"{where} fit_on", FIT_ON))


def from_dict(d: Any, source: str = "rules") -> RuleSet:
    """The rule set in `d` (parsed rules.json, version 1 or 2), every field type- and range-checked."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        got = d.get("format") if isinstance(d, dict) else type(d).__name__
        raise ProgramError(f"{source} is not a mofn2logic rule set (format {got!r}, expected {FORMAT!r})")
    version = d.get("version")
    if type(version) is not int or version not in VERSIONS:
        raise ProgramError(f"{source} has rules format version {version!r}; this mofn2logic reads "
                           f"{' and '.join(map(str, VERSIONS))}")
    r = _Reader(source)
    betas = tuple(r.number(b, f"beta #{i}", 0.0) for i, b in enumerate(r.items(r.key(d, "betas", "the rule set"), "betas")))
    if not betas:
        raise ProgramError(f"{source}: the rule set has no betas")
    layers = tuple(_layer(r, la, f"layer #{i}", betas, version)
                   for i, la in enumerate(r.items(r.key(d, "layers", "the rule set"), "layers")))
    names = [la.name for la in layers]
    if len(set(names)) != len(names):
        raise ProgramError(f"{source}: layer names repeat: {names}")
    prov = r.obj(d.get("provenance", {}), "provenance")
    given = _names(r, d["names"], layers) if "names" in d else None
    return RuleSet(betas=betas, layers=layers, provenance=json.dumps(prov, sort_keys=True), names=given)


def _names(r: _Reader, v: Any, layers: tuple[LayerRules, ...]) -> Names:
    """The optional "names" section: {"inputs": [...], "classes": [...], "units": {layer: {unit: name}}}."""
    from mofn2logic.errors import DataError
    from mofn2logic.ir.names import check_text

    d = r.obj(v, "names")
    r.only(d, {"inputs", "image", "classes", "units"}, "names")

    def text(x: Any, where: str) -> str:
        try:
            return check_text(x, where)
        except DataError:
            raise r.fail(where, "a non-empty name without control characters", x) from None

    inputs = tuple(text(x, f"names inputs #{i}") for i, x in enumerate(r.items(d.get("inputs", []), "names inputs")))
    classes = tuple(text(x, f"names classes #{i}") for i, x in enumerate(r.items(d.get("classes", []), "names classes")))
    by_name = {la.name: la for la in layers}
    units = []
    for layer, given in r.obj(d.get("units", {}), "names units").items():
        if layer not in by_name:
            raise r.fail("names units", f"layers of the rule set ({', '.join(map(repr, by_name))})", layer)
        named = []
        for unit, name in r.obj(given, f"names units {layer!r}").items():
            if not unit.isdigit() or int(unit) >= len(by_name[layer].units):
                raise r.fail(f"names units {layer!r}", f"unit numbers 0..{len(by_name[layer].units) - 1}", unit)
            named.append((int(unit), text(name, f"names units {layer!r} {unit}")))
        units.append((layer, tuple(sorted(named))))
    order = {n: i for i, n in enumerate(by_name)}
    if "image" in d:
        shape = tuple(r.items(d["image"], "names image"))
        if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape) \
                or inputs:
            raise r.fail("names image", "the shape [channels, height, width] of an image input, without input names",
                         d["image"])
    else:
        shape = tuple(layers[0].input_shape) if layers and not layers[0].steps else ()
    return Names(inputs=inputs, input_shape=shape, classes=classes,
                 units=tuple(sorted(units, key=lambda item: order[item[0]])))


def loads(text: str, source: str = "rules") -> RuleSet:
    """The rule set in rules.json text (strict JSON, version 1 or 2)."""
    from mofn2logic.files import parse_json_text

    return from_dict(parse_json_text(text, source, ProgramError), source)


def read_rules(path: str | os.PathLike[str]) -> RuleSet:
    from mofn2logic.files import read_json

    return from_dict(read_json(path, "rules", ProgramError), source=repr(str(path)))


def write_rules(rs: RuleSet, path: str | os.PathLike[str]) -> None:
    from mofn2logic.files import write_text_atomic

    write_text_atomic(path, dumps(rs))
