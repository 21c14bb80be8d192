"""What a run found, as frozen data: the pipeline builds it, the report and summary.json read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mofn2logic.engines.verify import VerifyReport

if TYPE_CHECKING:  # the report package reads this module
    from mofn2logic.report.front import CutFront


@dataclass(frozen=True, slots=True)
class CutResult:
    """The program cut at one layer, checked on the held-out samples with the reference engine.

    Its layers above the cut are fitted as `fit_on` says: on the atoms the program computes for the
    layer below ("program"), or on the network's activations ("network"). `network` is the check of
    the program compiled from the rules fitted on the network's activations, when the cut's own
    program is fitted on the program's atoms (None otherwise: the same program)."""

    cut: str
    program: str  # its .mofn file, in the output folder
    report: VerifyReport
    rules: int
    literals: int
    input_tests: int
    fit_on: str = "network"
    network: VerifyReport | None = None
    network_literals: int | None = None

    @property
    def fidelity(self) -> float:
        return self.report.fidelity

    @property
    def accuracy(self) -> float | None:
        return self.report.accuracy

    def fitted(self) -> dict[str, dict[str, Any] | None]:
        """The held-out fidelity and literals of the cut's replica fitted each way (None: not fitted that way)."""
        own = {"fidelity": self.fidelity, "literals": self.literals}
        if self.network is None:
            # the cut's program is the network-fitted one; the output layer alone is the same either way
            return {"network": own, "program": own if self.fit_on == "program" else None}
        return {"network": {"fidelity": self.network.fidelity, "literals": self.network_literals}, "program": own}

    def to_dict(self) -> dict[str, Any]:
        return {"cut": self.cut, "program": self.program, "fidelity": self.fidelity, "accuracy": self.accuracy,
                "rules": self.rules, "literals": self.literals, "input_tests": self.input_tests,
                "fit_on": self.fit_on, "fitted": self.fitted(), "layers": [asdict(la) for la in self.report.layers]}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A showcase program run by every engine on the held-out samples."""

    label: str
    cut: str
    report: VerifyReport

    def to_dict(self) -> dict[str, Any]:
        d = self.report.to_dict()
        return {"cut": self.cut, "engines": d["engines"], "engines_agree": d["engines_agree"],
                "fidelity": d["fidelity"], "accuracy": d["accuracy"]}


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run found; `to_dict()` is OUTDIR/summary.json."""

    model: str
    n_samples: int
    n_fit: int
    n_held_out: int
    network_accuracy_held_out: float | None
    beta: float
    tradeoff_chain: tuple[dict[str, Any], ...]  # rows of `search.summarize`
    tradeoff_paper: tuple[dict[str, Any], ...]
    cuts: tuple[CutResult, ...]
    checks: tuple[CheckResult, ...]
    timings: Mapping[str, float]  # seconds per stage, and "total"
    fronts: tuple[CutFront, ...] = ()  # per cut: programs and trees by number of tests
    fit_on: str = "network"  # how the replicas' layers above their cut were fitted

    def check(self, label: str) -> CheckResult:
        return next(c for c in self.checks if c.label == label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "n_samples": self.n_samples, "n_fit": self.n_fit, "n_held_out": self.n_held_out,
            "network_accuracy_held_out": self.network_accuracy_held_out, "beta": self.beta,
            "tradeoff": {"chain": list(self.tradeoff_chain), "paper": list(self.tradeoff_paper)},
            "fit_on": self.fit_on, "cuts": [c.to_dict() for c in self.cuts],
            "front": [f.to_dict() for f in self.fronts], "checks": {c.label: c.to_dict() for c in self.checks},
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
