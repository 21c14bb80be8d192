"""The program IR as JSON (format ``mofn2logic-program``, version 1): the same data as .mofn."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

from mofn2logic.errors import ProgramError
from mofn2logic.ir.program import IndexBlock, InputTests, AtomLiteral, MofNRule, PoolBlock, Program, RuleBlock
from mofn2logic.ir.steps import MaxPool, step_fields

FORMAT, VERSION = "mofn2logic-program", 2
KINDS = {"RuleBlock": RuleBlock, "PoolBlock": PoolBlock, "IndexBlock": IndexBlock}
# Version 1 named the blocks *Layer and kept a pool's attributes flat.
V1_KINDS = {"RuleLayer": "RuleBlock", "PoolLayer": "PoolBlock", "IndexLayer": "IndexBlock"}


def _upgrade_v1(d: dict[str, Any]) -> dict[str, Any]:
    blocks = []
    for b in d.get("blocks", []):
        b = dict(b)
        b["type"] = V1_KINDS.get(b.get("type"), b.get("type"))
        if b["type"] == "PoolBlock":
            b["pool"] = {"kernel": b.pop("kernel", None), "strides": b.pop("stride", None),
                         "pads": b.pop("pads", None), "dilations": b.pop("dilation", None)}
        blocks.append(b)
    return {**d, "version": VERSION, "blocks": blocks}


def to_dict(p: Program) -> dict[str, Any]:
    blocks = []
    for b in p.blocks:
        d = asdict(b)
        if isinstance(b, PoolBlock):
            d["pool"] = step_fields(b.pool)
        d["type"] = type(b).__name__
        blocks.append(d)
    return {"format": FORMAT, "version": VERSION, "name": p.name, "decision": p.decision,
            "input": asdict(p.input), "blocks": blocks}


def dumps(p: Program) -> str:
    return json.dumps(to_dict(p), indent=1, ensure_ascii=False) + "\n"


def _tuple(v):
    return tuple(_tuple(x) for x in v) if isinstance(v, list) else v


def from_dict(d: dict[str, Any], source: str = "program") -> Program:
    if isinstance(d, dict) and d.get("format") == FORMAT and d.get("version") == 1:
        d = _upgrade_v1(d)
    if d.get("format") != FORMAT or d.get("version") != VERSION:
        raise ProgramError(f"{source} is not a mofn2logic program (format {d.get('format')!r} version "
                           f"{d.get('version')!r}; expected {FORMAT!r} version {VERSION})")
    try:
        inp = InputTests(**{k: _tuple(v) for k, v in d["input"].items()})
        blocks = []
        for b in d["blocks"]:
            kind = KINDS[b["type"]]
            fields = {k: _tuple(v) for k, v in b.items() if k not in ("type", "rules")}
            if kind is PoolBlock:
                fields["pool"] = MaxPool(**{k: bool(v) if k == "ceil_mode" else _tuple(v) for k, v in b["pool"].items()})
            if kind is RuleBlock:
                fields["rules"] = tuple(
                    MofNRule(r["unit"], r["m"], tuple(AtomLiteral(li["src"], li["positive"], _tuple(li["offset"])) for li in r["lits"]),
                         r["threshold"]) for r in b["rules"])
            blocks.append(kind(**fields))
        program = Program(d["name"], inp, tuple(blocks), d["decision"])
    except (KeyError, TypeError) as e:
        raise ProgramError(f"{source} is a malformed program: {type(e).__name__} {e}") from e
    from mofn2logic.program.check import check_program

    check_program(program, source)
    return program


def read_program_json(path: str | os.PathLike[str]) -> Program:
    from mofn2logic.files import read_json

    return from_dict(read_json(path, "program", ProgramError), repr(str(path)))
