"""The reference engine: the program evaluated with numpy, block by block, on all samples at once."""

from __future__ import annotations

import numpy as np

from mofn2logic.engines import block_counts
from mofn2logic.engines.base import EvaluatingEngine
from mofn2logic.errors import ProgramError
from mofn2logic.ir.program import DecisionListBlock, IndexBlock, PoolBlock, Program, RuleBlock, pad_truth


def input_atoms(program: Program, x: np.ndarray) -> np.ndarray:
    """Threshold tests on the cut tensor, (E, *shape) bool; untested inputs are false."""
    inp = program.input
    x = np.asarray(x).reshape((x.shape[0], *inp.shape))
    out = np.zeros(x.shape, bool)
    for idx, t in inp.tests:
        if inp.per_channel:
            out[:, idx] = x[:, idx] >= t
        else:
            flat = out.reshape(len(x), -1)
            flat[:, idx] = x.reshape(len(x), -1)[:, idx] >= t
    return out


class NumpyEngine(EvaluatingEngine):
    """The reference engine (``--engine python``): numpy, block by block, all samples at once."""

    name = "python"

    @staticmethod
    def evaluate(program: Program, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        return evaluate(program, x)


def evaluate(program: Program, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(atoms per block, (E, *shape) bool), class margins (E, K) and the chosen class (E,)."""
    atoms: dict[str, np.ndarray] = {"": input_atoms(program, x)}
    e = x.shape[0]
    for b in program.blocks:
        src = atoms[b.source]
        if isinstance(b, (IndexBlock, PoolBlock)):
            atoms[b.name] = structural(src, b)
        elif isinstance(b, DecisionListBlock):
            atoms[b.name] = list_atoms(src.reshape(e, -1), b)
        elif block_counts.exact(b):  # as matrix products (BLAS): the same atoms as the counts below, faster
            atoms[b.name] = (block_counts.dense_atoms(src.reshape(e, -1), b) if b.kind == "dense"
                             else block_counts.conv_atoms(program, src, b))
        elif b.kind == "dense":
            atoms[b.name] = dense_atoms(src.reshape(e, -1), b)[0]
        else:
            atoms[b.name] = conv_atoms(program, src, b)
    out = program.output
    if isinstance(out, DecisionListBlock):  # margins: the one-hot of the decided class
        margins = atoms[out.name].astype(np.float64)
    else:
        counts, m, n = dense_atoms(atoms[out.source].reshape(e, -1), out)[1:]
        margins = (counts - m) / np.maximum(n, 1)
    return atoms, margins, np.argmax(margins, axis=1)  # argmax: first (lowest) class on ties


def structural(src: np.ndarray, b: IndexBlock | PoolBlock) -> np.ndarray:
    """Atoms of an index block (a gather) or a pool block (an OR over windows)."""
    if isinstance(b, IndexBlock):
        return src.reshape(len(src), -1)[:, np.asarray(b.index)].reshape((len(src), *b.shape))
    return b.pool.apply(src)  # max of booleans: an OR over each window


def dense_atoms(src: np.ndarray, b: RuleBlock):
    """Atoms, literal counts, M and N per unit (units without a rule: never fire)."""
    e = src.shape[0]
    units = b.shape[0]
    pos = np.zeros((src.shape[1], units), np.int32)
    neg = np.zeros_like(pos)
    m = np.full(units, 1, np.int64)
    n = np.zeros(units, np.int64)
    for r in b.rules:
        for li in r.lits:
            (pos if li.positive else neg)[li.src, r.unit] += 1
        m[r.unit], n[r.unit] = r.m, r.n
    s = src.astype(np.int32)
    counts = s @ pos + (1 - s) @ neg
    return counts >= m, counts, np.broadcast_to(m, (e, units)), np.broadcast_to(n, (e, units))


def rule_fires(src: np.ndarray, rule) -> np.ndarray:
    """(E,) whether a dense rule holds on flat source atoms `src` (E, A)."""
    count = np.zeros(len(src), np.int64)
    for li in rule.lits:
        count += src[:, li.src] if li.positive else ~src[:, li.src]
    return count >= rule.m


def list_classes(src: np.ndarray, b: DecisionListBlock) -> np.ndarray:
    """(E,) the class of the first rule that fires, else the default; rules are applied last to first
    so that an earlier rule overwrites a later one."""
    classes = np.full(len(src), b.default, np.int64)
    for r in reversed(b.rules):
        classes[rule_fires(src, r)] = r.unit
    return classes


def list_atoms(src: np.ndarray, b: DecisionListBlock) -> np.ndarray:
    """(E, classes) the one-hot of the decided class."""
    return list_classes(src, b)[:, None] == np.arange(b.shape[0])[None, :]


def conv_atoms(program: Program, src: np.ndarray, b: RuleBlock) -> np.ndarray:
    e = src.shape[0]
    if src.ndim != 4:
        raise ProgramError(f"conv block {b.name!r} reads {b.source!r}, which is not a (channels, height, width) block")
    c_out, oh, ow = b.shape
    sy, sx = b.stride
    out = np.zeros((e, c_out, oh, ow), bool)
    h, w = src.shape[2], src.shape[3]
    for r in b.rules:
        count = np.zeros((e, oh, ow), np.int32)
        for li in r.lits:
            assert li.offset is not None  # check_program: conv literals have offsets
            dy, dx = li.offset
            rows = np.arange(oh) * sy + dy
            cols = np.arange(ow) * sx + dx
            inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
            vals = src[:, li.src][:, np.clip(rows, 0, h - 1)][:, :, np.clip(cols, 0, w - 1)]
            vals = np.where(inside, vals, pad_truth(program, b.source, li.src))
            count += vals if li.positive else ~vals
        out[:, r.unit] = count >= r.m
    return out
