"""The Prolog engine: the exported program (`exporters/prolog.py`) run by SWI-Prolog (`swipl`)
in one subprocess per batch of samples (no Python-Prolog bridge): the samples go in as x/N
facts, and the runtime's `classify_file(Data, masks)` evaluates the program's clauses bottom-up
on all of them at once and prints each sample's class, then every rule block's (and a decision
list's) atoms as one integer per unit or channel (bit P * E + K: position P of the K-th of E
samples)."""

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


# Bits held at once by one channel's atoms over the samples and positions (a batch's samples
# are limited so that a grid of the widest block fits; Prolog's integers grow with it).
BATCH_BITS = 1 << 22


def batch_size(program: Program) -> int:
    """Samples per SWI-Prolog run: as many as keep the widest grid's integers at BATCH_BITS."""
    grids = [int(np.prod(b.shape[1:])) for b in program.blocks if len(b.shape) == 3]
    if len(program.input.shape) == 3:
        grids.append(int(np.prod(program.input.shape[1:])))
    return max(64, BATCH_BITS // max(grids, default=1))


def run(program: Program, x: np.ndarray, with_atoms: bool = True) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(atoms of every rule block, flat (E, k) bool -- empty without `with_atoms`; classes (E,))
    as computed by SWI-Prolog."""
    exe = swipl()
    x = np.asarray(x)
    e = len(x)
    blocks = program.atom_blocks() if with_atoms else ()
    atoms = {b.name: np.zeros((e, int(np.prod(b.shape))), bool) for b in blocks}
    classes = np.full(e, -1, np.int64)
    step = batch_size(program)
    with tempfile.TemporaryDirectory(prefix="mofn2logic-prolog-") as tmp:
        prog = Path(tmp) / "program.pl"
        prog.write_text(to_prolog(program), encoding="utf-8")
        for start in range(0, e, step):
            part = x[start:start + step]
            data = Path(tmp) / "data.pl"
            data.write_text(data_facts(part, program), encoding="utf-8")
            out = _swipl(exe, prog, data, "masks" if with_atoms else "class")
            _read(out, len(part), blocks, program, classes[start:start + step],
                  {k: v[start:start + step] for k, v in atoms.items()})
    if (classes < 0).any():
        raise ExportError(f"SWI-Prolog gave no class for sample {int(np.argmin(classes))}")
    return atoms, classes


# A batch of a 200,000-literal replica takes seconds (benchmarks/README.md); past this, swipl is stuck.
BATCH_SECONDS = 1800


def _swipl(exe: str, prog: Path, data: Path, mode: str) -> str:
    goal = f"classify_file({quote_atom(str(data))}, {mode})"
    try:
        proc = subprocess.run([exe, "-q", "-O", "-g", goal, "-t", "halt", str(prog)], capture_output=True,
                              text=True, encoding="utf-8", timeout=BATCH_SECONDS)
    except subprocess.TimeoutExpired as err:
        raise ExportError(f"SWI-Prolog did not finish a batch within {BATCH_SECONDS} s; expected a smaller program "
                          "or fewer samples") from err
    except OSError as err:
        raise ExportError(f"SWI-Prolog ({exe}) could not be started: {err}") from err
    if proc.returncode or proc.stderr.strip():
        raise ExportError(f"SWI-Prolog could not run the exported program (exit {proc.returncode}): "
                          f"{_one_line(proc.stderr) or 'no message'}")
    return proc.stdout


def _read(stdout: str, e: int, blocks, program: Program, classes: np.ndarray, atoms: dict[str, np.ndarray]) -> None:
    """Fills `classes` and `atoms` (views of one batch) from classify_file's lines: a class line
    per sample, then (mode masks) a hexadecimal integer per unit or channel of every rule block."""
    lines = stdout.splitlines()
    units = [int(b.shape[0]) for b in blocks]
    if len(lines) != e + sum(units):
        raise ExportError(f"SWI-Prolog answered {len(lines)} lines for {e} samples and {sum(units)} units: "
                          f"{_one_line(stdout[:200])!r}")
    for k, line in enumerate(lines[:e]):
        parts = line.split()
        try:
            s, c = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            raise ExportError(f"SWI-Prolog answered {_one_line(line, 80)!r}; expected 'sample class'") from None
        if s != k or len(parts) != 2:
            raise ExportError(f"SWI-Prolog answered {_one_line(line, 80)!r} for sample {k}; expected '{k} class'")
        classes[k] = c
    at = e
    for b, n in zip(blocks, units):
        positions = int(np.prod(b.shape[1:]))  # 1 for a dense block
        out = atoms[b.name].reshape(e, n, positions)
        for u in range(n):
            out[:, u, :] = _bits(lines[at], positions * e).reshape(positions, e).T
            at += 1


def _bits(text: str, n: int) -> np.ndarray:
    """The n low bits of a hexadecimal integer, lowest first, as bools."""
    try:
        value = int(text, 16)
    except ValueError:
        raise ExportError(f"SWI-Prolog answered {_one_line(text, 80)!r}; expected a hexadecimal integer") from None
    if value >> n:
        raise ExportError(f"SWI-Prolog answered an integer of {value.bit_length()} bits; expected at most {n}")
    raw = np.frombuffer(value.to_bytes((n + 7) // 8, "little"), np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].astype(bool)
