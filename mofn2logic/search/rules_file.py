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


def _tuple(v: Any) -> Any:
    return tuple(_tuple(x) for x in v) if isinstance(v, list) else v


def step_from_dict(d: dict[str, Any]) -> Step:
    """A typed step from its JSON form ``{"op": ..., attributes}`` (unknown attributes are refused)."""
    kind = STEP_TYPES.get(d.get("op"))  # type: ignore[arg-type]
    if kind is None:
        raise ProgramError(f"step op {d.get('op')!r} is unknown; expected one of {', '.join(STEP_TYPES)}")
    fields = {k: _tuple(v) for k, v in d.items() if k != "op"}
    if "ceil_mode" in fields:
        fields["ceil_mode"] = bool(fields["ceil_mode"])
    if "count_include_pad" in fields:
        fields["count_include_pad"] = bool(fields["count_include_pad"])
    return kind(**fields)


def from_dict(d: dict[str, Any], source: str = "rules") -> RuleSet:
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        got = d.get("format") if isinstance(d, dict) else type(d).__name__
        raise ProgramError(f"{source} is not a mofn2logic rule set (format {got!r}, expected {FORMAT!r})")
    if d.get("version") != VERSION:
        raise ProgramError(f"{source} has rules format version {d.get('version')!r}; this mofn2logic reads {VERSION}")
    try:
        layers = []
        for la in d["layers"]:
            conv = la.get("conv")
            units = tuple(
                UnitRules(
                    unit=int(u["unit"]), threshold=None if u["threshold"] is None else float(u["threshold"]),
                    rules=tuple(ScoredRule(beta=float(r["beta"]), n=int(r["n"]), m=int(r["m"]), error=float(r["error"]),
                                           complexity=float(r["complexity"]), method=str(r.get("method", "weight")),
                                           literals=tuple(ThresholdLiteral(int(li["input"]), float(li["threshold"]),
                                                                           bool(li["positive"]),
                                                                           tuple(li["offset"]) if "offset" in li else None)
                                                          for li in r["literals"])) for r in u["rules"]),
                    front=tuple(FrontPoint(int(f["n"]), int(f["m"]), float(f["error"]), float(f["complexity"]))
                                for f in u["front"]),
                ) for u in la["units"])
            layers.append(LayerRules(
                name=str(la["name"]), kind=la["kind"], mode=la["mode"], order=la["order"], activation=la["activation"],
                fan_in=int(la["fan_in"]), input_tensor=la["input_tensor"], output_tensor=la["output_tensor"],
                input_shape=tuple(la["input_shape"]), output_shape=tuple(la["output_shape"]),
                n_examples=int(la["n_examples"]), units=units,
                steps=tuple(step_from_dict(st) for st in la.get("steps", [])),
                conv=None if conv is None else ConvAttrs(tuple(conv["kernel"]), tuple(conv["strides"]),
                                                         tuple(conv["pads"]), tuple(conv["dilations"]),
                                                         int(conv["groups"])),
                conv_position="all" if conv is None else conv["position"],
                chained=bool(la.get("chained", la["mode"] == "chain"))))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ProgramError(f"{source} is a malformed rule set: {type(e).__name__} {e}") from e
    return RuleSet(betas=tuple(float(b) for b in d["betas"]), layers=tuple(layers),
                   provenance=json.dumps(d.get("provenance", {}), sort_keys=True))


def read_rules(path: str | os.PathLike[str]) -> RuleSet:
    from mofn2logic.files import read_json

    return from_dict(read_json(path, "rules", ProgramError), source=repr(str(path)))


def write_rules(rs: RuleSet, path: str | os.PathLike[str]) -> None:
    from mofn2logic.files import write_text_atomic

    write_text_atomic(path, dumps(rs))
