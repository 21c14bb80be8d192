"""The rule-set IR (plain frozen data) and its JSON form, ``rules.json``.

Format (version 1)::

    {"format": "mofn2logic-rules", "version": 1,
     "provenance": {"package", "version", "model", "model_sha256", "data", "data_sha256", "options"},
     "betas": [...],
     "layers": [{"name", "kind", "mode", "order", "activation", "fan_in", "input_tensor",
                 "output_tensor", "input_shape", "output_shape", "n_examples", "conv",
                 "units": [{"unit", "threshold",
                            "rules": [{"beta", "n", "m", "error", "complexity", "method",
                                       "literals": [{"input", "threshold", "positive"[, "offset"]}]}],
                            "front": [{"n", "m", "error", "complexity"}]}],
                 "steps": [{"op", ...attributes}]}]}

Layers are in network order. A unit's ``threshold`` is its head split (null for the output
layer, whose targets are the one-hot argmax). A dense literal's ``input`` is the input unit;
a convolution's is the input channel, with ``offset`` [dy, dx]: the input position is
(oy * stride_y + dy, ox * stride_x + dx) for output position (oy, ox). ``method`` says which
search found the rule (weight, std, gain or small). ``front`` is the unit's Pareto front of
(complexity, error) over the candidates of the chosen ordering(s). ``steps`` are the
non-parametric operations (maxpool, flatten, reshape, transpose, ...) between the previous
layer's output and this layer's input; shapes are per sample, as harvested.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from mofn2logic.errors import ProgramError

FORMAT = "mofn2logic-rules"
VERSION = 1


@dataclass(frozen=True, slots=True)
class Literal:
    input: int
    threshold: float
    positive: bool
    offset: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    beta: float
    n: int
    m: int
    error: float
    complexity: float
    literals: tuple[Literal, ...]
    method: str = "weight"


@dataclass(frozen=True, slots=True)
class FrontPoint:
    n: int
    m: int
    error: float
    complexity: float


@dataclass(frozen=True, slots=True)
class UnitRules:
    unit: int
    threshold: float | None
    rules: tuple[Rule, ...]
    front: tuple[FrontPoint, ...]

    def rule(self, beta: float) -> Rule:
        for r in self.rules:
            if r.beta == beta:
                return r
        raise ProgramError(f"unit {self.unit} has no rule for beta {beta}; it has {[r.beta for r in self.rules]}")


@dataclass(frozen=True, slots=True)
class ConvInfo:
    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    groups: int
    position: str  # "all" (shared by every position) or "best" (the reference's single position)


@dataclass(frozen=True, slots=True)
class LayerRules:
    name: str
    kind: str
    mode: str
    order: str
    activation: str
    fan_in: int
    input_tensor: str
    output_tensor: str
    input_shape: tuple[int | None, ...]
    output_shape: tuple[int | None, ...]
    n_examples: int
    units: tuple[UnitRules, ...]
    conv: ConvInfo | None = None
    steps: tuple[tuple[str, str], ...] = ()  # (op, attrs as JSON) between the previous layer and this one


@dataclass(frozen=True, slots=True)
class RuleSet:
    betas: tuple[float, ...]
    layers: tuple[LayerRules, ...]
    provenance: str = "{}"  # canonical JSON text: keeps the IR hashable and frozen

    def layer(self, name: str) -> LayerRules:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ProgramError(f"the rule set has no layer {name!r}; it has {[la.name for la in self.layers]}")


# --------------------------------------------------------------------------- JSON

def to_dict(rs: RuleSet) -> dict[str, Any]:
    def lit(li: Literal) -> dict[str, Any]:
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
                    "dilations": list(c.dilations), "groups": c.groups, "position": c.position}
        return {"name": la.name, "kind": la.kind, "mode": la.mode, "order": la.order, "activation": la.activation,
                "fan_in": la.fan_in, "input_tensor": la.input_tensor, "output_tensor": la.output_tensor,
                "input_shape": list(la.input_shape), "output_shape": list(la.output_shape),
                "n_examples": la.n_examples, "conv": conv,
                "steps": [{"op": op, **json.loads(attrs)} for op, attrs in la.steps],
                "units": [unit(u) for u in la.units]}

    return {"format": FORMAT, "version": VERSION, "provenance": json.loads(rs.provenance),
            "betas": list(rs.betas), "layers": [layer(la) for la in rs.layers]}


def dumps(rs: RuleSet) -> str:
    return json.dumps(to_dict(rs), indent=1, ensure_ascii=False) + "\n"


def from_dict(d: dict[str, Any], source: str = "rules") -> RuleSet:
    if d.get("format") != FORMAT:
        raise ProgramError(f"{source} is not a mofn2logic rule set (format {d.get('format')!r}, expected {FORMAT!r})")
    if d.get("version") != VERSION:
        raise ProgramError(f"{source} has rules format version {d.get('version')!r}; this mofn2logic reads {VERSION}")
    try:
        layers = []
        for la in d["layers"]:
            conv = la.get("conv")
            units = tuple(
                UnitRules(
                    unit=int(u["unit"]), threshold=u["threshold"],
                    rules=tuple(Rule(beta=float(r["beta"]), n=int(r["n"]), m=int(r["m"]), error=float(r["error"]),
                                     complexity=float(r["complexity"]), method=r.get("method", "weight"),
                                     literals=tuple(Literal(int(li["input"]), float(li["threshold"]), bool(li["positive"]),
                                                            tuple(li["offset"]) if "offset" in li else None)
                                                    for li in r["literals"])) for r in u["rules"]),
                    front=tuple(FrontPoint(int(f["n"]), int(f["m"]), float(f["error"]), float(f["complexity"]))
                                for f in u["front"]),
                ) for u in la["units"])
            layers.append(LayerRules(
                name=la["name"], kind=la["kind"], mode=la["mode"], order=la["order"], activation=la["activation"],
                fan_in=int(la["fan_in"]), input_tensor=la["input_tensor"], output_tensor=la["output_tensor"],
                input_shape=tuple(la["input_shape"]), output_shape=tuple(la["output_shape"]),
                n_examples=int(la["n_examples"]), units=units,
                steps=tuple((st["op"], json.dumps({k: v for k, v in st.items() if k != "op"}, sort_keys=True))
                            for st in la.get("steps", [])),
                conv=None if conv is None else ConvInfo(tuple(conv["kernel"]), tuple(conv["strides"]), tuple(conv["pads"]),
                                                        tuple(conv["dilations"]), int(conv["groups"]), conv["position"])))
    except (KeyError, TypeError, ValueError) as e:
        raise ProgramError(f"{source} is a malformed rule set: {type(e).__name__} {e}") from e
    return RuleSet(betas=tuple(float(b) for b in d["betas"]), layers=tuple(layers),
                   provenance=json.dumps(d.get("provenance", {}), sort_keys=True))


def read_rules(path: str | os.PathLike[str]) -> RuleSet:
    from mofn2logic.io_util import read_json

    return from_dict(read_json(path, "rules", ProgramError), source=repr(str(path)))


def write_rules(rs: RuleSet, path: str | os.PathLike[str]) -> None:
    from mofn2logic.io_util import write_text_atomic

    write_text_atomic(path, dumps(rs))
