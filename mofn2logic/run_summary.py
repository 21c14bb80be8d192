"""What a run found, as frozen data: the pipeline builds it, the report and summary.json read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mofn2logic.engines.verify import VerifyReport


@dataclass(frozen=True, slots=True)
class CutResult:
    """The program cut at one layer, checked on the held-out samples with the reference engine."""

    cut: str
    program: str  # its .mofn file, in the output folder
    report: VerifyReport
    rules: int
    literals: int
    input_tests: int

    @property
    def fidelity(self) -> float:
        return self.report.fidelity

    @property
    def accuracy(self) -> float | None:
        return self.report.accuracy

    def to_dict(self) -> dict[str, Any]:
        return {"cut": self.cut, "program": self.program, "fidelity": self.fidelity, "accuracy": self.accuracy,
                "rules": self.rules, "literals": self.literals, "input_tests": self.input_tests,
                "layers": [asdict(la) for la in self.report.layers]}


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

    def check(self, label: str) -> CheckResult:
        return next(c for c in self.checks if c.label == label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "n_samples": self.n_samples, "n_fit": self.n_fit, "n_held_out": self.n_held_out,
            "network_accuracy_held_out": self.network_accuracy_held_out, "beta": self.beta,
            "tradeoff": {"chain": list(self.tradeoff_chain), "paper": list(self.tradeoff_paper)},
            "cuts": [c.to_dict() for c in self.cuts], "checks": {c.label: c.to_dict() for c in self.checks},
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
