"""The Prolog engine: the exported program run by SWI-Prolog (`swipl`) in a subprocess, on the
whole batch of samples at once (no Python-Prolog bridge)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mofn2logic.engines.base import EngineResult
from mofn2logic.errors import ExportError, ToolMissingError
from mofn2logic.exporters.prolog import data_facts, quote_atom, to_prolog
from mofn2logic.ir.program import Program

INSTALL = "install SWI-Prolog with: sudo apt-get install swi-prolog-nox (or see https://www.swi-prolog.org)"


def swipl() -> str:
    exe = shutil.which("swipl")
    if exe is None:
        raise ToolMissingError(f"SWI-Prolog ('swipl') is not installed; {INSTALL}")
    return exe


class PrologEngine:
    """The exported Prolog program run by SWI-Prolog (``--engine prolog``)."""

    name = "prolog"

    def run(self, program: Program, x: np.ndarray) -> EngineResult:
        atoms, classes = run(program, x)
        return EngineResult(atoms, None, classes)


def run(program: Program, x: np.ndarray, with_atoms: bool = True) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(atoms of every rule layer, flat (E, k) bool; classes (E,)) as computed by SWI-Prolog."""
    exe = swipl()
    with tempfile.TemporaryDirectory(prefix="mofn2logic-prolog-") as tmp:
        prog, data = Path(tmp) / "program.pl", Path(tmp) / "data.pl"
        prog.write_text(to_prolog(program), encoding="utf-8")
        data.write_text(data_facts(x, program), encoding="utf-8")
        goal = f"classify_file({quote_atom(str(data))}, {'atoms' if with_atoms else 'class'})"
        proc = subprocess.run([exe, "-q", "-O", "-g", goal, "-t", "halt", str(prog)], capture_output=True, text=True)
    if proc.returncode or proc.stderr.strip():
        raise ExportError(f"SWI-Prolog could not run the exported program (exit {proc.returncode}): "
                          f"{' '.join(proc.stderr.split())[:300]}")
    e = len(x)
    classes = np.full(e, -1, np.int64)
    layers = [b for b in program.rule_blocks()]
    atoms = {b.name: np.zeros((e, int(np.prod(b.shape))), bool) for b in layers}
    for line in proc.stdout.splitlines():
        parts = line.split()
        s = int(parts[0])
        classes[s] = int(parts[1])
        for b, token in zip(layers, parts[2:]):
            bits = token.split(":", 1)[1]
            atoms[b.name][s] = np.frombuffer(bits.encode(), np.uint8) == ord("1")
    return atoms, classes
