"""The application layer: what a user scripts and what every `mofn2logic` command calls.

Each function takes paths or objects already read (`LoadedModel`, `Dataset`, `RuleSet`,
`Program`), reads what it is given once, checks it (data against the model, labels against the
data) and returns typed results.

>>> rules = mofn2logic.extract("model.onnx", "x.npy", betas=[0, 0.2])   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mofn2logic.engines import ENGINE_NAMES, VerifyReport
from mofn2logic.errors import DataError, SearchError
from mofn2logic.inputs import Dataset, LoadedModel, load_dataset, load_model, n_classes, provenance
from mofn2logic.inputs import memory_budget as budget_bytes
from mofn2logic.ir.program import Program
from mofn2logic.ir.rules import RuleSet
from mofn2logic.onnx.harvest import DEFAULT_BATCH, DEFAULT_BUDGET, Activations
from mofn2logic.run_summary import RunSummary
from mofn2logic.search.decision_list import DEFAULT_BUDGET as LIST_BUDGET
from mofn2logic.search.decision_list import fit_decision_list
from mofn2logic.search.network import DEFAULT_BETAS, DEFAULT_CONV_EXAMPLES

PathLike = str | os.PathLike[str]
ModelLike = PathLike | LoadedModel
DataLike = PathLike | np.ndarray | Dataset
LabelsLike = PathLike | np.ndarray | None


def _model(model: ModelLike) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_model(model)


def _dataset(data: DataLike, model: LoadedModel, key: str | None, labels: LabelsLike = None,
             labels_key: str | None = None, budget: int | str | None = None) -> Dataset:
    """The data and labels, checked: a `Dataset` given as it is gets its labels checked here, by
    the same `check_labels` as files and arrays."""
    if isinstance(data, Dataset):
        if labels is None:
            if labels_key is not None:
                raise DataError(f"a labels key ({labels_key!r}) was given without labels")
            return data
        from mofn2logic.inputs import read_labels

        y = read_labels(labels, len(data), key=labels_key, n_classes=n_classes(model.network), max_bytes=budget)
        paths = data.paths + ((Path(labels),) if isinstance(labels, (str, os.PathLike)) else ())
        return Dataset(data.x, y, data.source, data.sha256, data.key, paths, data.feature_names)
    return load_dataset(data, model, key=key, labels=labels, labels_key=labels_key, max_bytes=budget)


def _files(*given: Any) -> list[PathLike]:
    """The files among inputs given as paths, loaded models or datasets (no output may be one)."""
    out: list[PathLike] = []
    for g in given:
        if isinstance(g, (str, os.PathLike)):
            out.append(g)
        elif isinstance(g, LoadedModel):
            out.append(g.path)
        elif isinstance(g, Dataset):
            out.extend(g.paths)
    return out


def _check_layers(model: LoadedModel, layers: Sequence[str] | None) -> None:
    """Layer names checked against the model before any activation is computed."""
    if layers is None:
        return
    names = [la.name for la in model.network.layers]
    if not layers:
        raise SearchError(f"the list of layers is empty; the model has {', '.join(map(repr, names))}")
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise SearchError(f"unknown layer{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                          f"the model has {', '.join(map(repr, names))}")


def activations(model: ModelLike, data: DataLike, *, key: str | None = None, batch_size: int = DEFAULT_BATCH,
                providers: Sequence[str] | None = None, memory_budget: int | str = DEFAULT_BUDGET,
                store_dir: PathLike | None = None, preactivations: bool = True) -> Activations:
    """Every layer boundary's activations on `data` (onnxruntime; past `memory_budget` bytes, or
    a size like "2G", they go to memory-mapped files in `store_dir` or a temporary folder). The
    data read into memory is bounded by the same budget. `preactivations=False` leaves out the
    pre-activations (the search and the checks read only layers' inputs and outputs)."""
    from mofn2logic.onnx.harvest import harvest

    budget = budget_bytes(memory_budget)
    m = _model(model)
    d = _dataset(data, m, key, budget=budget)
    return harvest(m.network, m.proto, d.x, batch_size=batch_size, providers=list(providers) if providers else None,
                   memory_budget=budget, store_dir=store_dir, preactivations=preactivations)


def extract(model: ModelLike, data: DataLike, *, key: str | None = None, layers: Sequence[str] | None = None,
            mode: str = "chain", order: str = "weight", betas: Sequence[float] = DEFAULT_BETAS,
            device: str = "auto", batch_size: int = DEFAULT_BATCH, providers: Sequence[str] | None = None,
            memory_budget: int | str = DEFAULT_BUDGET, log=None, **options: Any) -> RuleSet:
    """M-of-N rules for the layers of an ONNX model, from its activations on `data`. `options`
    go to `mofn2logic.search.extract` (small_n, pool_size, conv_examples, conv_position, seed).

    >>> rules = mofn2logic.extract("model.onnx", "x.npy", betas=[0, 0.2])   # doctest: +SKIP
    """
    from mofn2logic.onnx.harvest import harvest
    from mofn2logic.search.network import conv_draws, stored_tensors
    from mofn2logic.search.network import extract as search

    budget = budget_bytes(memory_budget)
    m = _model(model)
    _check_layers(m, layers)
    d = _dataset(data, m, key, budget=budget)
    # Conv layers' examples are a few (sample, position) pairs of large tensors: where extract draws them
    # (fitting on the network, every position), they are gathered as the batches pass and the conv tensors
    # are not stored (the MNIST CNN at 8,000 images: 0.3 GB held in RAM instead of 2.2 GB written to disk).
    n_ex, seed = options.get("conv_examples", DEFAULT_CONV_EXAMPLES), options.get("seed", 0)
    draws = None
    if (options.get("fit_on", "network") == "network" and options.get("conv_position", "all") == "all"
            and isinstance(n_ex, int) and n_ex >= 1 and isinstance(seed, int)):
        draws = conv_draws(m.network, len(d.x), layers, n_ex, seed)
    acts = harvest(m.network, m.proto, d.x, batch_size=batch_size, providers=list(providers) if providers else None,
                   memory_budget=budget, preactivations=False,
                   keep=None if draws is None else stored_tensors(m.network), on_batch=draws)
    if draws is not None:
        options["drawn"] = draws.result()
    return search(m.network, acts, layers=layers, mode=mode, order=order, betas=betas, device=device,
                  provenance=provenance(m, d), log=log, names=m.names, **options)


def compile(rules: RuleSet | PathLike, *, cut: str | None = None, beta: float | None = None,  # noqa: A001
            decision_list: PathLike | Mapping[str, np.ndarray] | None = None, budget: int = LIST_BUDGET) -> Program:
    """A layered logic program from a chain-mode rule set (or its rules.json), from layer `cut`
    (default: the first) to the output, with the rules of `beta` (default: the smallest).

    With `decision_list` (activations: an .npz from `harvest`, or a mapping of tensor names to
    arrays), the class block is instead a decision list of at most `budget` literals fitted on them
    (`fit_decision_list`) for the network's class, the argmax of its output there; it may read every
    atom the rule set defines below the classes."""
    from mofn2logic.program.compile import compile_program
    from mofn2logic.search.rules_file import read_rules

    rs = rules if isinstance(rules, RuleSet) else read_rules(rules)
    if decision_list is None:
        return compile_program(rs, cut=cut, beta=beta)
    program = compile_program(rs, cut=cut, beta=beta, complete=True)
    x, y = cut_classes(decision_list, program.input.tensor)
    return fit_decision_list(program, x, y, budget)


def cut_classes(acts: PathLike | Mapping[str, np.ndarray], tensor: str) -> tuple[np.ndarray, np.ndarray]:
    """(values of `tensor`, the network's class per sample) from activations: an .npz written by
    `harvest` (its layer table names the output) or a mapping holding `tensor` and "output"."""
    import json

    from mofn2logic.inputs import read_array

    if isinstance(acts, Mapping):
        if tensor not in acts or "output" not in acts:
            raise DataError(f"the activations hold {sorted(acts)}; expected {tensor!r} and 'output'")
        x, out = np.asarray(acts[tensor]), np.asarray(acts["output"])
    else:
        meta = read_array(acts, "__layers__", what="activations")
        try:
            output = json.loads(str(meta))["output"]
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{os.fspath(acts)!r} has no layer table naming the network's output; expected an .npz "
                            "written by 'mofn2logic harvest'") from None
        x = read_array(acts, tensor, what="activations")
        out = read_array(acts, str(output), what="activations")
    if out.ndim != 2 or len(out) != len(x) or not np.issubdtype(out.dtype, np.number):
        raise DataError(f"the network's output in the activations has shape {list(out.shape)}; expected "
                        f"[{len(x)}, classes] numbers")
    return x, np.argmax(out, axis=1)


def verify(program: Program | PathLike, model: ModelLike, data: DataLike, *, key: str | None = None,
           labels: LabelsLike = None, labels_key: str | None = None, engines: Sequence[str] = ("python",),
           batch_size: int = DEFAULT_BATCH, providers: Sequence[str] | None = None,
           memory_budget: int | str = DEFAULT_BUDGET) -> VerifyReport:
    """Fidelity of `program` (or a program file, any readable format) to the network on `data`,
    accuracy against `labels`, per-layer agreement, and agreement between `engines`."""
    from mofn2logic.engines import verify as run_checks
    from mofn2logic.exporters import load_program

    prog = program if isinstance(program, Program) else load_program(program)
    if "prolog" in engines:
        from mofn2logic.engines.prolog_engine import swipl

        swipl()  # fail before the work when SWI-Prolog is missing
    budget = budget_bytes(memory_budget)
    m = _model(model)
    d = _dataset(data, m, key, labels, labels_key, budget=budget)
    acts = activations(m, d, batch_size=batch_size, providers=providers, memory_budget=budget, preactivations=False)
    return run_checks(prog, m.network, acts, labels=d.labels, engines=tuple(engines))


def run(model: ModelLike, data: DataLike, outdir: PathLike, *, key: str | None = None, labels: LabelsLike = None,
        labels_key: str | None = None, holdout: float = 0.2, seed: int = 0, fit: np.ndarray | None = None,
        order: str = "best", betas: Sequence[float] = DEFAULT_BETAS, beta: float = 0.0, device: str = "auto",
        paper_mode: bool = True, engines: Sequence[str] = ENGINE_NAMES, batch_size: int = DEFAULT_BATCH,
        providers: Sequence[str] | None = None, memory_budget: int | str = DEFAULT_BUDGET,
        fit_on: str = "program", log=None) -> RunSummary:
    """The whole pipeline into `outdir`: rules, programs, exports, checks, report.html and
    report.md. Rules are fitted on a seeded (1 - holdout) share of the samples (or the `fit`
    mask) and checked on the rest. `fit_on="program"` fits the program cut at each layer below the
    output on the atoms the program itself computes, reported beside the one fitted on the
    network's activations ("network": only that one).

    Options, the output folder, the model, the data and the labels are all checked before any
    work; `outdir` appears whole at the end (replacing an earlier run's folder) or not at all."""
    from mofn2logic.files import check_output_folder
    from mofn2logic.pipeline import MARKER, check_options, run_pipeline, split

    check_options(holdout=holdout, seed=seed, order=order, betas=betas, beta=beta, device=device, engines=engines,
                  batch_size=batch_size, providers=providers, memory_budget=memory_budget, fit_on=fit_on)
    check_output_folder(outdir, inputs=_files(model, data, labels), marker=MARKER)
    budget = budget_bytes(memory_budget)
    m = _model(model)
    d = _dataset(data, m, key, labels, labels_key, budget=budget)
    split(len(d), holdout=holdout, seed=seed, fit=fit)  # a bad split fails before any work
    return run_pipeline(m, d, outdir, fit=fit, holdout=holdout, seed=seed, order=order, betas=betas, beta=beta,
                        device=device, paper_mode=paper_mode, engines=engines, batch_size=batch_size,
                        providers=providers, memory_budget=memory_budget, fit_on=fit_on, log=log)


def demo(outdir: PathLike, *, device: str = "auto", log=None) -> RunSummary:
    """`run` on the embedded default model and its digits: rules fitted on the training digits
    and checked on the held-out ones (the `test` mask shipped with them)."""
    from mofn2logic.resources import default_data_path, default_model_path

    data = default_data_path()
    with np.load(data) as z:
        test = np.asarray(z["test"], dtype=bool)
    return run(default_model_path(), data, outdir, key="images", labels=data, labels_key="labels", fit=~test,
               device=device, log=log)


__all__ = ["activations", "extract", "compile", "fit_decision_list", "cut_classes", "verify", "run", "demo"]
