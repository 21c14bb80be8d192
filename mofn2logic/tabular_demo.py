"""The tabular example (`make demo-tabular`, `mofn2logic demo --tabular`): a scikit-learn MLP on the
breast cancer data scikit-learn ships (569 samples, 30 named features, malignant or benign),
exported with skl2onnx and explained from its inputs, every rule in the features' and classes' names.

Nothing is shipped: the data, the model and the split are made at run time from `SEED`. The MLP
is trained on standardized features, then the standardization is folded into its first layer
(W / std, b - (mean / std) W: the same probabilities), so the ONNX model reads the raw features
and the rules test them in their own units (``worst_radius >= 16.8``, millimetres). The CSV's
header names the features; the class names are the data set's ``target_names``. `run` fits the
rules on the MLP's training split and checks them on the held-out one, beside decision trees.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mofn2logic.errors import DataError

SEED = 0
HIDDEN = (6,)  # one small hidden layer: its units read the features, the classes read them
HOLDOUT = 0.25
# The program's beta: at beta 0 the rules are faithful but long (about a hundred literals); at 0.1 they are
# short enough to read, and no less faithful held out (README, "A tabular example").
BETA = 0.1
OPSET, IR_VERSION = 17, 8  # what onnxruntime of every supported version runs


@dataclass(frozen=True, slots=True)
class TabularInputs:
    model: Path  # the MLP as ONNX (probabilities, no ZipMap)
    data: Path  # CSV, header = feature names
    labels: Path  # .npy of the true classes
    classes: Path  # class names, one a line
    fit: np.ndarray  # bool mask: the MLP's (and the rules') training split
    accuracy_held_out: float  # the MLP's, on the rest


def build_inputs(folder: str | os.PathLike[str], *, seed: int = SEED, hidden: tuple[int, ...] = HIDDEN,
                 max_iter: int = 400) -> TabularInputs:
    """Train the MLP and write model.onnx, breast_cancer.csv, labels.npy and classes.txt into `folder`."""
    try:
        from skl2onnx import to_onnx
    except ImportError:
        raise DataError("the tabular example exports its MLP with skl2onnx, which is not installed; expected it "
                        "from `pip install -e '.[test]'` (what `make setup` runs)") from None
    from sklearn.datasets import load_breast_cancer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bc = load_breast_cancer()
    x, y = bc.data.astype(np.float64), bc.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    fit = np.zeros(len(x), dtype=bool)
    fit[rng.permutation(len(x))[: round(len(x) * (1 - HOLDOUT))]] = True
    mean, std = x[fit].mean(0), x[fit].std(0)
    clf = MLPClassifier(hidden_layer_sizes=hidden, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit((x[fit] - mean) / std, y[fit])
    w, b = clf.coefs_[0], clf.intercepts_[0]
    clf.coefs_[0] = w / std[:, None]  # the same first layer on the raw features
    clf.intercepts_[0] = b - (mean / std) @ w
    x32 = x.astype(np.float32)
    accuracy = float(np.mean(clf.predict(x32[~fit]) == y[~fit]))
    model = to_onnx(clf, x32[:1], target_opset={"": OPSET, "ai.onnx.ml": 1},
                    options={id(clf): {"zipmap": False}})
    model.ir_version = IR_VERSION
    out = TabularInputs(folder / "model.onnx", folder / "breast_cancer.csv", folder / "labels.npy",
                        folder / "classes.txt", fit, accuracy)
    out.model.write_bytes(model.SerializeToString())
    names = [str(n).replace(" ", "_") for n in bc.feature_names]
    # float32 values written in full (repr), so the CSV holds exactly what the model was checked on
    rows = [",".join(repr(float(v)) for v in row) for row in x32]
    out.data.write_text(",".join(names) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    np.save(out.labels, y)
    out.classes.write_text("".join(f"{c}\n" for c in bc.target_names), encoding="utf-8")
    return out


def run_tabular(outdir: str | os.PathLike[str], *, seed: int = SEED, hidden: tuple[int, ...] = HIDDEN,
                max_iter: int = 400, beta: float = BETA, log=None, **options):
    """Build the inputs, then `run` them into `outdir` (fit on the MLP's training split); the inputs are
    copied into OUTDIR/inputs/ so that the run can be repeated by hand. Returns (RunSummary, TabularInputs)."""
    from mofn2logic import api
    from mofn2logic.inputs import load_model, with_names

    with tempfile.TemporaryDirectory(prefix="mofn2logic-tabular-") as tmp:
        made = build_inputs(tmp, seed=seed, hidden=hidden, max_iter=max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the two-class head read as a softmax: said in the docs
            model = with_names(load_model(made.model), made.data, class_names=made.classes)
        summary = api.run(model, made.data, outdir, labels=made.labels, fit=made.fit, beta=beta, log=log,
                          **options)
        keep = Path(outdir) / "inputs"
        keep.mkdir(exist_ok=True)
        for p in (made.model, made.data, made.labels, made.classes):
            shutil.copyfile(p, keep / p.name)
    where = keep
    return summary, TabularInputs(where / made.model.name, where / made.data.name, where / made.labels.name,
                                  where / made.classes.name, made.fit, made.accuracy_held_out)


def tree_lines(summary) -> list[str]:
    """Per cut: the program's held-out fidelity and literals beside the decision tree grown to as many
    tests (the report's size/fidelity front)."""
    lines = []
    for c in summary.cuts:
        front = next((f for f in summary.fronts if f.cut == c.cut), None)
        trees = [t for t in front.trees if t.budget == c.literals] if front is not None else []
        tree = trees[0] if trees else None
        said = f"a decision tree of {tree.tests} tests: {tree.fidelity:.4f}" if tree is not None else "no tree"
        lines.append(f"== cut {c.cut}: program fidelity {c.fidelity:.4f} with {c.literals} literals; {said}")
    return lines


def rule_lines(outdir: str | os.PathLike[str], summary) -> list[str]:
    """The rules of the program cut at the inputs, as cards in the features' and classes' names."""
    from mofn2logic.exporters import load_program
    from mofn2logic.report.cards import card_text, rule_cards

    first = summary.cuts[0]
    program = load_program(Path(outdir) / first.program)
    lines = [f"== the rules from the inputs ({first.program}), in names (decision: the class whose rule is met best, "
             "(count - M) / N, wins; a tie goes to the first class):"]
    for card in rule_cards(program):
        lines += ["   " + line for line in card_text(card).split("\n")]
    return lines
