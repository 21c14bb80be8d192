"""``rules.json``: the rule set as a file (format ``mofn2logic-rules``, version 1).

::

    {"format": "mofn2logic-rules", "version": 1,
     "provenance": {"package", "version", "model", "model_sha256", "data", "data_sha256", "options"},
     "betas": [...],
     "layers": [{"name", "kind", "mode", "order", "activation", "fan_in", "input_tensor",
                 "output_tensor", "input_shape", "output_shape", "n_examples", "conv", "chained",
                 "units": [{"unit", "threshold",
                            "rules": [{"beta", "n", "m", "error", "complexity", "method",
                                       "literals": [{"input", "threshold", "positive"[, "offset"]}]}],
                            "front": [{"n", "m", "error", "complexity"}]}],
                 "steps": [{"op", ...attributes}]}]}

The fields mean what the IR's do (`mofn2logic.ir.rules`); ``conv`` holds the convolution's
attributes and ``position`` (all or best); ``steps`` the typed steps' attributes and tensors;
``chained`` (absent in older files: true in chain mode) whether the inputs' thresholds are the
head splits of the layer below.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from mofn2logic.errors import ProgramError
from mofn2logic.ir.network import ConvAttrs
from mofn2logic.ir.rules import FrontPoint, LayerRules, RuleSet, ScoredRule, ThresholdLiteral, UnitRules
from mofn2logic.ir.steps import STEP_TYPES, Step, step_fields

FORMAT = "mofn2logic-rules"
VERSION = 1


def to_dict(rs: RuleSet) -> dict[str, Any]:
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

    def layer(la: LayerRules) -> dict[str, Any]:
        conv = None
        if la.conv is not None:
            c = la.conv
            conv = {"kernel": list(c.kernel), "strides": list(c.strides), "pads": list(c.pads),
                    "dilations": list(c.dilations), "groups": c.groups, "position": la.conv_position}
        return {"name": la.name, "kind": la.kind, "mode": la.mode, "order": la.order, "activation": la.activation,
                "fan_in": la.fan_in, "input_tensor": la.input_tensor, "output_tensor": la.output_tensor,
                "input_shape": list(la.input_shape), "output_shape": list(la.output_shape),
                "n_examples": la.n_examples, "conv": conv,
                "chained": la.chained,
                "steps": [{"op": s.op, **step_fields(s), "input": s.input, "output": s.output} for s in la.steps],
                "units": [unit(u) for u in la.units]}

    return {"format": FORMAT, "version": VERSION, "provenance": json.loads(rs.provenance),
            "betas": list(rs.betas), "layers": [layer(la) for la in rs.layers]}


def dumps(rs: RuleSet) -> str:
    return json.dumps(to_dict(rs), indent=1, ensure_ascii=False) + "\n"


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
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or (
                low is not None and v < low):
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


def _layer(r: _Reader, la: Any, where: str, betas: tuple[float, ...]) -> LayerRules:
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
        rules = []
        for j, rr in enumerate(r.items(r.key(u, "rules", uw), f"{uw} rules")):
            rw = f"{uw} rule #{j}"
            rr = r.obj(rr, rw)
            lits = tuple(_literal(r, li, f"{rw} literal #{q}", kind == "conv", lit_limit)
                         for q, li in enumerate(r.items(r.key(rr, "literals", rw), f"{rw} literals")))
            n = r.integer(r.key(rr, "n", rw), f"{rw} n", 0)
            if n != len(lits):
                raise ProgramError(f"{r.source}: {rw} says n = {n} but lists {len(lits)} literals")
            rules.append(ScoredRule(beta=r.number(r.key(rr, "beta", rw), f"{rw} beta", 0.0), n=n,
                                    m=r.integer(r.key(rr, "m", rw), f"{rw} m", 0, n + 1),
                                    error=r.number(r.key(rr, "error", rw), f"{rw} error", 0.0),
                                    complexity=r.number(r.key(rr, "complexity", rw), f"{rw} complexity", 0.0),
                                    method=r.text(rr.get("method", "weight"), f"{rw} method"), literals=lits))
        missing = [b for b in betas if b not in {x.beta for x in rules}]
        if missing:
            raise ProgramError(f"{r.source}: {uw} has no rule for beta {missing[0]:g}")
        front = []
        for j, f in enumerate(r.items(u.get("front", []), f"{uw} front")):
            f = r.obj(f, f"{uw} front #{j}")
            front.append(FrontPoint(r.integer(r.key(f, "n", uw), f"{uw} front n", 0),
                                    r.integer(r.key(f, "m", uw), f"{uw} front m", 0),
                                    r.number(r.key(f, "error", uw), f"{uw} front error", 0.0),
                                    r.number(r.key(f, "complexity", uw), f"{uw} front complexity", 0.0)))
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
        chained=r.flag(la.get("chained", mode == "chain"), f"{where} chained"))


def from_dict(d: Any, source: str = "rules") -> RuleSet:
    """The rule set in `d` (parsed rules.json), every field type- and range-checked."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        got = d.get("format") if isinstance(d, dict) else type(d).__name__
        raise ProgramError(f"{source} is not a mofn2logic rule set (format {got!r}, expected {FORMAT!r})")
    if d.get("version") != VERSION:
        raise ProgramError(f"{source} has rules format version {d.get('version')!r}; this mofn2logic reads {VERSION}")
    r = _Reader(source)
    betas = tuple(r.number(b, f"beta #{i}", 0.0) for i, b in enumerate(r.items(r.key(d, "betas", "the rule set"), "betas")))
    if not betas:
        raise ProgramError(f"{source}: the rule set has no betas")
    layers = tuple(_layer(r, la, f"layer #{i}", betas)
                   for i, la in enumerate(r.items(r.key(d, "layers", "the rule set"), "layers")))
    names = [la.name for la in layers]
    if len(set(names)) != len(names):
        raise ProgramError(f"{source}: layer names repeat: {names}")
    prov = r.obj(d.get("provenance", {}), "provenance")
    return RuleSet(betas=betas, layers=layers, provenance=json.dumps(prov, sort_keys=True))


def read_rules(path: str | os.PathLike[str]) -> RuleSet:
    from mofn2logic.files import read_json

    return from_dict(read_json(path, "rules", ProgramError), source=repr(str(path)))


def write_rules(rs: RuleSet, path: str | os.PathLike[str]) -> None:
    from mofn2logic.files import write_text_atomic

    write_text_atomic(path, dumps(rs))
