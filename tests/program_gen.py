"""Random logic programs (seeded) for property and differential tests."""

from __future__ import annotations

import numpy as np

from mofn2logic.ir.program import (
    AtomLiteral,
    DecisionListBlock,
    IndexBlock,
    InputTests,
    MofNRule,
    PoolBlock,
    Program,
    RuleBlock,
)
from mofn2logic.ir.steps import MaxPool

HOSTILE = ["it's", 'say "hi"', "Capital Name", "ünïcødé ✓", "a :- halt.", "x\\y", "tab\there", "new\nline",
           "-> ; !", "'", "%comment", "0'a", "[]", "{}"]


def _rules(rng, units, n_src, conv=False, channels=None, heads=True):
    rules = []
    for u in range(units):
        if rng.random() < 0.15 and heads:
            continue  # a unit with no rule
        n = int(rng.integers(0, min(6, n_src if not conv else 9) + 1))
        if conv:
            lits = tuple(AtomLiteral(int(rng.integers(channels)), bool(rng.random() < 0.6),
                             (int(rng.integers(-1, 2)), int(rng.integers(-1, 2)))) for _ in range(n))
        else:
            srcs = rng.choice(n_src, size=n, replace=False)
            lits = tuple(AtomLiteral(int(s), bool(rng.random() < 0.6)) for s in srcs)
        m = int(rng.integers(0, n + 2))
        thr = float(np.float32(rng.normal())) if heads else None
        rules.append(MofNRule(u, m, lits, thr))
    return tuple(rules)


def dense_program(seed: int, names=None) -> Program:
    rng = np.random.default_rng(seed)
    names = names or ["h1", "out"]
    n_in, hidden, k = int(rng.integers(3, 12)), int(rng.integers(2, 8)), int(rng.integers(2, 6))
    tests = tuple((i, float(np.float32(rng.normal()))) for i in range(n_in) if rng.random() < 0.9)
    inp = InputTests(names[0] + "/in", (n_in,), False, tests)
    h = RuleBlock(names[0], "dense", "", (hidden,), _rules(rng, hidden, n_in))
    out = RuleBlock(names[1], "dense", names[0], (k,), _rules(rng, k, hidden, heads=False))
    return Program(name=names[0] + " program", input=inp, blocks=(h, out))


def conv_program(seed: int, names=None) -> Program:
    rng = np.random.default_rng(seed)
    names = names or ["conv", "pool", "flat", "out"]
    c_in, c_out, size, k = int(rng.integers(1, 3)), int(rng.integers(2, 4)), 6, int(rng.integers(2, 5))
    inp = InputTests("image", (c_in, size, size), True, tuple((c, float(np.float32(rng.normal()))) for c in range(c_in)))
    conv = RuleBlock(names[0], "conv", "", (c_out, size, size), _rules(rng, c_out, c_in, conv=True, channels=c_in))
    pool = PoolBlock(names[1], names[0], (c_out, 3, 3), MaxPool(kernel=(2, 2), strides=(2, 2)))
    perm = np.transpose(np.arange(c_out * 9).reshape(c_out, 3, 3), (1, 2, 0)).reshape(-1)  # an NHWC flatten
    flat = IndexBlock(names[2], names[1], (c_out * 9,), tuple(int(i) for i in perm))
    out = RuleBlock(names[3], "dense", names[2], (k,), _rules(rng, k, c_out * 9, heads=False))
    return Program(name="conv program", input=inp, blocks=(conv, pool, flat, out))


def list_block(rng, name: str, source: str, n_src: int, k: int) -> DecisionListBlock:
    """A random decision list: 0 to 6 rules naming any class (repeats allowed); about one in ten is
    constant (M = 0: always holds; M = N + 1: never)."""
    rules = []
    for _ in range(int(rng.integers(0, 7))):
        n = int(rng.integers(1, min(4, n_src) + 1))
        lits = tuple(AtomLiteral(int(s), bool(rng.random() < 0.6)) for s in rng.choice(n_src, size=n, replace=False))
        m = int(rng.choice([0, n + 1])) if rng.random() < 0.1 else int(rng.integers(1, n + 1))
        rules.append(MofNRule(int(rng.integers(k)), m, lits))
    return DecisionListBlock(name, source, (k,), tuple(rules), int(rng.integers(k)))


def with_list(program: Program, seed: int) -> Program:
    """`program` with its class block replaced by a random decision list over the same source."""
    rng = np.random.default_rng(seed + 1000)
    out = program.output
    n_src = int(np.prod(program.input.shape if out.source == "" else program.block(out.source).shape))
    block = list_block(rng, out.name, out.source, n_src, int(out.shape[0]))
    return Program(program.name, program.input, (*program.blocks[:-1], block), "first")


def list_program(seed: int, names=None) -> Program:
    """A dense hidden layer, then a decision list."""
    return with_list(dense_program(seed, names), seed)


def conv_list_program(seed: int, names=None) -> Program:
    """Conv, pool, flatten, then a decision list."""
    return with_list(conv_program(seed, names), seed)


def pool_list_program(seed: int) -> Program:
    """Conv, pool, then a decision list reading the pooled grid directly (flat indices into it)."""
    p = conv_program(seed)
    pool = p.blocks[1]
    block = list_block(np.random.default_rng(seed + 2000), "out", pool.name, int(np.prod(pool.shape)), 3)
    return Program("pool list", p.input, (p.blocks[0], pool, block), "first")


def sample_inputs(program: Program, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *program.input.shape)).astype(np.float32)
    x[:, ...] = np.round(x * 4) / 4  # ties with thresholds are rare but values repeat
    return x
