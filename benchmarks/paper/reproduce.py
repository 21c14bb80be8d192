"""Reproduce the paper's experiments (Odense & d'Avila Garcez 2020) on MNIST and write RESULTS.md.

    .venv/bin/python benchmarks/paper/reproduce.py [--fit 2000] [--epochs 3]

Data: the 10,000 MNIST test images in ../shared/data/mnist, split 8,000 train / 2,000 held out
(seed 0). Models, trained on the 8,000 (seeded, CPU) and exported to ONNX (torch dynamo):
the Keras example CNN (Conv32-Conv64-MaxPool-Dropout-Dense128-Dropout-Dense10) with ReLU and
with tanh, an MLP 784-256-128-10, and an autoencoder-based classifier (encoder 784-256-128
trained for reconstruction, then a softmax layer on the code). Rules are fitted on `--fit`
training images; every figure is measured on the 2,000 held-out images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mnist import load_mnist  # noqa: E402

sys.path.insert(0, str(HERE))
from train_mnist_cnn import accuracy, export, keras_cnn, train  # noqa: E402

import mofn2logic as M  # noqa: E402
from mofn2logic.engines.numpy_engine import evaluate as run_program  # noqa: E402
from mofn2logic.program.compile import compile_program  # noqa: E402
from mofn2logic.search.layer import small_candidates  # noqa: E402
from mofn2logic.search.network import extract, predicted_class, summarize  # noqa: E402
from mofn2logic.search.splits import binary_splits_per_target, literal_gain  # noqa: E402
from mofn2logic.search.unit import weight_order  # noqa: E402

BETAS = (0.0, 0.1, 0.2, 1.0, 5.0, 1000.0)


class AutoencoderClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 784), nn.Sigmoid())
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def train_autoencoder(net: AutoencoderClassifier, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    torch.manual_seed(0)
    xt = torch.from_numpy(x)
    opt = torch.optim.Adam([*net.encoder.parameters(), *net.decoder.parameters()], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs * 2):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            batch = xt[idx]
            nn.functional.mse_loss(net.decoder(net.encoder(batch)), batch.reshape(len(batch), -1)).backward()
            opt.step()
    for p in net.encoder.parameters():
        p.requires_grad_(False)
    head = nn.Sequential(net.encoder, net.head)
    opt = torch.optim.Adam(net.head.parameters(), lr=1e-3)
    yt = torch.from_numpy(y)
    for _ in range(epochs * 2):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(head(xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval()


def build_models(x, y, held, epochs: int, work: Path) -> dict[str, tuple[Path, float, float]]:
    torch.set_num_threads(2)
    out = {}
    specs = {
        "keras_cnn_relu": lambda: keras_cnn(nn.ReLU),
        "keras_cnn_tanh": lambda: keras_cnn(nn.Tanh),
        "mlp_784_256_128_10": lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                                                    nn.ReLU(), nn.Linear(128, 10)),
        "autoencoder_classifier": AutoencoderClassifier,
    }
    for name, make in specs.items():
        torch.manual_seed(0)
        net = make()
        t0 = time.perf_counter()
        if isinstance(net, AutoencoderClassifier):
            train_autoencoder(net, x[~held], y[~held], epochs)
        else:
            train(net, x[~held], y[~held], epochs)
        secs = time.perf_counter() - t0
        path = work / f"{name}.onnx"
        export(net, x, path)
        out[name] = (path, accuracy(net, x[held], y[held]), secs)
        print(f"{name}: held-out accuracy {out[name][1]:.4f}, trained in {secs:.0f} s", flush=True)
    return out


def prefix_rules(lits_tr, y_tr, order, max_n):
    """(N, M, train error) of every "M of the first N" rule of `order`, N <= max_n."""
    rows = []
    counts = np.zeros(len(y_tr), np.int64)
    for big_n in range(0, min(max_n, len(order)) + 1):
        if big_n:
            counts += lits_tr[:, order[big_n - 1]]
        for m in range(big_n + 2):
            rows.append((big_n, m, float(np.mean((counts >= m) != y_tr))))
    return rows


def held_error(lits_he, y_he, literals, m):
    c = lits_he[:, list(literals)].sum(1) if len(literals) else np.zeros(len(y_he))
    return float(np.mean((c >= m) != y_he))


def softmax_analysis(net, acts_tr, acts_he) -> list[dict]:
    """Per class of the softmax layer (paper mode): the smallest rule reaching 99 % agreement on the
    training split, and the best rule of <= 3 literals, for each search; agreement on held-out data."""
    layer = net.layers[-1]
    pred_tr, pred_he = predicted_class(net, acts_tr), predicted_class(net, acts_he)
    x_tr, x_he = np.asarray(acts_tr[layer.input]), np.asarray(acts_he[layer.input])
    targets_tr = pred_tr[:, None] == np.arange(layer.units)[None, :]
    thr = binary_splits_per_target(x_tr, targets_tr)
    rows = []
    for j in range(layer.units):
        w = layer.weight[j]
        neg = w < 0
        lits_tr = ((x_tr >= thr[j]) ^ neg).astype(np.int64)
        lits_he = ((x_he >= thr[j]) ^ neg).astype(np.int64)
        y_tr, y_he = pred_tr == j, pred_he == j
        gains = literal_gain(lits_tr.T.astype(bool), y_tr)
        row = {"class": j}
        for search, order in (("weight", weight_order(w)), ("gain", weight_order(w, gains))):
            cands = prefix_rules(lits_tr, y_tr, order, len(order))
            small = [c for c in cands if c[0] <= 3]
            b3 = min(small, key=lambda c: (c[2], c[0], c[1]))
            ok = [c for c in cands if c[2] <= 0.01]
            smallest = min(ok, key=lambda c: (c[0], c[2], c[1])) if ok else None
            row[search] = {
                "best3": (b3[0], b3[1], 1 - held_error(lits_he, y_he, order[: b3[0]], b3[1])),
                "smallest99": None if smallest is None else
                (smallest[0], smallest[1], 1 - held_error(lits_he, y_he, order[: smallest[0]], smallest[1])),
            }
        nz = np.flatnonzero(w != 0)
        pool = nz[np.argsort(-gains[nz], kind="stable")][:16]
        cands, subsets = small_candidates(lits_tr.astype(bool), y_tr, pool, 3, layer.fan_in)
        i = int(np.lexsort((cands.m, cands.n, cands.errors))[0])
        lits = subsets[i]
        row["exact3"] = {"best3": (int(cands.n[i]), int(cands.m[i]), 1 - held_error(lits_he, y_he, lits, int(cands.m[i])))}
        rows.append(row)
    return rows


def cut_table(net, rules_chain, acts_he) -> list[tuple[str, float, int]]:
    pred = predicted_class(net, acts_he)
    out = []
    for la in rules_chain.layers:
        p = compile_program(rules_chain, cut=la.name, beta=0.0)
        _, _, cls = run_program(p, np.asarray(acts_he[p.input.tensor]))
        out.append((la.name, float(np.mean(cls == pred)), sum(r.n for b in p.rule_blocks() for r in b.rules)))
    return out


def tradeoff_md(rows: list[dict]) -> list[str]:
    lines = ["| layer | β | mean error | mean complexity | mean N | units with error ≤ 1 % |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['beta']:g} | {r['mean_error']:.4f} | {r['mean_complexity']:.4f} | "
                     f"{r['mean_n']:.1f} | {r['share_error_le_1pct']:.0%} |")
    return lines


def heldout_tradeoff(net, rs, acts_he) -> list[dict]:
    """The trade-off table with each rule's error measured on held-out data (chain mode rules)."""
    from mofn2logic.engines.numpy_engine import conv_atoms, dense_atoms
    from mofn2logic.ir.program import InputTests, Program
    from mofn2logic.program.compile import rule_block  # the same rules, evaluated like a one-layer program

    pred = predicted_class(net, acts_he)
    rows = []
    for la in rs.layers:
        layer = net.layer(la.name)
        act = np.asarray(acts_he[layer.output])
        x = np.asarray(acts_he[layer.input])
        for b in rs.betas:
            block = rule_block(la, b, "")
            tests = {}
            for u in la.units:
                for li in u.rule(b).literals:
                    tests[li.input] = li.threshold
            prog = Program("", InputTests(la.input_tensor, tuple(x.shape[1:]), la.kind == "conv",
                                          tuple(sorted(tests.items()))), (block,))
            from mofn2logic.engines.numpy_engine import input_atoms

            src = input_atoms(prog, x)
            got = conv_atoms(prog, src, block) if la.kind == "conv" else dense_atoms(src.reshape(len(x), -1), block)[0]
            errs = []
            for u, r in zip(la.units, block.rules):
                truth = (pred == r.unit) if u.threshold is None else act[:, r.unit] >= u.threshold
                errs.append(float(np.mean(got[:, r.unit] != truth)))
            rules = [u.rule(b) for u in la.units]
            rows.append({"layer": la.name, "beta": b, "mean_error": float(np.mean(errs)),
                         "mean_complexity": float(np.mean([r.complexity for r in rules])),
                         "mean_n": float(np.mean([r.n for r in rules])),
                         "share_error_le_1pct": float(np.mean(np.array(errs) <= 0.01))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fit", type=int, default=2000, help="training images the rules are fitted on")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=HERE / "_work")
    ap.add_argument("--from-json", action="store_true", help="only rewrite RESULTS.md from _work/results.json")
    args = ap.parse_args()
    if args.from_json:
        saved = json.loads((args.work / "results.json").read_text())
        write_results(saved["results"], args, saved["total_s"], saved.get("backend", "numpy"))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    x, y, held = load_mnist()
    models = build_models(x, y, held, args.epochs, args.work)
    fit_idx = np.flatnonzero(~held)[: args.fit]
    results = {}
    for name, (path, acc, train_s) in models.items():
        net = M.import_network(path)
        acts_tr = M.harvest(net, path, M.check_data(x[fit_idx], net.input_shape, net.dtype))
        acts_he = M.harvest(net, path, M.check_data(x[held], net.input_shape, net.dtype))
        t0 = time.perf_counter()
        paper = extract(net, acts_tr, mode="paper", order="weight", betas=BETAS, device="cpu")
        t_paper = time.perf_counter() - t0
        t0 = time.perf_counter()
        chain = extract(net, acts_tr, mode="chain", order="weight", betas=BETAS, device="cpu")
        t_chain = time.perf_counter() - t0
        t0 = time.perf_counter()
        last = net.layers[-1].name
        chain_best = extract(net, acts_tr, layers=[last], mode="chain", order="best", betas=BETAS, device="cpu")
        t_best = time.perf_counter() - t0
        results[name] = {
            "accuracy": acc, "train_s": train_s, "t_paper": t_paper, "t_chain": t_chain, "t_best": t_best,
            "paper_train": summarize(paper), "chain_held": heldout_tradeoff(net, chain, acts_he),
            "cuts": cut_table(net, chain, acts_he),
            "softmax_best_cut": cut_table(net, chain_best, acts_he)[-1],
            "softmax": softmax_analysis(net, acts_tr, acts_he),
        }
        print(f"{name}: paper {t_paper:.0f} s, chain {t_chain:.0f} s, best(softmax) {t_best:.0f} s", flush=True)
    total = time.perf_counter() - t_all
    from mofn2logic.search.backends import make_backend

    backend = make_backend("cpu").name
    (args.work / "results.json").write_text(json.dumps({"results": results, "total_s": total, "backend": backend},
                                                       indent=1, default=float))
    write_results(results, args, total, backend)


def _findings(results: dict) -> list[str]:
    L = ["## Findings at a glance", "",
         "| model | accuracy | softmax-layer program: fidelity (literals) | with `--order best` "
         "| full replica: fidelity (literals) "
         "| inner layers, mean held-out error at β=0.2 | softmax layer, same | classes with a ≤3-literal rule at ≥99 % "
         "(weight / gain / exact) |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        cuts = r["cuts"]
        soft, full, best = cuts[-1], cuts[0], r["softmax_best_cut"]
        inner = [row["mean_error"] for row in r["chain_held"] if row["beta"] == 0.2 and row["layer"] != soft[0]]
        last = [row["mean_error"] for row in r["chain_held"] if row["beta"] == 0.2 and row["layer"] == soft[0]]
        counts = [sum(row[k]["best3"][2] >= 0.99 for row in r["softmax"]) for k in ("weight", "gain", "exact3")]
        L.append(f"| {name} | {r['accuracy']:.4f} | {soft[1]:.4f} ({soft[2]}) | {best[1]:.4f} ({best[2]}) | "
                 f"{full[1]:.4f} ({full[2]}) | {np.mean(inner):.4f} | {last[0]:.4f} | {' / '.join(map(str, counts))} |")
    soft_fid = [r["cuts"][-1][1] for r in results.values()]
    soft_lit = [r["cuts"][-1][2] for r in results.values()]
    full_fid = [r["cuts"][0][1] for r in results.values()]
    lowest = sum(
        min((row["mean_error"], row["layer"]) for row in r["chain_held"] if row["beta"] == 0.2)[1] == r["cuts"][-1][0]
        for r in results.values())
    best3 = {k: max(sum(row[k]["best3"][2] >= 0.99 for row in r["softmax"]) for r in results.values())
             for k in ("weight", "gain", "exact3")}
    L += ["",
          f"On this run: the softmax layer has the lowest mean held-out error at β = 0.2 in {lowest} of {len(results)} "
          f"models; a program over the penultimate layer alone matches the network on {min(soft_fid):.1%} to "
          f"{max(soft_fid):.1%} of held-out images with {min(soft_lit)} to {max(soft_lit)} literals, and full replicas "
          f"from the input reach {min(full_fid):.1%} to {max(full_fid):.1%} with tens to hundreds of thousands of "
          "literals. The paper's *as few as 3 of 128 units at over 99 %* holds here for at most "
          f"{best3['exact3']} of 10 classes with the exact ≤3-literal search, {best3['gain']} with the gain ordering "
          f"and {best3['weight']} with the paper's |w| prefix (always answering *false* already scores about 90 %).",
          ""]
    return L


def _issue10_block() -> list[str]:
    """The block benchmarks/paper/front.py writes into RESULTS.md (issue 10's figures), kept as it is."""
    from front import BEGIN, END

    path = HERE / "RESULTS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN not in text or END not in text:
        return []
    return [text[text.index(BEGIN): text.index(END) + len(END)], ""]


def write_results(results: dict, args, total_s: float, backend: str = "numpy") -> None:
    L = ["# Reproducing Odense & d'Avila Garcez (2020) on MNIST", "",
         "Generated by `benchmarks/paper/reproduce.py` "
         f"(`--fit {args.fit} --epochs {args.epochs}`), on the 2-core development machine, in {total_s / 60:.1f} min.",
         "Data: the MNIST test set in ../shared/data/mnist, split 8,000 train / 2,000 held out (seed 0). Models trained",
         f"on the 8,000; rules fitted on {args.fit} training images; every figure below on the 2,000 held-out images",
         "unless marked *train*.", f"Search backend for the timings: `{backend}` (`--device cpu` at the time of the run).", "",
         *_findings(results), *_issue10_block(),
         "## The paper's claims, and what we measure", "",
         "1. *A layerwise search finds rules close to the optimal trade-off*: see `mofn2logic optimality` and",
         "   `tests/test_search_layer.py` (exhaustive optimum on small layers); on the 8x8-digits demo CNN's first layer",
         "   (fan-in 9) the weight ordering reaches the optimum for 79 % of (unit, beta) pairs, `best` for 96 %.",
         "2. *Internal layers are often not explainable with satisfactory complexity and accuracy*: the per-layer",
         "   tables below (error at low complexity) and the cut tables (fidelity of programs cut at inner layers).",
         "3. *The softmax layer is highly explainable: as few as 3 of 128 units at over 99 % accuracy*: the",
         "   per-class tables below, with the caveat from METHOD.md that always answering *false* scores 90 %.", ""]
    for name, r in results.items():
        L += [f"## {name}", "", f"Network held-out accuracy {r['accuracy']:.4f} (trained in {r['train_s']:.0f} s). "
              f"Extraction times: paper mode {r['t_paper']:.0f} s, chain mode {r['t_chain']:.0f} s, "
              f"softmax layer with `--order best` {r['t_best']:.0f} s.", "",
              "### Trade-off per layer, paper mode, weight ordering (*train*: the paper's setting)", ""]
        L += tradeoff_md(r["paper_train"])
        L += ["", "### Trade-off per layer, chain mode, weight ordering, errors on held-out data", ""]
        L += tradeoff_md(r["chain_held"])
        L += ["", "### Cut table: programs (chain mode, β = 0) from a layer to the output, held-out class fidelity", "",
              "| cut at | fidelity | literals |", "|---|---|---|"]
        L += [f"| {c} | {f:.4f} | {n} |" for c, f, n in r["cuts"]]
        c, f, n = r["softmax_best_cut"]
        L += [f"| {c} (`--order best`) | {f:.4f} | {n} |", "",
              "### Softmax layer, per class: agreement with the network's one-hot argmax on held-out data", "",
              "Rules fitted on *train* in paper mode. *smallest ≥99 %*: the rule with the fewest literals whose "
              "*train* agreement is ≥ 99 %, as (N, M) and its held-out agreement. *best ≤3*: the rule of at most 3 "
              "literals with the best *train* agreement. Orderings: the paper's |w| (`weight`), the literals' own "
              "information gain (`gain`), and the exact search over all subsets of ≤ 3 of the 16 best literals.", "",
              "| class | weight: smallest ≥99 % | weight: best ≤3 | gain: smallest ≥99 % | gain: best ≤3 | exact: best ≤3 |",
              "|---|---|---|---|---|---|"]

        def cell(v):
            if v is None:
                return "none"
            rule = "always false" if v[1] > v[0] else ("always true" if v[1] == 0 else f"{v[1]} of {v[0]}")
            return f"{rule}: {v[2]:.2%}"

        counts = {"weight": 0, "gain": 0, "exact3": 0}
        for row in r["softmax"]:
            L.append(f"| {row['class']} | {cell(row['weight']['smallest99'])} | {cell(row['weight']['best3'])} | "
                     f"{cell(row['gain']['smallest99'])} | {cell(row['gain']['best3'])} | {cell(row['exact3']['best3'])} |")
            for k in counts:
                counts[k] += row[k]["best3"][2] >= 0.99
        L += ["", f"Classes with a rule of ≤ 3 literals at ≥ 99 % held-out agreement: weight ordering {counts['weight']}, "
              f"gain ordering {counts['gain']}, exact search {counts['exact3']} (of 10).", ""]
    L += ["## Commands", "", "```sh", f".venv/bin/python benchmarks/paper/reproduce.py --fit {args.fit} --epochs {args.epochs}",
          "```", ""]
    (HERE / "RESULTS.md").write_text("\n".join(L), encoding="utf-8")
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
