"""Fidelity of a program to its network, and agreement between engines (numpy, SymPy, Prolog)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mofn2logic.errors import ProgramError
from mofn2logic.ir.network import Network
from mofn2logic.ir.program import DecisionListBlock, Program
from mofn2logic.program.check import check_program_for


@dataclass(frozen=True, slots=True)
class EngineCheck:
    name: str
    fidelity: float  # share of samples whose class equals the network's
    accuracy: float | None  # share equal to the labels, when given
    seconds: float


@dataclass(frozen=True, slots=True)
class LayerAgreement:
    name: str
    units: int
    # mean over the block's rules of the atom's agreement with its unit's test (a decision list: over its
    # classes, the one-hot of its class against the network's)
    agreement: float | None
    min_agreement: float | None


@dataclass(frozen=True, slots=True)
class VerifyReport:
    n_samples: int
    engines: tuple[EngineCheck, ...]
    engines_agree: bool  # every engine gave the same class and the same atoms on every sample
    network_accuracy: float | None
    layers: tuple[LayerAgreement, ...]

    @property
    def fidelity(self) -> float:
        return self.engines[0].fidelity

    @property
    def accuracy(self) -> float | None:
        return self.engines[0].accuracy

    def engine(self, name: str) -> EngineCheck:
        return next(e for e in self.engines if e.name == name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `verify --json` prints."""
        return {"n_samples": self.n_samples,
                "engines": {e.name: {k: v for k, v in asdict(e).items() if k != "name"} for e in self.engines},
                "fidelity": self.fidelity, "accuracy": self.accuracy, "network_accuracy": self.network_accuracy,
                "engines_agree": self.engines_agree, "layers": [asdict(la) for la in self.layers]}


def verify(program: Program, network: Network, acts: Mapping[str, np.ndarray], *, labels: np.ndarray | None = None,
           engines: Sequence[str] = ("python",), predicted: np.ndarray | None = None) -> VerifyReport:
    """Run the program with each engine on the network's own cut activations and compare.
    `predicted` is the network's class per sample (default: argmax of the output in `acts`)."""
    from mofn2logic.engines import get_engine

    if not engines:
        raise ProgramError("no engine to verify with; expected one or more of python, sympy, prolog")
    out = acts[network.output]
    tensor = program.input.tensor
    check_program_for(program, {tensor: tuple(acts[tensor].shape[1:])} if tensor in acts else {}, int(out.shape[1]))
    missing = [b.name for b in program.atom_blocks()[:-1] if b.name not in {la.name for la in network.layers}]
    if missing:
        raise ProgramError(f"the program's block {missing[0]!r} is not a layer of this model")
    x = acts[program.input.tensor]
    pred = np.argmax(out, axis=1) if predicted is None else predicted
    e = len(x)
    results, checks = [], []
    for name in engines:
        engine = get_engine(name)
        t0 = time.perf_counter()
        res = engine.run(program, x)
        secs = time.perf_counter() - t0
        results.append(res)
        checks.append(EngineCheck(name, float(np.mean(res.classes == pred)),
                                  None if labels is None else float(np.mean(res.classes == labels)), round(secs, 3)))
    first = results[0]
    agree = all(np.array_equal(r.classes, first.classes)
                and all(np.array_equal(r.atoms[b], first.atoms[b]) for b in first.atoms) for r in results[1:])
    layers = []
    for b in program.atom_blocks():
        got = first.atoms[b.name].reshape((e, *b.shape))
        if isinstance(b, DecisionListBlock):
            units = [float(np.mean(got[:, k] == (pred == k))) for k in range(b.shape[0])]
            layers.append(LayerAgreement(b.name, len(b.rules), float(np.mean(units)), float(np.min(units))))
            continue
        act = None if b is program.output else acts[network.layer(b.name).output]
        units = [float(np.mean(got[:, r.unit] == ((pred == r.unit) if act is None else act[:, r.unit] >= r.threshold)))
                 for r in b.rules]
        layers.append(LayerAgreement(b.name, len(b.rules), float(np.mean(units)) if units else None,
                                     float(np.min(units)) if units else None))
    return VerifyReport(n_samples=int(e), engines=tuple(checks), engines_agree=bool(agree),
                        network_accuracy=None if labels is None else float(np.mean(pred == labels)),
                        layers=tuple(layers))
