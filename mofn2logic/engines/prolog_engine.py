"""The Prolog engine: the exported program (`exporters/prolog.py`) run by SWI-Prolog (`swipl`)
in one subprocess on the whole batch of samples (no Python-Prolog bridge): the samples go in
as x/N facts, and `classify_file(Data, atoms)` prints each sample's class and atoms."""

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


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def run(program: Program, x: np.ndarray, with_atoms: bool = True) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(atoms of every rule block, flat (E, k) bool -- empty without `with_atoms`; classes (E,))
    as computed by SWI-Prolog."""
    exe = swipl()
    x = np.asarray(x)
    e = len(x)
    with tempfile.TemporaryDirectory(prefix="mofn2logic-prolog-") as tmp:
        prog, data = Path(tmp) / "program.pl", Path(tmp) / "data.pl"
        prog.write_text(to_prolog(program), encoding="utf-8")
        data.write_text(data_facts(x, program), encoding="utf-8")
        goal = f"classify_file({quote_atom(str(data))}, {'atoms' if with_atoms else 'class'})"
        try:
            proc = subprocess.run([exe, "-q", "-O", "-g", goal, "-t", "halt", str(prog)], capture_output=True,
                                  text=True, encoding="utf-8")
        except OSError as err:
            raise ExportError(f"SWI-Prolog ({exe}) could not be started: {err}") from err
    if proc.returncode or proc.stderr.strip():
        raise ExportError(f"SWI-Prolog could not run the exported program (exit {proc.returncode}): "
                          f"{_one_line(proc.stderr) or 'no message'}")
    blocks = program.rule_blocks() if with_atoms else ()
    sizes = [int(np.prod(b.shape)) for b in blocks]
    classes = np.full(e, -1, np.int64)
    atoms = {b.name: np.zeros((e, k), bool) for b, k in zip(blocks, sizes)}
    lines = proc.stdout.splitlines()
    if len(lines) != e:
        raise ExportError(f"SWI-Prolog answered {len(lines)} lines for {e} samples: {_one_line(proc.stdout[:200])!r}")
    for line in lines:
        parts = line.split()
        try:
            s, c = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            raise ExportError(f"SWI-Prolog answered {_one_line(line, 80)!r}; expected 'sample class ...'") from None
        bits = parts[2:]
        if not 0 <= s < e or len(bits) != len(blocks) or any(len(t) != k for t, k in zip(bits, sizes)):
            raise ExportError(f"SWI-Prolog answered {_one_line(line, 80)!r} for sample {s}; expected the class and "
                              f"{len(blocks)} strings of atoms of lengths {sizes}")
        classes[s] = c
        for b, token in zip(blocks, bits):
            atoms[b.name][s] = np.frombuffer(token.encode(), np.uint8) == ord("1")
    if (classes < 0).any():
        raise ExportError(f"SWI-Prolog gave no class for sample {int(np.argmin(classes))}")
    return atoms, classes
