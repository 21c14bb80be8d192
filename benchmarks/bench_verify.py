"""verify on 10,000 samples of a 10-class softmax program over 128 inputs, per engine.

    .venv/bin/python benchmarks/train_mnist_cnn.py   # once
    .venv/bin/python benchmarks/bench_verify.py

Rules for the MNIST CNN's softmax layer (Dense128 -> 10) are extracted on 2,000 training images
(chain mode, beta 0); the program is then checked on all 10,000 MNIST test images, once per engine.
Targets (2 cores): prolog <= 10 s, sympy <= 2 s, python <= 0.5 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from mnist import load_mnist  # noqa: E402

import mofn2logic as M  # noqa: E402
from mofn2logic.engines import get_engine  # noqa: E402
from mofn2logic.program.compile import compile_program  # noqa: E402
from mofn2logic.search.network import extract  # noqa: E402


def main() -> None:
    model = HERE / "_work" / "mnist_cnn_relu.onnx"
    if not model.is_file():
        raise SystemExit(f"{model} is missing: run benchmarks/train_mnist_cnn.py first")
    x, y, held = load_mnist()
    net = M.import_network(model)
    train = M.harvest(net, model, M.check_data(x[~held][:2000], net.input_shape, net.dtype))
    last = net.layers[-1].name
    rs = extract(net, train, layers=[last], betas=(0.0,), device="cpu")
    program = compile_program(rs, cut=last, beta=0.0)
    acts = M.harvest(net, model, M.check_data(x, net.input_shape, net.dtype))
    cut = np.asarray(acts[program.input.tensor])
    pred = np.argmax(np.asarray(acts[net.output]), axis=1)
    print(f"program: {len(program.input.tests)} input tests over {cut.shape[1]} inputs, {len(program.output.rules)} classes; "
          f"{len(cut)} samples")
    classes = {}
    for engine, target in (("python", 0.5), ("sympy", 2.0), ("prolog", 10.0)):
        t0 = time.perf_counter()
        classes[engine] = get_engine(engine).run(program, cut).classes
        secs = time.perf_counter() - t0
        print(f"  {engine:<7} {secs:7.2f} s  (target <= {target} s: {'met' if secs <= target else 'NOT met'})  "
              f"fidelity {np.mean(classes[engine] == pred):.4f}, accuracy {np.mean(classes[engine] == y):.4f}")
    same = all(np.array_equal(classes["python"], c) for c in classes.values())
    print(f"  engines agree on every class: {same}")


if __name__ == "__main__":
    main()
