"""The program IR as JSON (format ``mofn2logic-program``, version 2): the same data as .mofn.
`to_json` and `parse_json` are exact inverses; version 1 files (blocks named *Layer) still read.
A decision list is a block of type DecisionListBlock (its rules in order, then `default`). A program
with names of atoms (`Program.names`) has ``"names": [[block, [[unit, name], ...]], ...]`` (block ""
for the input tests); without, the key is left out."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

from mofn2logic.errors import ProgramError
from mofn2logic.exporters.base import Printer
from mofn2logic.ir.program import (
    AtomLiteral,
    DecisionListBlock,
    IndexBlock,
    InputTests,
    MofNRule,
    PoolBlock,
    Program,
    RuleBlock,
)
from mofn2logic.ir.steps import MaxPool, step_fields

FORMAT, VERSION = "mofn2logic-program", 2
KINDS = {"RuleBlock": RuleBlock, "PoolBlock": PoolBlock, "IndexBlock": IndexBlock, "DecisionListBlock": DecisionListBlock}
# Version 1 named the blocks *Layer and kept a pool's attributes flat.
V1_KINDS = {"RuleLayer": "RuleBlock", "PoolLayer": "PoolBlock", "IndexLayer": "IndexBlock"}


class JsonPrinter(Printer):
    """Blocks print to JSON-ready dicts (a block's fields, then its ``type``); the program to text."""

    target = "JSON"
    options: dict[str, Any] = {"indent": 1}

    def _print_Program(self, p: Program) -> str:
        return json.dumps(self.record(p), indent=self.settings["indent"], ensure_ascii=False) + "\n"

    def record(self, p: Program) -> dict[str, Any]:
        record = {"format": FORMAT, "version": VERSION, "name": p.name, "decision": p.decision,
                  "input": self._print(p.input), "blocks": [self._print(b) for b in p.blocks]}
        if p.names:
            record["names"] = [[block, [[u, n] for u, n in units]] for block, units in p.names]
        return record

    def _print_InputTests(self, inp: InputTests) -> dict[str, Any]:
        return asdict(inp)

    def _print_RuleBlock(self, b: RuleBlock) -> dict[str, Any]:
        return {**asdict(b), "type": "RuleBlock"}

    def _print_PoolBlock(self, b: PoolBlock) -> dict[str, Any]:
        return {**asdict(b), "pool": step_fields(b.pool), "type": "PoolBlock"}

    def _print_IndexBlock(self, b: IndexBlock) -> dict[str, Any]:
        return {**asdict(b), "type": "IndexBlock"}

    def _print_DecisionListBlock(self, b: DecisionListBlock) -> dict[str, Any]:
        return {**asdict(b), "type": "DecisionListBlock"}


def to_dict(program: Program) -> dict[str, Any]:
    """The program as the JSON document's data (what `to_json` writes)."""
    return JsonPrinter().record(program)


def to_json(program: Program, **options: Any) -> str:
    return JsonPrinter(**options).doprint(program)


def write_json(program: Program, path: str | os.PathLike[str], **options: Any) -> None:
    from mofn2logic.files import write_text_atomic

    write_text_atomic(path, to_json(program, **options))


def _upgrade_v1(d: dict[str, Any]) -> dict[str, Any]:
    blocks = []
    for b in d.get("blocks", []):
        b = dict(b)
        b["type"] = V1_KINDS.get(str(b.get("type")), b.get("type"))
        if b["type"] == "PoolBlock":
            b["pool"] = {"kernel": b.pop("kernel", None), "strides": b.pop("stride", None),
                         "pads": b.pop("pads", None), "dilations": b.pop("dilation", None)}
        blocks.append(b)
    return {**d, "version": VERSION, "blocks": blocks}


def _tuple(v):
    return tuple(_tuple(x) for x in v) if isinstance(v, list) else v


def from_dict(d: dict[str, Any], source: str = "program") -> Program:
    """The program in a JSON document's data, checked (`check_program`)."""
    if isinstance(d, dict) and d.get("format") == FORMAT and d.get("version") == 1:
        d = _upgrade_v1(d)
    if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("version") != VERSION:
        got = (d.get("format"), d.get("version")) if isinstance(d, dict) else (type(d).__name__, None)
        raise ProgramError(f"{source} is not a mofn2logic program (format {got[0]!r} version "
                           f"{got[1]!r}; expected {FORMAT!r} version {VERSION})")
    try:
        inp = InputTests(**{k: _tuple(v) for k, v in d["input"].items()})
        blocks = []
        for b in d["blocks"]:
            kind = KINDS[b["type"]]
            fields = {k: _tuple(v) for k, v in b.items() if k not in ("type", "rules")}
            if kind is PoolBlock:
                pool: dict[str, Any] = {k: bool(v) if k == "ceil_mode" else _tuple(v) for k, v in b["pool"].items()}
                fields["pool"] = MaxPool(**pool)
            if kind is RuleBlock or kind is DecisionListBlock:
                fields["rules"] = tuple(
                    MofNRule(r["unit"], r["m"],
                             tuple(AtomLiteral(li["src"], li["positive"], _tuple(li["offset"])) for li in r["lits"]),
                             r["threshold"])
                    for r in b["rules"])
            blocks.append(kind(**fields))
        names = d.get("names", [])
        if not isinstance(names, list):
            raise TypeError(f"names is a {type(names).__name__}; expected a list")
        program = Program(d["name"], inp, tuple(blocks), d["decision"], _tuple(names))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ProgramError(f"{source} is a malformed program: {type(e).__name__} {e}") from e
    from mofn2logic.program.check import check_program

    check_program(program, source)
    return program


def parse_json(text: str, source: str = "<text>") -> Program:
    from mofn2logic.files import parse_json_text

    return from_dict(parse_json_text(text, source, ProgramError), source)


def read_json(path: str | os.PathLike[str]) -> Program:
    from mofn2logic.files import read_text

    return parse_json(read_text(path, "program"), repr(str(path)))
