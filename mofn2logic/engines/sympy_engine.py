"""The SymPy engine: every atom computed by its lambdified threshold expression.

The expressions are the SymPy export's (`mofn2logic.exporters.sympy_expr`), rules of any length
included (a long rule's count is nested partial counts, which `lambdify` compiles). Each rule
block is lambdified once -- a dense block as one function of its source atoms returning every
rule's atom, a convolution's rule as a function of its receptive field -- and the functions run
vectorised over a batch of samples (and positions), the batches sized to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter

from mofn2logic.engines.base import EvaluatingEngine
from mofn2logic.engines.numpy_engine import structural
from mofn2logic.exporters.sympy_expr import atom_symbol, block_numbers, input_symbol, rule_count, to_sympy_program
from mofn2logic.ir.program import DecisionListBlock, IndexBlock, PoolBlock, Program, RuleBlock, pad_truth

# int32 values held at once for a convolution's shifted source atoms (the batch is sized to fit).
BATCH_VALUES = 1 << 25


class SympyEngine(EvaluatingEngine):
    """Every atom computed by its lambdified SymPy threshold expression (``--engine sympy``)."""

    name = "sympy"

    @staticmethod
    def evaluate(program: Program, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        return evaluate(program, x)


def _lambdify(args: list[sympy.Symbol], exprs: Any) -> Callable[..., Any]:
    """A numpy function of one list of values (the symbols in `args`, in order). The sums print
    in the order SymPy stores them: sorting them for display is most of the cost on long rules."""
    printer = NumPyPrinter({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                            "user_functions": {}, "order": "none"})
    return sympy.lambdify([args], exprs, modules="numpy", printer=printer, docstring_limit=0)


def _column(value: Any, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A lambdified expression's value (an array, or a number when the expression is constant)."""
    return np.broadcast_to(np.asarray(value).astype(dtype, copy=False), shape)


@dataclass
class _Dense:
    sources: list[int]  # source atoms the block reads (flat indices), in argument order
    atoms: Callable[..., Any]  # values -> every rule's atom
    counts: Callable[..., Any] | None  # values -> every rule's count (the class block: margins)


@dataclass
class _List:
    sources: list[int]  # source atoms the decision list reads (flat indices), in argument order
    classes: Callable[..., Any]  # values -> the decided class (the lambdified Piecewise)


@dataclass
class _ConvRule:
    reads: list[tuple[int, tuple[int, int]]]  # (channel, offset) per argument
    atom: Callable[..., Any]


def _compile_dense(b: RuleBlock, source: int, atoms: dict, counts: bool) -> _Dense:
    sources = sorted({li.src for r in b.rules for li in r.lits})
    args = [atom_symbol(source, i) for i in sources]
    f = _lambdify(args, [atoms[(b.name, r.unit)] for r in b.rules])
    g = _lambdify(args, [rule_count(r, source) for r in b.rules]) if counts else None
    return _Dense(sources, f, g)


def _compile_list(b: DecisionListBlock, source: int, exprs: dict) -> _List:
    sources = sorted({li.src for r in b.rules for li in r.lits})
    return _List(sources, _lambdify([atom_symbol(source, i) for i in sources], exprs[b.name]))


def _compile_conv(b: RuleBlock, source: int, atoms: dict) -> list[_ConvRule]:
    out = []
    for r in b.rules:
        reads = list(dict.fromkeys((li.src, li.offset) for li in r.lits))
        args = [atom_symbol(source, c, offset) for c, offset in reads]
        out.append(_ConvRule(reads, _lambdify(args, atoms[(b.name, r.unit)])))  # type: ignore[arg-type]
    return out


def evaluate(program: Program, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(atoms per block, (E, *shape) bool), class margins (E, K) and the chosen class (E,), every
    atom computed by the lambdified SymPy expressions of the program."""
    sp = to_sympy_program(program)
    num = block_numbers(program)
    inp = program.input
    keys = [idx for (_, idx) in sp.inputs]
    tests = _lambdify([input_symbol(i) for i in keys], list(sp.inputs.values())) if keys else None
    compiled: dict[str, Any] = {}
    for b in program.blocks:
        if isinstance(b, DecisionListBlock):
            compiled[b.name] = _compile_list(b, num[b.source], sp.decision_list)
        elif isinstance(b, RuleBlock):
            compiled[b.name] = (_compile_dense(b, num[b.source], sp.atoms, b is program.output) if b.kind == "dense"
                                else _compile_conv(b, num[b.source], sp.atoms))
    e = len(x)
    xs = np.asarray(x).reshape((e, *inp.shape))
    per_sample = max([len({(li.src, li.offset) for r in b.rules for li in r.lits}) * b.shape[1] * b.shape[2]
                      for b in program.rule_blocks() if b.kind == "conv"], default=1)
    batch = max(1, BATCH_VALUES // max(per_sample, 1))
    parts = [_run(program, compiled, tests, keys, xs[i:i + batch]) for i in range(0, e, batch)] or \
        [_run(program, compiled, tests, keys, xs)]
    atoms = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    margins = np.concatenate([p[1] for p in parts])
    return atoms, margins, np.argmax(margins, axis=1)  # argmax: first (lowest) class on ties


def _run(program: Program, compiled: dict[str, Any], tests: Callable[..., Any] | None, keys: list[int],
         xs: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    e = len(xs)
    inp = program.input
    flat = xs.reshape(e, -1)
    atoms_in = np.zeros(xs.shape, bool)
    if tests is not None:  # one lambdified function returning every input atom (one expression each)
        values = tests([xs[:, i] if inp.per_channel else flat[:, i] for i in keys])
        for i, v in zip(keys, values):
            target = atoms_in[:, i] if inp.per_channel else atoms_in.reshape(e, -1)[:, i]
            target[...] = _column(v, target.shape, bool)
    atoms: dict[str, np.ndarray] = {"": atoms_in}
    margins = None
    for b in program.blocks:
        src = atoms[b.source]
        if isinstance(b, (IndexBlock, PoolBlock)):  # structure, not expressions
            atoms[b.name] = structural(src, b)
        elif isinstance(b, DecisionListBlock):  # the class from the Piecewise; atoms and margins its one-hot
            dl: _List = compiled[b.name]
            rows = np.ascontiguousarray(src.reshape(e, -1).T[dl.sources], dtype=np.int32)
            classes = _column(dl.classes(list(rows)), (e,), np.int64)
            atoms[b.name] = classes[:, None] == np.arange(b.shape[0])[None, :]
            margins = atoms[b.name].astype(np.float64)
        elif b.kind == "dense":
            d: _Dense = compiled[b.name]
            out = np.zeros((e, b.shape[0]), bool)
            rows = np.ascontiguousarray(src.reshape(e, -1).T[d.sources], dtype=np.int32)  # one row per source atom
            values = list(rows)
            for r, v in zip(b.rules, d.atoms(values)):
                out[:, r.unit] = _column(v, (e,), bool)
            if d.counts is not None:
                margins = np.full((e, b.shape[0]), -1.0)
                for r, c in zip(b.rules, d.counts(values)):
                    margins[:, r.unit] = (_column(c, (e,), np.int64) - r.m) / max(r.n, 1)
            atoms[b.name] = out
        else:
            atoms[b.name] = _conv(program, src, b, compiled[b.name])
    assert margins is not None  # check_program: the last block is the dense class layer or a decision list
    return atoms, margins


def _conv(program: Program, src: np.ndarray, b: RuleBlock, rules: list[_ConvRule]) -> np.ndarray:
    e, _, h, w = src.shape
    c_out, oh, ow = b.shape
    sy, sx = b.stride
    out = np.zeros((e, c_out, oh, ow), bool)
    shifted: dict[tuple[int, tuple[int, int]], np.ndarray] = {}  # (channel, offset) -> source atoms read there

    def read(c: int, offset: tuple[int, int]) -> np.ndarray:
        if (c, offset) not in shifted:
            dy, dx = offset
            rows, cols = np.arange(oh) * sy + dy, np.arange(ow) * sx + dx
            inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
            vals = src[:, c][:, np.clip(rows, 0, h - 1)][:, :, np.clip(cols, 0, w - 1)]
            shifted[(c, offset)] = np.where(inside, vals, pad_truth(program, b.source, c)).astype(np.int32)
        return shifted[(c, offset)]

    for r, cr in zip(b.rules, rules):
        out[:, r.unit] = _column(cr.atom([read(c, offset) for c, offset in cr.reads]), (e, oh, ow), bool)
    return out
