"""The whole job: harvest -> extract (chain mode, and paper mode for the trade-off) -> compile at
each cut -> export (Prolog, SymPy, DOT/SVG) -> verify with every engine -> summary files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from mofn2logic.program.compile import compile_program
from mofn2logic.errors import DataError, ToolMissingError
from mofn2logic.search.network import DEFAULT_BETAS, extract, summarize
from mofn2logic.onnx.harvest import harvest
from mofn2logic.files import write_text_atomic
from mofn2logic.exporters.mofn import write_program
from mofn2logic.onnx.importer import import_network
from mofn2logic.search.rules_file import write_rules
from mofn2logic.engines import verify


def _say(log, msg: str) -> None:
    if log:
        log(msg)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60] or "layer"


def run_pipeline(model: str | os.PathLike[str], x: np.ndarray, labels: np.ndarray | None, outdir: str | os.PathLike[str], *,
                 fit: np.ndarray | None = None, holdout: float = 0.2, seed: int = 0, order: str = "best",
                 betas=DEFAULT_BETAS, beta: float = 0.0, device: str = "auto", paper_mode: bool = True,
                 engines=("python", "sympy", "prolog"), provenance: dict | None = None, log=print) -> dict:
    """Run everything; return the summary that is also written to OUTDIR/summary.json.

    `fit` (a boolean mask) picks the samples the rules are fitted on; default: a seeded
    (1 - holdout) share. Fidelity is measured on the others (held out)."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    net = import_network(model)
    n = len(x)
    if fit is None:
        fit = np.ones(n, bool)
        if holdout > 0:
            k = int(round(n * holdout))
            fit[np.random.default_rng(seed).permutation(n)[:k]] = False
    if fit.sum() < 2 or (~fit).sum() < 1:
        raise DataError(f"{n} samples cannot be split into fitting and held-out parts (holdout {holdout})")
    _say(log, f"== harvest: {n} samples, {len(net.layers)} layers")
    acts = harvest(net, model, x)
    fit_acts = {k: np.asarray(v)[fit] for k, v in acts.items()}
    held_acts = {k: np.asarray(v)[~fit] for k, v in acts.items()}
    held_labels = None if labels is None else labels[~fit]
    timings = {"harvest": time.perf_counter() - t_start}

    t0 = time.perf_counter()
    _say(log, f"== extract: chain mode, order {order}, {int(fit.sum())} samples")
    chain = extract(net, fit_acts, mode="chain", order=order, betas=betas, device=device, provenance=provenance,
                    log=log)
    write_rules(chain, out / "rules.json")
    timings["extract_chain"] = time.perf_counter() - t0
    paper = None
    if paper_mode:
        t0 = time.perf_counter()
        _say(log, "== extract: paper mode (the reference's per-(input, target) splits), order weight")
        paper = extract(net, fit_acts, mode="paper", order="weight", betas=betas, device=device,
                        provenance=provenance, log=log)
        write_rules(paper, out / "rules_paper.json")
        timings["extract_paper"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cuts = []
    for la in chain.layers:
        program = compile_program(chain, cut=la.name, beta=beta)
        path = out / f"program_{_safe(la.name)}.mofn"
        write_program(program, path)
        rep = verify(program, net, held_acts, labels=held_labels, engines=("python",)).to_dict()
        literals = sum(r.n for b in program.rule_blocks() for r in b.rules)
        cuts.append({"cut": la.name, "program": path.name, "fidelity": rep["fidelity"], "accuracy": rep["accuracy"],
                     "rules": sum(len(b.rules) for b in program.rule_blocks()), "literals": literals,
                     "input_tests": len(program.input.tests), "layers": rep["layers"]})
        _say(log, f"   cut {la.name}: held-out fidelity {rep['fidelity']:.4f}, {literals} literals")
    timings["compile_verify_cuts"] = time.perf_counter() - t0

    # Exports and the engine check: the softmax program (the paper's best case) and the full replica.
    t0 = time.perf_counter()
    from mofn2logic.exporters.dot import render_svg, to_dot
    from mofn2logic.exporters.prolog import to_prolog
    from mofn2logic.exporters.sympy_expr import to_sympy

    checks = {}
    for label, cut in (("softmax", chain.layers[-1].name), ("replica", chain.layers[0].name)):
        program = compile_program(chain, cut=cut, beta=beta)
        write_text_atomic(out / f"{label}.pl", to_prolog(program))
        write_text_atomic(out / f"{label}_sympy.py", to_sympy(program))
        dot = to_dot(program)
        write_text_atomic(out / f"{label}.dot", dot)
        try:
            write_text_atomic(out / f"{label}.svg", render_svg(dot))
        except ToolMissingError as e:
            _say(log, f"   (no SVG: {e})")
        use = [e for e in engines if e != "prolog" or _has("swipl")]
        rep = verify(program, net, held_acts, labels=held_labels, engines=tuple(use)).to_dict()
        checks[label] = {"cut": cut, "engines": rep["engines"], "engines_agree": rep["engines_agree"],
                         "fidelity": rep["fidelity"], "accuracy": rep["accuracy"]}
        _say(log, f"   {label} program (cut {cut}): " + ", ".join(f"{k} {v['fidelity']:.4f} in {v['seconds']:.2f} s"
                                                                 for k, v in rep["engines"].items())
             + f"; engines agree: {'yes' if rep['engines_agree'] else 'NO'}")
    timings["exports_engines"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    pred = np.argmax(np.asarray(acts[net.output]), axis=1)
    summary = {
        "model": Path(model).name, "n_samples": n, "n_fit": int(fit.sum()), "n_held_out": int((~fit).sum()),
        "network_accuracy_held_out": None if labels is None else float(np.mean(pred[~fit] == labels[~fit])),
        "beta": beta, "tradeoff": {"chain": summarize(chain), "paper": summarize(paper) if paper else []},
        "cuts": cuts, "checks": checks, "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    from mofn2logic.report.html import write_report

    write_report(out, summary, chain, paper)
    return summary


def _has(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None
