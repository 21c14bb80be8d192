"""The MNIST CNN's rule set and full replica at scale, before and after, side by side in one run:
rules.json (version 1 against version 2), the SymPy export and engine (one flat sum per rule
against nested partial counts), and the Prolog engine (per sample, top-down and tabled, against
bottom-up on all samples at once).

    .venv/bin/python benchmarks/train_mnist_cnn.py     # once: the Keras-style MNIST CNN
    .venv/bin/python benchmarks/bench_scale.py [--quick] [--samples 400]

The rule set is `mofn2logic extract` of the CNN on its 2,000 training images (written to
benchmarks/_work/mnist_rules.json once); the replica is that rule set compiled from the first
layer, beta 0 (about 212,000 literals); the engines run on held-out MNIST images. The "before"
code is reproduced here in a few lines where it is gone from the package: the flat SymPy sum (its
export takes minutes; --quick skips it) and the per-sample Prolog classification (timed on a few
samples and extrapolated, stated as such).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sympy

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from mnist import load_mnist  # noqa: E402

from mofn2logic.engines import numpy_engine, prolog_engine, sympy_engine  # noqa: E402
from mofn2logic.exporters.prolog import data_facts, quote_atom, to_prolog  # noqa: E402
from mofn2logic.exporters.sympy_expr import atom_symbol, block_numbers, to_sympy  # noqa: E402
from mofn2logic.ir.program import Program, RuleBlock, literal_count  # noqa: E402
from mofn2logic.program.compile import compile_program  # noqa: E402
from mofn2logic.search import rules_file  # noqa: E402

WORK = HERE / "_work"


def best(fn, repeat: int = 1):
    """Best of `repeat` runs (the machine is shared: the minimum is the least disturbed), and the result."""
    t_best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t_best = min(t_best, time.perf_counter() - t0)
    return t_best, out


def rule_set() -> Path:
    path = WORK / "mnist_rules.json"
    if not path.is_file():
        model, data = WORK / "mnist_cnn_relu.onnx", WORK / "mnist_train.npy"
        if not model.is_file():
            raise SystemExit(f"{model} is missing: run benchmarks/train_mnist_cnn.py first")
        print(f"(extracting the rule set once: {path})", flush=True)
        subprocess.run([sys.executable, "-m", "mofn2logic", "extract", str(model), "--data", str(data), "-o", str(path),
                        "--device", "cpu"], check=True, stdout=subprocess.DEVNULL)
    return path


def bench_rules(path: Path) -> None:
    rs = rules_file.read_rules(path)
    t1, v1 = best(lambda: rules_file.dumps_v1(rs), 3)
    t2, v2 = best(lambda: rules_file.dumps(rs), 3)
    r1, back1 = best(lambda: rules_file.loads(v1))
    r2, back2 = best(lambda: rules_file.loads(v2))
    assert back1 == rs and back2 == rs, "a version does not round-trip"
    mb1, mb2 = len(v1.encode()) / 1e6, len(v2.encode()) / 1e6
    lits = sum(r.n for la in rs.layers for u in la.units for r in u.rules)
    print(f"\n== rules.json of the MNIST CNN ({lits:,} literals over {len(rs.betas)} betas)")
    print(f"  version 1 (before): {mb1:7.2f} MB, written in {t1:6.3f} s, read in {r1:5.2f} s")
    print(f"  version 2 (after):  {mb2:7.2f} MB, written in {t2:6.3f} s, read in {r2:5.2f} s   "
          f"(x{mb1 / mb2:.0f} smaller, x{t1 / t2:.0f} faster to write; targets <= 5 MB, <= 1 s: "
          f"{'met' if mb2 <= 5 and t2 <= 1 else 'NOT met'})")


def flat_rule_expr(rule, source: int) -> sympy.Expr:
    """The SymPy export before: one flat sum of every literal of the rule."""
    terms = [atom_symbol(source, li.src, li.offset) if li.positive else 1 - atom_symbol(source, li.src, li.offset)
             for li in rule.lits]
    return sympy.Piecewise((1, (sympy.Add(*terms) if terms else sympy.Integer(0)) >= rule.m), (0, True))


def flat_export(p: Program) -> int:
    num = block_numbers(p)
    return sum(len(sympy.srepr(flat_rule_expr(r, num[b.source]))) for b in p.rule_blocks() for r in b.rules)


def bench_sympy(p: Program, x: np.ndarray, quick: bool, ref) -> None:
    longest = max((r for b in p.rule_blocks() for r in b.rules), key=lambda r: r.n)
    print(f"\n== SymPy on the full replica ({literal_count(p):,} literals, longest rule {longest.n:,}), "
          f"{len(x)} samples")
    if quick:
        print("  before: flat export skipped (--quick)")
    else:
        t, _ = best(lambda: flat_export(p))
        print(f"  before: flat export {t:7.1f} s")
    big = next(b for b in p.rule_blocks() if longest in b.rules)
    expr = flat_rule_expr(longest, block_numbers(p)[big.source])
    t0 = time.perf_counter()
    try:
        sympy.lambdify(sorted(expr.free_symbols, key=lambda s: s.name), expr, "numpy")
        crash = "lambdified"
    except RecursionError as e:
        crash = f"RecursionError ({e})"
    print(f"  before: engine: lambdify of the longest flat rule: {crash} after {time.perf_counter() - t0:.1f} s")
    t_export, text = best(lambda: to_sympy(p))
    print(f"  after:  export      {t_export:7.2f} s ({len(text) / 1e6:.1f} MB of Python)")
    t_engine, (atoms, margins, classes) = best(lambda: sympy_engine.evaluate(p, x))
    same = np.array_equal(classes, ref[2]) and np.array_equal(margins, ref[1]) and all(
        np.array_equal(atoms[b.name], ref[0][b.name]) for b in p.rule_blocks())
    print(f"  after:  engine      {t_engine:7.2f} s; every atom, margin and class equal to numpy: {same}")


OLD_PROLOG = r"""
old_classify(File) :- load_files(File, [silent(true)]), forall(sample(S), old_sample(S)).
old_sample(S) :-
    abolish_all_tables, predict(S, C), format("~w ~w", [S, C]),
    forall(( block(_, _, Kind, P, _, Shape), ( Kind == dense ; Kind == conv ) ), ( put_char(' '), old_atoms(P, S, Shape) )),
    nl.
old_atoms(P, S, Shape) :- forall(old_coords(Shape, Cs), ( A =.. [P, S|Cs], ( call(A) -> put_char('1') ; put_char('0') ) )).
old_coords([], []).
old_coords([D|Ds], [I|Is]) :- D1 is D - 1, between(0, D1, I), old_coords(Ds, Is).
"""


def old_prolog(p: Program, x: np.ndarray) -> float:
    """Seconds of the per-sample, top-down classification (the runtime before) on the samples of `x`."""
    exe = prolog_engine.swipl()
    with tempfile.TemporaryDirectory() as tmp:
        prog, data, old = Path(tmp) / "p.pl", Path(tmp) / "d.pl", Path(tmp) / "old.pl"
        prog.write_text(to_prolog(p), encoding="utf-8")
        data.write_text(data_facts(x, p), encoding="utf-8")
        old.write_text(OLD_PROLOG, encoding="utf-8")
        t0 = time.perf_counter()
        out = subprocess.run([exe, "-q", "-O", "-g", f"consult({quote_atom(str(old))}), "
                              f"old_classify({quote_atom(str(data))})", "-t", "halt", str(prog)],
                             capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if out.returncode or len(out.stdout.splitlines()) != len(x):
        raise SystemExit(f"the per-sample Prolog run failed: {out.stderr[:300]}")
    return seconds


def bench_prolog(p: Program, x: np.ndarray, sample: int, ref) -> None:
    print(f"\n== Prolog engine on the full replica ({literal_count(p):,} literals), {len(x)} samples")
    t_small = old_prolog(p, x[:sample])
    print(f"  before: per sample, tabled: {t_small:.1f} s for {sample} samples -> ~{t_small / sample * len(x):,.0f} s "
          f"for {len(x)} (extrapolated)")
    t, (atoms, classes) = best(lambda: prolog_engine.run(p, x))
    same = np.array_equal(classes, ref[2]) and all(np.array_equal(atoms[b.name], ref[0][b.name].reshape(len(x), -1))
                                                   for b in p.rule_blocks())
    print(f"  after:  all samples at once, bottom-up: {t:.2f} s (target <= 30 s: {'met' if t <= 30 else 'NOT met'}); "
          f"every atom and class equal to numpy: {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="skip the flat SymPy export (minutes)")
    ap.add_argument("--samples", type=int, default=400, help="held-out images the engines run on")
    ap.add_argument("--old-samples", type=int, default=8, help="samples the per-sample Prolog run is timed on")
    args = ap.parse_args()
    path = rule_set()
    bench_rules(path)
    p = compile_program(rules_file.read_rules(path), beta=0.0)
    assert isinstance(p.blocks[0], RuleBlock)
    images, _, held = load_mnist()
    x = images[held][: args.samples]
    ref = numpy_engine.evaluate(p, x)
    bench_sympy(p, x, args.quick, ref)
    bench_prolog(p, x, args.old_samples, ref)


if __name__ == "__main__":
    main()
