"""The whole job: harvest -> extract (chain mode, and paper mode for the trade-off) -> compile at
each cut -> export (Prolog, SymPy, DOT/SVG) -> verify with every engine -> summary and report.

The model is loaded once (`LoadedModel`), the data read once (`Dataset`); the fitting and
held-out samples are row views of one activation store; each cut is compiled once and its
`Program` reused for the exports and the checks; the report gets the texts it shows from here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mofn2logic.engines import ENGINE_NAMES, get_engine, verify
from mofn2logic.errors import DataError, SearchError, ToolMissingError
from mofn2logic.exporters import to_text
from mofn2logic.files import atomic_folder, file_stem, write_text_atomic
from mofn2logic.inputs import Dataset, LoadedModel, provenance
from mofn2logic.inputs import memory_budget as budget_bytes
from mofn2logic.ir.program import Program
from mofn2logic.ir.rules import RuleSet
from mofn2logic.onnx.harvest import DEFAULT_BATCH, DEFAULT_BUDGET, harvest
from mofn2logic.program.compile import compile_program
from mofn2logic.report import front
from mofn2logic.report.cards import pixel_map, rule_cards
from mofn2logic.report.html import ReportTexts, pixel_map_figure, plain, write_report
from mofn2logic.run_summary import CheckResult, CutResult, RunSummary
from mofn2logic.search.network import DEFAULT_BETAS, FIT_ON, check_betas, extract, predicted_class, summarize
from mofn2logic.search.rules_file import write_rules

Log = Callable[[str], None] | None

# The programs exported and checked with every engine: the softmax layer alone (the paper's
# best case: the last cut) and the full symbolic replica (the first cut).
SHOWCASE = (("softmax", -1), ("replica", 0))
# Format -> file name of each export, per showcase program.
EXPORTS = (("prolog", "{label}.pl"), ("sympy", "{label}_sympy.py"), ("dot", "{label}.dot"), ("svg", "{label}.svg"))
# The file every finished run leaves in its folder: a folder holding it may be replaced by a new run.
MARKER = "summary.json"


def _say(log: Log, msg: str) -> None:
    if log:
        log(msg)


def check_options(*, holdout: float = 0.2, seed: int = 0, order: str = "best",
                  betas: Sequence[float] = DEFAULT_BETAS, beta: float = 0.0, device: str = "auto",
                  engines: Sequence[str] = ENGINE_NAMES, batch_size: int = DEFAULT_BATCH,
                  providers: Sequence[str] | None = None, memory_budget: int | str = DEFAULT_BUDGET,
                  fit_on: str = "program") -> tuple[float, ...]:
    """Every option of a run checked before any work (and before its folder exists); the betas."""
    from mofn2logic.onnx.harvest import select_providers
    from mofn2logic.search import DEVICES, ORDERS, make_backend

    _check_holdout(holdout)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"the seed must be an integer >= 0, got {seed!r}")
    if order not in ORDERS:
        raise SearchError(f"order {order!r} is unknown; expected one of {', '.join(ORDERS)}")
    if device not in DEVICES:
        raise SearchError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    if fit_on not in FIT_ON:
        raise SearchError(f"fit-on {fit_on!r} is unknown; expected one of {', '.join(FIT_ON)}")
    unknown = [e for e in engines if e not in ENGINE_NAMES]
    if unknown or not engines:
        raise SearchError(f"engines {list(engines)!r}: expected one or more of {', '.join(ENGINE_NAMES)}")
    betas = check_betas(betas)
    (program_beta,) = check_betas([beta])
    if program_beta not in betas:
        raise SearchError(f"the program beta {program_beta:g} is not among the betas searched "
                          f"({', '.join(f'{b:g}' for b in betas)}); expected one of them")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"batch size must be a positive integer, got {batch_size!r}")
    budget = budget_bytes(memory_budget)
    if providers:
        select_providers(list(providers))
    make_backend(device, budget)  # a device that cannot run fails now, not after the harvest
    return betas


def _check_holdout(holdout: float) -> None:
    try:
        ok = 0 <= holdout < 1
    except TypeError:
        ok = False
    if not ok:
        raise DataError(f"the held-out share must be in [0, 1), got {holdout}")


def split(n: int, *, holdout: float = 0.2, seed: int = 0, fit: np.ndarray | None = None) -> np.ndarray:
    """The fitting mask: `fit` as given, or a seeded (1 - holdout) share of `n` samples."""
    if fit is None:
        _check_holdout(holdout)
        fit = np.ones(n, bool)
        if holdout > 0:
            fit[np.random.default_rng(seed).permutation(n)[:int(round(n * holdout))]] = False
    fit = np.asarray(fit)
    if fit.dtype != bool or fit.shape != (n,):
        raise DataError(f"the fitting mask has dtype {fit.dtype} and shape {fit.shape}; expected bool of shape ({n},)")
    if fit.sum() < 2 or (~fit).sum() < 1:
        raise DataError(f"{n} samples cannot be split into fitting and held-out parts "
                        f"({int(fit.sum())} fitting, {int((~fit).sum())} held out); expected 2 or more and 1 or more")
    return fit


def run_pipeline(model: LoadedModel, data: Dataset, outdir: str | os.PathLike[str], *,
                 fit: np.ndarray | None = None, holdout: float = 0.2, seed: int = 0, order: str = "best",
                 betas: Sequence[float] = DEFAULT_BETAS, beta: float = 0.0, device: str = "auto",
                 paper_mode: bool = True, engines: Sequence[str] = ENGINE_NAMES, batch_size: int = DEFAULT_BATCH,
                 providers: Sequence[str] | None = None, memory_budget: int | str = DEFAULT_BUDGET,
                 fit_on: str = "program", log: Log = None) -> RunSummary:
    """Run everything into `outdir`; return the summary that is also OUTDIR/summary.json.

    `fit` (a boolean mask) picks the samples the rules are fitted on; default: a seeded
    (1 - holdout) share. Fidelity is measured on the others (held out).

    `fit_on="program"`: the program cut at each layer below the output is fitted from that cut on the
    atoms the program computes (one extraction per cut, at the program beta), and reported beside the
    one compiled from the rules fitted on the network's activations (rules.json); "network": only those.

    Every option is checked first; the outputs are written into a fresh folder beside `outdir`
    that replaces it whole at the end (an earlier run's folder there goes; a failed or
    interrupted run leaves `outdir` as it was)."""
    betas = check_options(holdout=holdout, seed=seed, order=order, betas=betas, beta=beta, device=device,
                          engines=engines, batch_size=batch_size, providers=providers, memory_budget=memory_budget,
                          fit_on=fit_on)
    fit = split(len(data), holdout=holdout, seed=seed, fit=fit)
    with atomic_folder(outdir, inputs=(model.path, *data.paths), marker=MARKER) as out:
        return _run(model, data, out, fit=fit, order=order, betas=betas, beta=beta, device=device,
                    paper_mode=paper_mode, engines=engines, batch_size=batch_size, providers=providers,
                    memory_budget=budget_bytes(memory_budget), log=log, fit_on=fit_on)


def _run(model: LoadedModel, data: Dataset, out: Path, *, fit: np.ndarray, order: str, betas: tuple[float, ...],
         beta: float, device: str, paper_mode: bool, engines: Sequence[str], batch_size: int,
         providers: Sequence[str] | None, memory_budget: int, log: Log, fit_on: str = "program") -> RunSummary:
    t_start = time.perf_counter()
    net = model.network
    n = len(data)
    names = [la.name for la in net.layers]
    fit_idx, held_idx = np.flatnonzero(fit), np.flatnonzero(~fit)
    _say(log, f"== harvest: {n} samples, {len(net.layers)} layers")
    acts = harvest(net, model.proto, data.x, batch_size=batch_size, providers=list(providers) if providers else None,
                   memory_budget=memory_budget, preactivations=False)
    pred = predicted_class(net, acts)
    held_pred = pred[held_idx]
    held_labels = None if data.labels is None else data.labels[held_idx]
    held = acts.rows(held_idx)
    timings = {"harvest": time.perf_counter() - t_start}

    prov = provenance(model, data)
    fit_acts = acts.rows(fit_idx)
    fit_pred = pred[fit_idx]
    t0 = time.perf_counter()
    with _Stage(log, f"extract: chain mode, order {order}, {len(fit_idx)} samples", len(names), "layer",
                "extract (chain)") as st:
        chain = extract(net, fit_acts, mode="chain", order=order, betas=betas, device=device, provenance=prov,
                        names=model.names, log=st.layer, predicted=fit_pred)
    write_rules(chain, out / "rules.json")
    timings["extract_chain"] = time.perf_counter() - t0
    # Replicas fitted on the program's own atoms: one extraction from each cut below the output layer (the
    # layers above a cut read what the program computes from that cut), at the programs' beta only (the
    # atoms a layer is fitted on are those of the rules below at that beta). The output layer alone is the
    # same either way. The cut layer itself is fitted on the network's activations: the chain extraction's (reused).
    refit: dict[str, RuleSet] = {}
    if fit_on == "program" and len(names) > 1:
        t0 = time.perf_counter()
        with _Stage(log, f"extract: replicas fitted on the program's atoms, from each of {len(names) - 1} cuts",
                    sum(len(names) - k for k in range(len(names) - 1)), "layer", "extract (fitted on the program)") as st:
            for k, cut_name in enumerate(names[:-1]):
                refit[cut_name] = extract(net, fit_acts, layers=names[k:], mode="chain", order=order, betas=(beta,),
                                          device=device, provenance=prov, names=model.names, log=st.layer,
                                          predicted=fit_pred, fit_on="program", reuse=chain)
                write_rules(refit[cut_name], out / f"rules_program_{file_stem(cut_name)}.json")
        timings["extract_program"] = time.perf_counter() - t0
    paper = None
    if paper_mode:
        t0 = time.perf_counter()
        with _Stage(log, "extract: paper mode (the reference's per-(input, target) splits), order weight", len(names),
                    "layer", "extract (paper)") as st:
            paper = extract(net, fit_acts, mode="paper", order="weight", betas=betas, device=device, provenance=prov,
                            names=model.names, log=st.layer, predicted=fit_pred)
        write_rules(paper, out / "rules_paper.json")
        timings["extract_paper"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    programs: dict[str, Program] = {}
    cuts = []
    mofn_texts: dict[str, str] = {}
    with _Stage(log, f"compile and verify at {len(names)} cuts", len(names), "cut", "cuts") as st:
        for la in chain.layers:
            own = compile_program(chain, cut=la.name, beta=beta)
            network_rep = network_literals = None
            program = own
            if la.name in refit:
                program = compile_program(refit[la.name], cut=la.name, beta=beta)
                network_rep = verify(own, net, held, labels=held_labels, engines=("python",), predicted=held_pred)
                network_literals = _literals(own)
            programs[la.name] = program
            name = f"program_{file_stem(la.name)}.mofn"
            mofn_texts[la.name] = to_text(program, "mofn")
            write_text_atomic(out / name, mofn_texts[la.name])
            rep = verify(program, net, held, labels=held_labels, engines=("python",), predicted=held_pred)
            cut = CutResult(la.name, name, rep, rules=sum(len(b.rules) for b in program.rule_blocks()),
                            literals=_literals(program), input_tests=len(program.input.tests), fit_on=fit_on,
                            network=network_rep, network_literals=network_literals)
            cuts.append(cut)
            st.say(f"   cut {la.name}: held-out fidelity {rep.fidelity:.4f}, {cut.literals} literals"
                   + (f" (fitted on the program's atoms; fitted on the network's activations: {network_rep.fidelity:.4f}, "
                      f"{network_literals} literals)" if network_rep is not None else ""))
            st.advance()
    timings["compile_verify_cuts"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fronts = []
    with _Stage(log, "size/fidelity front: programs per beta (at the output layer also with a decision list), and a "
                "decision tree with as many tests, per cut",
                len(names), "cut", "front") as st:
        for c in cuts:  # the programs at the program beta are the cut table's, already checked
            known = [front.Point("program", c.literals, c.fidelity, beta=beta) if c.network is None else
                     front.Point("program", c.network_literals or 0, c.network.fidelity, beta=beta)]
            extra = ([front.Point("program fitted on its atoms", c.literals, c.fidelity, beta=beta)]
                     if c.cut in refit else [])
            lists = front.LIST_BUDGETS if c.cut == names[-1] else ()  # a list in place of the whole program
            fronts.append(front.cut_front(chain, c.cut, fit_acts, held, fit_pred, held_pred, known=known, extra=extra,
                                          lists=lists, beta=beta))
            st.advance()
        for f in fronts:
            st.say(front.text_table(f))
    del fit_acts  # the fitting rows gathered for the search and the trees
    timings["front"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    use = tuple(e for e in engines if e != "prolog" or _has("swipl"))
    checks = []
    showcase: dict[str, dict[str, str]] = {}
    with _Stage(log, "exports and engine checks", len(SHOWCASE) * (len(EXPORTS) + 1), "step", "exports/engines") as st:
        for label, k in SHOWCASE:
            cut_name = chain.layers[k].name
            program = programs[cut_name]
            texts = showcase[label] = {"mofn": mofn_texts[cut_name]}
            for fmt, pattern in EXPORTS:
                try:
                    texts[fmt] = to_text(program, fmt)
                except ToolMissingError as e:
                    st.say(f"   (no {fmt}: {e})")
                    continue
                finally:
                    st.advance()
                write_text_atomic(out / pattern.format(label=label), texts[fmt])
            rep = verify(program, net, held, labels=held_labels, engines=use,
                         predicted=held_pred)
            st.advance()
            checks.append(CheckResult(label, cut_name, rep))
            st.say(f"   {label} program (cut {cut_name}): "
                   + ", ".join(f"{e.name} {e.fidelity:.4f} in {e.seconds:.2f} s" for e in rep.engines)
                   + f"; engines agree: {'yes' if rep.engines_agree else 'NO'}")
    timings["exports_engines"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start

    summary = RunSummary(
        model=model.name, n_samples=n, n_fit=len(fit_idx), n_held_out=len(held_idx),
        network_accuracy_held_out=None if held_labels is None else float(np.mean(held_pred == held_labels)),
        beta=beta, tradeoff_chain=tuple(summarize(chain)), tradeoff_paper=tuple(summarize(paper) if paper else ()),
        cuts=tuple(cuts), checks=tuple(checks), timings=timings, fronts=tuple(fronts), fit_on=fit_on,
    )
    write_text_atomic(out / "summary.json", json.dumps(summary.to_dict(), indent=1) + "\n")
    soft = showcase["softmax"]
    softmax = programs[chain.layers[-1].name]
    fired = get_engine("python").run(softmax, held[softmax.input.tensor]).atoms
    onehot = held_pred[:, None] == np.arange(softmax.output.shape[0])[None, :]
    cards = rule_cards(softmax, fired=fired, truth={softmax.output.name: onehot}, blocks=(softmax.output.name,))
    replica = programs[chain.layers[0].name]  # its rules in the inputs' names, when they have names
    write_report(out, summary, chain, paper,
                 ReportTexts(mofn=soft["mofn"], prolog=soft.get("prolog", ""), svg=soft.get("svg"), cards=tuple(cards),
                             pixel_maps=_pixel_maps(programs[chain.layers[0].name]),
                             input_cards=tuple(rule_cards(replica)) if dict(replica.names).get("") else ()))
    return summary


def _literals(program: Program) -> int:
    return sum(r.n for b in program.rule_blocks() for r in b.rules)


class _Stage:
    """One stage of the run: its '== title' line, and a progress bar on stderr (tqdm: shown only on a
    terminal) that lines logged meanwhile do not tear. `layer` is a log callback for `extract`, which
    calls it once per layer it starts: the bar advances by layers."""

    def __init__(self, log: Log, title: str, total: int, unit: str, desc: str) -> None:
        from tqdm.auto import tqdm

        self.log = log
        _say(log, f"== {title}")
        self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr, disable=None)
        self._layers = 0

    def __enter__(self) -> _Stage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def say(self, msg: str) -> None:
        if self.log:
            with self.bar.external_write_mode(file=sys.stdout):
                self.log(msg)

    def advance(self, k: int = 1) -> None:
        self.bar.update(k)

    def layer(self, msg: str) -> None:
        if self._layers:
            self.advance()
        self._layers += 1
        self.say(msg)


def _pixel_maps(program: Program) -> str | None:
    """The first layer's rules drawn on the input grid, when the input is an image."""
    first = program.rule_blocks()[0]
    maps = [(f"{plain(first.name)} {'ch' if first.kind == 'conv' else 'unit'} {r.unit}", m) for r in first.rules
            if (m := pixel_map(program, first, r.unit)) is not None][:40]
    return pixel_map_figure(maps) if maps else None


def _has(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


__all__ = ["run_pipeline", "check_options", "split", "MARKER", "RunSummary", "CutResult", "CheckResult"]
