"""A decision-list class block against the margin program (issue 10, item 3), on the MNIST CNN.

    .venv/bin/python benchmarks/quality/bench_decision_list.py [--budgets 20,50,100,300] [--cut node_linear_1]

The program over the penultimate layer (cut at the softmax layer, default) reads the chain's input
tests on its 128 units. Rules and lists are fitted on the 8,000 training images of benchmarks/mnist.py
and measured on the 2,000 held out: end-to-end fidelity (the program's class against the network's)
and the program's literal count, for the margin program at each beta of the rule set and for a
decision list (`mofn2logic.search.decision_list`) at each literal budget. The rule set is
benchmarks/_work/rules_8000_cpu.json (chain mode, fitted on the training images) when it is there;
otherwise the two dense layers are extracted here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
WORK = ROOT / "benchmarks" / "_work"

from mnist import load_mnist  # noqa: E402

import mofn2logic as M  # noqa: E402
from mofn2logic.engines.numpy_engine import evaluate  # noqa: E402
from mofn2logic.ir.program import literal_count  # noqa: E402
from mofn2logic.program.compile import compile_program  # noqa: E402
from mofn2logic.search.decision_list import fit_decision_list  # noqa: E402
from mofn2logic.search.rules_file import read_rules  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", default="20,50,100,300")
    ap.add_argument("--cut", default="node_linear_1")
    ap.add_argument("--max-n", type=int, default=3)
    ap.add_argument("--pool", type=int, default=32)
    ap.add_argument("--grow", type=int, default=12)
    ap.add_argument("--penalty", type=float, default=8.0)
    ap.add_argument("--min-penalty", type=float, default=1.0)
    ap.add_argument("--min-gain", type=int, default=1)
    ap.add_argument("--total", action="store_true", help="choose rules by score, not score per literal")
    args = ap.parse_args()
    t0 = time.perf_counter()
    x, _, held = load_mnist()
    model = M.load_model(WORK / "mnist_cnn_relu.onnx")
    acts = M.activations(model, x)
    pred = np.argmax(np.asarray(acts[model.network.output]), axis=1)
    cached = WORK / "rules_8000_cpu.json"
    if cached.is_file():
        rs = read_rules(cached)
    else:  # the two dense layers, chain mode, on the training images
        rs = M.extract(model, x[~held], layers=["node_linear", "node_linear_1"], betas=(0.0, 0.1, 0.2, 1.0, 5.0))
    print(f"data, activations and rules: {time.perf_counter() - t0:.1f} s; held out {int(held.sum())}, "
          f"cut {args.cut!r}")
    rows = []
    for beta in rs.betas:
        p = compile_program(rs, cut=args.cut, beta=beta)
        xc = np.asarray(acts[p.input.tensor])
        fid = float(np.mean(evaluate(p, xc[held])[2] == pred[held]))
        rows.append(("margin", f"beta {beta:g}", literal_count(p), fid, 0.0))
    full = compile_program(rs, cut=args.cut, beta=min(rs.betas), complete=True)
    xc = np.asarray(acts[full.input.tensor])
    for budget in (int(b) for b in args.budgets.split(",")):
        t = time.perf_counter()
        p = fit_decision_list(full, xc[~held], pred[~held], budget, max_n=args.max_n, grow=args.grow, pool=args.pool,
                              penalty=args.penalty, min_penalty=args.min_penalty, min_gain=args.min_gain,
                              per_literal=not args.total)
        secs = time.perf_counter() - t
        cls = evaluate(p, xc)[2]
        rows.append(("decision list", f"budget {budget}", literal_count(p), float(np.mean(cls[held] == pred[held])),
                     secs, float(np.mean(cls[~held] == pred[~held])), len(p.output.rules)))
    print(f"{'program':<14} {'setting':<12} {'literals':>8} {'held-out fidelity':>18} {'train':>7} {'rules':>6} "
          f"{'fit s':>6}")
    for r in rows:
        extra = f"{r[5]:>7.4f} {r[6]:>6d}" if len(r) > 5 else f"{'':>7} {'':>6}"
        print(f"{r[0]:<14} {r[1]:<12} {r[2]:>8d} {r[3]:>18.4f} {extra} {r[4]:>6.1f}")
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
