"""The SymPy engine: every atom computed by its lambdified threshold expression."""

from __future__ import annotations

import numpy as np
import sympy

from mofn2logic.engines.base import EngineResult, flat_atoms
from mofn2logic.engines.numpy_engine import structural
from mofn2logic.exporters.sympy_expr import atom_symbol, block_numbers, input_symbol, to_sympy_program
from mofn2logic.ir.program import IndexBlock, PoolBlock, Program, RuleBlock, pad_truth


class SympyEngine:
    """Every atom computed by its lambdified SymPy threshold expression (``--engine sympy``)."""

    name = "sympy"

    def run(self, program: Program, x: np.ndarray) -> EngineResult:
        atoms, margins, classes = evaluate(program, x)
        return EngineResult(flat_atoms(program, atoms), margins, classes)


def evaluate(program: Program, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    sp = to_sympy_program(program)
    num = block_numbers(program)
    e = x.shape[0]
    inp = program.input
    xs = np.asarray(x).reshape((e, *inp.shape))
    flat = xs.reshape(e, -1)
    atoms_in = np.zeros(xs.shape, bool)
    keys = [idx for (_, idx) in sp.inputs]
    if keys:  # one lambdified function returning every input atom (one expression each)
        f = sympy.lambdify([input_symbol(i) for i in keys], list(sp.inputs.values()), "numpy")
        values = f(*[xs[:, i] if inp.per_channel else flat[:, i] for i in keys])
        for i, v in zip(keys, values):
            target = atoms_in[:, i] if inp.per_channel else atoms_in.reshape(e, -1)[:, i]
            target[...] = np.broadcast_to(np.asarray(v, dtype=bool), target.shape)
    atoms: dict[str, np.ndarray] = {"": atoms_in}
    margins = None
    for b in program.blocks:
        src = atoms[b.source]
        if isinstance(b, (IndexBlock, PoolBlock)):  # structure, not expressions
            atoms[b.name] = structural(src, b)
        elif b.kind == "dense":
            out = np.zeros((e, b.shape[0]), bool)
            s = src.reshape(e, -1).astype(np.int64)
            if b is program.output:
                margins = np.full((e, b.shape[0]), -1.0)
            srcs = sorted({li.src for r in b.rules for li in r.lits})
            syms = [atom_symbol(num[b.source], i) for i in srcs]
            exprs = [sp.atoms[(b.name, r.unit)] for r in b.rules]
            if margins is not None:
                exprs += [sympy.Add(*[atom_symbol(num[b.source], li.src) if li.positive
                                      else 1 - atom_symbol(num[b.source], li.src) for li in r.lits]) for r in b.rules]
            values = sympy.lambdify(syms, exprs, "numpy")(*[s[:, i] for i in srcs]) if exprs else []
            for k, r in enumerate(b.rules):
                out[:, r.unit] = np.broadcast_to(np.asarray(values[k], dtype=bool), (e,))
                if margins is not None:
                    c = np.broadcast_to(np.asarray(values[len(b.rules) + k], dtype=np.int64), (e,))
                    margins[:, r.unit] = (c - r.m) / max(r.n, 1)
            atoms[b.name] = out
        else:
            atoms[b.name] = _conv(program, src, b, sp, num[b.source])
    assert margins is not None  # check_program: the last block is the dense class layer
    return atoms, margins, np.argmax(margins, axis=1)


def _conv(program: Program, src: np.ndarray, b: RuleBlock, sp, source: int) -> np.ndarray:
    e, _, h, w = src.shape
    c_out, oh, ow = b.shape
    sy, sx = b.stride
    out = np.zeros((e, c_out, oh, ow), bool)
    for r in b.rules:
        syms = list(dict.fromkeys(atom_symbol(source, li.src, li.offset) for li in r.lits))
        f = sympy.lambdify(syms, sp.atoms[(b.name, r.unit)], "numpy")
        args = []
        for c, offset in dict.fromkeys((li.src, li.offset) for li in r.lits):
            assert offset is not None
            dy, dx = offset
            rows, cols = np.arange(oh) * sy + dy, np.arange(ow) * sx + dx
            inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
            vals = src[:, c][:, np.clip(rows, 0, h - 1)][:, :, np.clip(cols, 0, w - 1)]
            args.append(np.where(inside, vals, pad_truth(program, b.source, c)).astype(np.int64))
        out[:, r.unit] = np.broadcast_to(np.asarray(f(*args), dtype=bool), (e, oh, ow))
    return out
