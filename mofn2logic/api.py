"""The Python API: the four steps a user scripts, each taking paths or objects."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mofn2logic.inputs import check_data, read_array
from mofn2logic.search.network import DEFAULT_BETAS
from mofn2logic.onnx.harvest import Activations, harvest
from mofn2logic.ir.network import Network
from mofn2logic.onnx.importer import import_network
from mofn2logic.ir.program import Program
from mofn2logic.ir.rules import RuleSet
from mofn2logic.search.rules_file import read_rules

PathLike = str | os.PathLike[str]


def _data(net: Network, data: PathLike | np.ndarray, key: str | None) -> np.ndarray:
    x = read_array(data, key) if isinstance(data, (str, os.PathLike)) else np.asarray(data)
    return check_data(x, net.input_shape, net.dtype)


def _acts(model: PathLike, data: PathLike | np.ndarray, key: str | None) -> tuple[Network, Activations]:
    net = import_network(model)
    return net, harvest(net, model, _data(net, data, key))


def extract(model: PathLike, data: PathLike | np.ndarray, *, key: str | None = None, layers: Sequence[str] | None = None,
            mode: str = "chain", order: str = "weight", betas: Sequence[float] = DEFAULT_BETAS,
            device: str = "auto", **options: Any) -> RuleSet:
    """M-of-N rules for the layers of an ONNX model, from its activations on `data`.

    >>> rules = mofn2logic.extract("model.onnx", "x.npy", betas=[0, 0.2])   # doctest: +SKIP
    """
    from mofn2logic.search.network import extract as _extract

    net, acts = _acts(model, data, key)
    return _extract(net, acts, layers=layers, mode=mode, order=order, betas=betas, device=device,
                    provenance={"model": Path(model).name}, **options)


def compile(rules: RuleSet | PathLike, *, cut: str | None = None, beta: float | None = None) -> Program:  # noqa: A001
    """A layered logic program from a chain-mode rule set, from layer `cut` to the output."""
    from mofn2logic.program.compile import compile_program

    rs = rules if isinstance(rules, RuleSet) else read_rules(rules)
    return compile_program(rs, cut=cut, beta=beta)


def verify(program: Program | PathLike, model: PathLike, data: PathLike | np.ndarray, *, key: str | None = None,
           labels: np.ndarray | PathLike | None = None, engines: Sequence[str] = ("python",)) -> dict:
    """Fidelity of `program` to the network on `data`, per-layer agreement, and engine agreement."""
    from mofn2logic.cli import load_program
    from mofn2logic.engines.verify import verify as _verify

    prog = program if isinstance(program, Program) else load_program(str(program))
    net, acts = _acts(model, data, key)
    y = None if labels is None else np.asarray(read_array(labels) if isinstance(labels, (str, os.PathLike)) else labels)
    return _verify(prog, net, acts, labels=None if y is None else y.reshape(-1), engines=tuple(engines))


def run(model: PathLike, data: PathLike | np.ndarray, outdir: PathLike, *, key: str | None = None,
        labels: np.ndarray | PathLike | None = None, holdout: float = 0.2, **options: Any) -> Mapping[str, Any]:
    """The whole pipeline into `outdir`: rules, programs, exports, checks, report.html and report.md."""
    from mofn2logic.pipeline import run_pipeline

    net = import_network(model)
    x = _data(net, data, key)
    y = None if labels is None else np.asarray(read_array(labels) if isinstance(labels, (str, os.PathLike)) else labels)
    return run_pipeline(model, x, None if y is None else y.reshape(-1).astype(np.int64), outdir, holdout=holdout,
                        **options)
