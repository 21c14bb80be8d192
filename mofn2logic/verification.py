"""Fidelity of a program to its network, and agreement between engines (python, sympy, prolog)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from mofn2logic.errors import ProgramError
from mofn2logic.network import Network
from mofn2logic.program import Program

ENGINES = ("python", "sympy", "prolog")


def run_engine(name: str, program: Program, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(atoms per rule layer, flat (E, k) bool; classes) from one engine."""
    e = len(x)
    if name == "prolog":
        from mofn2logic import engine_prolog

        return engine_prolog.run(program, x)
    if name == "python":
        from mofn2logic import engine_python as eng
    elif name == "sympy":
        from mofn2logic import engine_sympy as eng
    else:
        raise ProgramError(f"unknown engine {name!r}; expected one of {', '.join(ENGINES)} or all")
    atoms, _, classes = eng.run(program, x)
    return {b.name: atoms[b.name].reshape(e, -1) for b in program.rule_layers()}, classes


def verify(program: Program, network: Network, acts, *, labels: np.ndarray | None = None,
           engines: Sequence[str] = ("python",)) -> dict:
    """Run the program with each engine on the network's own cut activations and compare."""
    if program.input.tensor not in acts:
        raise ProgramError(f"the program reads tensor {program.input.tensor!r}, which the model does not compute")
    x = np.asarray(acts[program.input.tensor])
    pred = np.argmax(np.asarray(acts[network.output]), axis=1)
    e = len(x)
    results, report = {}, {"n_samples": int(e), "engines": {}}
    for name in engines:
        t0 = time.perf_counter()
        atoms, classes = run_engine(name, program, x)
        secs = time.perf_counter() - t0
        results[name] = (atoms, classes)
        entry = {"fidelity": float(np.mean(classes == pred)), "seconds": round(secs, 3)}
        if labels is not None:
            entry["accuracy"] = float(np.mean(classes == labels))
        report["engines"][name] = entry
    first = results[engines[0]]
    report["fidelity"] = report["engines"][engines[0]]["fidelity"]
    report["accuracy"] = report["engines"][engines[0]].get("accuracy")
    report["network_accuracy"] = None if labels is None else float(np.mean(pred == labels))
    agree = True
    for name in engines[1:]:
        atoms, classes = results[name]
        agree &= bool(np.array_equal(classes, first[1]))
        agree &= all(np.array_equal(atoms[b], first[0][b]) for b in first[0])
    report["engines_agree"] = agree
    layers = []
    for b in program.rule_layers():
        layer = network.layer(b.name)
        act = np.asarray(acts[layer.output])
        got = first[0][b.name].reshape((e, *b.shape))
        units = []
        for r in b.rules:
            truth = (pred == r.unit) if b is program.output else act[:, r.unit] >= r.threshold
            units.append(float(np.mean(got[:, r.unit] == truth)))
        layers.append({"name": b.name, "units": len(b.rules),
                       "agreement": float(np.mean(units)) if units else None,
                       "min_agreement": float(np.min(units)) if units else None})
    report["layers"] = layers
    return report
