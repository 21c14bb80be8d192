"""What every engine answers: one protocol, one result type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mofn2logic.ir.program import Program


@dataclass(frozen=True, slots=True, eq=False)
class EngineResult:
    """A program run on E samples.

    atoms: rule block (or decision list) name -> (E, atoms of the block) bool, flat in the block's
           shape order; a decision list's atoms are the one-hot of its class;
    margins: (E, classes) float, (count - M) / max(N, 1) per class (a decision list: the one-hot
             of its class as 1.0 / 0.0), or None when the engine reports only the decision;
    classes: (E,) int, the decided class (the highest margin, lowest index on ties).
    """

    atoms: dict[str, np.ndarray]
    margins: np.ndarray | None
    classes: np.ndarray


class Engine(Protocol):
    name: str

    def run(self, program: Program, x: np.ndarray) -> EngineResult:
        """Run `program` on the cut tensor's values `x` (E, *program.input.shape)."""
        ...


class EvaluatingEngine:
    """An engine whose `evaluate(program, x)` gives (atoms per block, margins, classes) in Python."""

    name = ""

    @staticmethod
    def evaluate(program: Program, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        raise NotImplementedError

    def run(self, program: Program, x: np.ndarray) -> EngineResult:
        atoms, margins, classes = self.evaluate(program, x)
        return EngineResult(flat_atoms(program, atoms), margins, classes)


def flat_atoms(program: Program, atoms: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every rule block's (and a decision list's) atoms, flattened per sample (the form `EngineResult` holds)."""
    return {b.name: atoms[b.name].reshape(len(atoms[b.name]), -1) for b in program.atom_blocks()}
