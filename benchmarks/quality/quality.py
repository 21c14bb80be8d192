"""Programs worth reading: small and faithful rules (issue 10). Measures, on the Keras-style MNIST CNN
and on the embedded demo model, what the threshold-aware exact search, the local improvement and the
program-fitted replicas give, and writes benchmarks/quality/RESULTS.md.

    .venv/bin/python benchmarks/train_mnist_cnn.py                 # benchmarks/_work/mnist_cnn_relu.onnx
    .venv/bin/python benchmarks/quality/quality.py [--parts softmax,program,replicas,demo] [--from-json]

Data: the 10,000 MNIST test images in ../shared/data/mnist, split by benchmarks/mnist.py into 8,000
(the CNN's own training images: train_mnist_cnn.py trains on them) on which rules are fitted, and
2,000 held out (seen by neither the CNN nor the search) on which every figure is measured unless
marked *train*. Each part caches its figures in benchmarks/_work/quality/<part>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
WORK = ROOT / "benchmarks" / "_work"
CACHE = WORK / "quality"

from mnist import load_mnist  # noqa: E402

import mofn2logic as M  # noqa: E402
from mofn2logic.engines.numpy_engine import evaluate  # noqa: E402
from mofn2logic.program.compile import compile_program  # noqa: E402
from mofn2logic.search.backends import make_backend, search_threads  # noqa: E402
from mofn2logic.search.exact import (  # noqa: E402
    exact_small,
    layer_cuts,
    pack_bits,
    top_literals,
    unit_literals,
    validation_mask,
)
from mofn2logic.search.network import extract, predicted_class  # noqa: E402
from mofn2logic.search.splits import best_splits, binary_splits_per_target  # noqa: E402
from mofn2logic.search.unit import weight_order  # noqa: E402

BETAS = (0.0, 0.1, 0.2, 1.0, 5.0, 1000.0)
GRID = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
MODEL = WORK / "mnist_cnn_relu.onnx"


def _acts(net, path, x):
    return M.harvest(net, path, M.check_data(x, net.input_shape, net.dtype))


def _mnist():
    x, _, held = load_mnist()
    net = M.import_network(MODEL)
    return net, _acts(net, MODEL, x[~held]), _acts(net, MODEL, x[held])


def _literals_count(p) -> int:
    return sum(r.n for b in p.rule_blocks() for r in b.rules)


def _fidelity(p, acts, net) -> float:
    return float(np.mean(evaluate(p, np.asarray(acts[p.input.tensor]))[2] == predicted_class(net, acts)))


# --------------------------------------------------------------------------- part 1: softmax rules of <= 3 literals

def small_rule(xt, y, w, thr, cuts, validation, pool, k, backend, cut_data):
    """The rule the exact order picks at beta = 0 among rules of at most k literals: least training error
    over the paper's "M of the first N" (N <= k) and the exact search's candidates; ties to fewer literals,
    then smaller M, then the prefix. Returns (inputs, thresholds, positive, m, seconds of the exact search)."""
    fit = ~validation_mask(len(y), validation)
    base = xt >= thr[:, None]
    lits = unit_literals(xt, base, thr, w, y, fit, *(cut_data if cuts else (None, None)))
    order = weight_order(w)
    t0 = time.perf_counter()
    p = top_literals(lits, pool, lits.paper[order[:k]])
    sr = exact_small(lits, xt, y, p, k, fit, 8, backend)
    secs = time.perf_counter() - t0
    cands = []  # (errors, N, M, method rank, literal indices)
    for n in range(1, k + 1):
        rows = lits.truth(xt, lits.paper[order[:n]]).sum(0)
        for m in range(1, n + 1):
            cands.append((int(np.sum((rows >= m) != y)), n, m, 0, lits.paper[order[:n]]))
    cands += [(int(e), int(n), int(m), 1, s) for e, n, m, s in zip(sr.errors, sr.n, sr.m, sr.subsets)]
    cands.append((int(y.sum()), 0, 1, 0, np.zeros(0, np.int64)))  # always false
    best = min(cands, key=lambda c: c[:4])
    idx = best[4]
    return lits.inputs[idx], lits.thresholds[idx], lits.positive[idx], best[2], secs


def _agree(x, ins, ths, pos, m, y) -> float:
    count = ((x[:, ins] >= ths) == pos).sum(1) if len(ins) else np.zeros(len(x))
    return float(np.mean((count >= m) == y))


def oracle_bound(x_tr, y_tr, x_he, y_he, w, thr, cuts_data, k=3):
    """An upper bound on any selection: over every literal of the candidate set (16 cuts, the polarity
    fitted on the training examples), the best rule of <= k literals chosen on the held-out examples."""
    xt = np.ascontiguousarray(x_tr.T)
    lits = unit_literals(xt, xt >= thr[:, None], thr, w, y_tr, np.ones(len(y_tr), bool), *cuts_data)
    rows = ((x_he[:, lits.inputs] >= lits.thresholds) == lits.positive).T
    keep = rows.any(1) & ~rows.all(1)
    rows = np.unique(rows[keep], axis=0)  # literals equal on the held-out examples count once
    be = make_backend("cpu")
    bits, yb = pack_bits(rows), pack_bits(y_he)[0]
    best = int(min(y_he.sum(), (~y_he).sum()))
    for n in range(1, k + 1):
        e, _ = be.subset_topk(bits, yb, int(y_he.sum()), n, 1)
        best = min(best, int(e.min()))
    return 1 - best / len(y_he), int(len(rows))


def part_softmax(net, acts_tr, acts_he) -> dict:
    layer = net.layers[-1]
    x_tr, x_he = np.asarray(acts_tr[layer.input]), np.asarray(acts_he[layer.input])
    p_tr, p_he = predicted_class(net, acts_tr), predicted_class(net, acts_he)
    targets = p_tr[:, None] == np.arange(layer.units)[None, :]
    thr = binary_splits_per_target(x_tr, targets)  # paper mode: per (input, class)
    xt = np.ascontiguousarray(x_tr.T)
    be = make_backend("cpu")
    variants = {"paper prefix (weight order)": None, "exact, own splits only": (0, 0.2, 64),
                "exact, 8 cuts": (8, 0.2, 64), "exact, 16 cuts, no validation": (16, 0.0, 64),
                "exact, 16 cuts": (16, 0.2, 64), "exact, 32 cuts": (32, 0.2, 64), "exact, 16 cuts, pool 128": (16, 0.2, 128)}
    cut_cache = {c: layer_cuts(x_tr, c) for c in (8, 16, 32)}
    out: dict = {"variants": {}, "threads": search_threads()}
    for name, v in variants.items():
        rows = []
        secs = 0.0
        for j in range(layer.units):
            y = p_tr == j
            w = layer.weight[j]
            if v is None:
                order = weight_order(w)
                xr = (xt[order[:3]] >= thr[j][order[:3], None]) == (w[order[:3]] > 0)[:, None]
                cand = [(int(np.sum((xr[:n].sum(0) >= m) != y)), n, m) for n in range(1, 4) for m in range(1, n + 1)]
                cand.append((int(y.sum()), 0, 1))
                e, n, m = min(cand)
                ins, ths, pos = order[:n], thr[j][order[:n]], w[order[:n]] > 0
            else:
                cuts, val, pool = v
                ins, ths, pos, m, s = small_rule(xt, y, w, thr[j], cuts, val, pool, 3, be, cut_cache.get(cuts))
                secs += s
            rows.append({"class": j, "n": int(len(ins)), "m": int(m),
                         "train": _agree(x_tr, ins, ths, pos, m, y), "held": _agree(x_he, ins, ths, pos, m, p_he == j),
                         "rule": [[int(i), float(t), bool(p)] for i, t, p in zip(ins, ths, pos)]})
        out["variants"][name] = {"rows": rows, "exact_seconds": secs,
                                 "at_99": sum(r["held"] >= 0.99 for r in rows)}
        print(f"softmax {name}: {out['variants'][name]['at_99']} classes >= 99 % held out", flush=True)
    bound = []
    for j in range(layer.units):
        agr, n_lits = oracle_bound(x_tr, p_tr == j, x_he, p_he == j, layer.weight[j], thr[j], cut_cache[16])
        bound.append({"class": j, "held": agr, "literals": n_lits})
        print(f"oracle class {j}: {agr:.4f} over {n_lits} literals", flush=True)
    out["oracle"] = bound
    return out


def part_timing(net, acts_tr, acts_he) -> dict:
    """Seconds (best of 3, after a warm-up) of the paper-mode extraction of the softmax layer, all 6 betas:
    the paper's weight order, the exact search without local moves, and the whole exact order."""
    last = net.layers[-1].name
    out: dict = {"threads": search_threads(), "seconds": {}}
    for label, kw in (("weight", {"order": "weight"}), ("exact, no local moves", {"order": "exact", "improve_steps": 0}),
                      ("exact", {"order": "exact"}), ("best", {"order": "best"})):
        extract(net, acts_tr, layers=[last], mode="paper", betas=BETAS, device="cpu", **kw)  # warm-up
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            extract(net, acts_tr, layers=[last], mode="paper", betas=BETAS, device="cpu", **kw)
            times.append(time.perf_counter() - t0)
        out["seconds"][label] = min(times)
        print(f"timing {label}: {min(times):.2f} s", flush=True)
    return out


# --------------------------------------------------------------------------- part 2: the softmax-layer program

def part_program(net, acts_tr, acts_he) -> dict:
    last = net.layers[-1].name
    runs = {"weight": {"order": "weight"}, "best": {"order": "best"}, "exact": {"order": "exact"},
            "exact, small-n 5, pool 32": {"order": "exact", "small_n": 5, "exact_pool": 32}}
    out: dict = {"runs": {}}
    for name, kw in runs.items():
        t0 = time.perf_counter()
        rs = extract(net, acts_tr, layers=[last], mode="chain", betas=GRID, device="cpu", **kw)
        secs = time.perf_counter() - t0
        points = []
        for b in GRID:
            p = compile_program(rs, beta=b)
            point = {"beta": b, "literals": _literals_count(p), "held": _fidelity(p, acts_he, net),
                     "train": _fidelity(p, acts_tr, net)}
            _, margins, cls = evaluate(p, np.asarray(acts_he[p.input.tensor]))
            firing = (margins >= 0).sum(1)
            wrong = cls != predicted_class(net, acts_he)
            for key, sel in (("one", firing == 1), ("none", firing == 0), ("several", firing > 1)):
                point[key] = [int(sel.sum()), int((sel & wrong).sum())]
            points.append(point)
        out["runs"][name] = {"points": points, "seconds": secs}
        print(f"program {name}: " + ", ".join(f"{q['literals']}:{q['held']:.4f}" for q in points), flush=True)
    out["bounds"] = program_bounds(net, acts_tr, acts_he)
    out["per_class_best"] = {str(k): per_class_program(net, acts_tr, acts_he, k, pool)
                             for k, pool in ((3, 64), (4, 48), (5, 32))}
    return out


def per_class_program(net, acts_tr, acts_he, k: int, pool: int) -> dict:
    """The program whose class rules are each class's least-training-error rule of at most k literals (the exact
    search over the chain's literals, no validation share): what rules of that size can do, whatever the beta."""
    from mofn2logic.ir.program import AtomLiteral, InputTests, MofNRule, Program, RuleBlock

    layer = net.layers[-1]
    x_tr = np.asarray(acts_tr[layer.input])
    p_tr = predicted_class(net, acts_tr)
    chain = best_splits(x_tr, p_tr, layer.units)[0]  # the penultimate layer's head splits, as chain mode carries
    xt = np.ascontiguousarray(x_tr.T)
    be = make_backend("cpu")
    rules = []
    for j in range(layer.units):
        y = p_tr == j
        ins, ths, pos, m, _ = small_rule(xt, y, layer.weight[j], chain, 0, 0.0, pool, k, be, None)
        assert np.all(ths == chain[ins])
        rules.append(MofNRule(unit=j, m=int(m), lits=tuple(AtomLiteral(int(i), bool(p)) for i, p in zip(ins, pos))))
    tests = tuple((i, float(chain[i])) for i in range(len(chain)))
    prog = Program("", InputTests(layer.input, (len(chain),), False, tests),
                   (RuleBlock(layer.name, "dense", "", (layer.units,), tuple(rules)),))
    return {"literals": _literals_count(prog), "held": _fidelity(prog, acts_he, net), "pool": pool}


def program_bounds(net, acts_tr, acts_he) -> dict:
    """What the atoms allow: a multinomial logistic regression (any real weights, which an M-of-N
    program's +-1 weights and margin decision are a special case of) on the program's atoms."""
    import torch

    layer = net.layers[-1]
    x_tr, x_he = np.asarray(acts_tr[layer.input]), np.asarray(acts_he[layer.input])
    p_tr, p_he = predicted_class(net, acts_tr), predicted_class(net, acts_he)
    chain = best_splits(x_tr, p_tr, layer.units)[0]
    cuts, _ = layer_cuts(x_tr, 16)

    def probe(a_tr, a_he, wd):
        torch.manual_seed(0)
        a = torch.tensor(a_tr, dtype=torch.float32)
        lin = torch.nn.Linear(a.shape[1], layer.units)
        opt = torch.optim.LBFGS(lin.parameters(), max_iter=300, line_search_fn="strong_wolfe")
        target = torch.tensor(p_tr)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(lin(a), target) + wd * (lin.weight ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            return float((lin(torch.tensor(a_he, dtype=torch.float32)).argmax(1).numpy() == p_he).mean())

    many_tr = np.concatenate([x_tr[:, [i]] >= c[None, :] for i, c in enumerate(cuts)], 1)
    many_he = np.concatenate([x_he[:, [i]] >= c[None, :] for i, c in enumerate(cuts)], 1)
    return {"chain atoms (one threshold per unit)": max(probe(x_tr >= chain, x_he >= chain, wd) for wd in (1e-5, 1e-4, 1e-3)),
            "16 cuts per unit": max(probe(many_tr, many_he, wd) for wd in (1e-5, 1e-4, 1e-3)),
            "n_cut_atoms": int(many_tr.shape[1])}


# --------------------------------------------------------------------------- part 3: replicas per cut

def part_replicas(net, acts_tr, acts_he, order: str = "exact") -> dict:
    names = [la.name for la in net.layers]
    out: dict = {"order": order, "rows": []}
    for cut in names:
        for fit_on in ("network", "program"):
            if cut == names[-1] and fit_on == "program":
                continue  # nothing below the output layer to fit on
            t0 = time.perf_counter()
            rs = extract(net, acts_tr, layers=names[names.index(cut):], mode="chain", order=order, betas=(0.0,),
                         device="cpu", fit_on=fit_on)
            secs = time.perf_counter() - t0
            p = compile_program(rs, cut=cut, beta=0.0)
            row = {"cut": cut, "fit_on": fit_on, "literals": _literals_count(p), "held": _fidelity(p, acts_he, net),
                   "train": _fidelity(p, acts_tr, net), "seconds": secs}
            out["rows"].append(row)
            print(f"replica {row}", flush=True)
            _save("replicas", out)
    return out


# --------------------------------------------------------------------------- part 4: the demo model

def part_demo() -> dict:
    path, data = M.default_model_path(), M.default_data_path()
    with np.load(data) as z:
        x, test = z["images"], z["test"].astype(bool)
    net = M.import_network(path)
    acts_tr, acts_he = _acts(net, path, x[~test]), _acts(net, path, x[test])
    first, last = net.layers[0].name, net.layers[-1].name
    out: dict = {"rows": []}
    for order in ("weight", "exact", "best"):
        for fit_on in ("network", "program"):
            for cuts in ((16, 32) if order != "weight" else (16,)):
                t0 = time.perf_counter()
                rs = extract(net, acts_tr, mode="chain", order=order, betas=BETAS, device="cpu", fit_on=fit_on, cuts=cuts)
                secs = time.perf_counter() - t0
                full = compile_program(rs, cut=first, beta=0.0)
                row = {"order": order, "fit_on": fit_on, "cuts": cuts, "seconds": secs,
                       "full_literals": _literals_count(full), "full_held": _fidelity(full, acts_he, net),
                       "full_train": _fidelity(full, acts_tr, net),
                       "input_threshold": [float(t) for _, t in full.input.tests]}
                if fit_on == "network":
                    soft = compile_program(rs, cut=last, beta=0.0)
                    row.update(softmax_literals=_literals_count(soft), softmax_held=_fidelity(soft, acts_he, net))
                out["rows"].append(row)
                print(f"demo {row}", flush=True)
    return out


# --------------------------------------------------------------------------- RESULTS.md

def _save(part: str, data: dict) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / f"{part}.json").write_text(json.dumps(data, indent=1))


def _load(part: str) -> dict | None:
    f = CACHE / f"{part}.json"
    return json.loads(f.read_text()) if f.is_file() else None


def write_results() -> None:
    from results_md import render

    (HERE / "RESULTS.md").write_text(render({p: _load(p) for p in ("softmax", "timing", "program", "replicas", "demo")}),
                                     encoding="utf-8")
    print(f"wrote {HERE / 'RESULTS.md'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="softmax,timing,program,replicas,demo")
    ap.add_argument("--from-json", action="store_true", help="only rewrite RESULTS.md from the cached figures")
    args = ap.parse_args()
    if not args.from_json:
        parts = args.parts.split(",")
        if "demo" in parts:
            _save("demo", part_demo())
        if set(parts) & {"softmax", "timing", "program", "replicas"}:
            if not MODEL.is_file():
                raise SystemExit(f"{MODEL} not found: run benchmarks/train_mnist_cnn.py first")
            net, acts_tr, acts_he = _mnist()
            for part, fn in (("softmax", part_softmax), ("timing", part_timing), ("program", part_program),
                             ("replicas", part_replicas)):
                if part in parts:
                    _save(part, fn(net, acts_tr, acts_he))
    sys.path.insert(0, str(HERE))
    write_results()


if __name__ == "__main__":
    main()
