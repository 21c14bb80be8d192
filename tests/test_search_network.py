"""Whole-layer extraction: conv layers as convolutions, chain thresholds, rules.json, errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_models
import pytest
from plain_method import plain_search, plain_split

from mofn2logic import check_data, harvest, import_network
from mofn2logic.cli import main
from mofn2logic.errors import SearchError
from mofn2logic.search.network import extract, predicted_class, propagate_thresholds
from mofn2logic.search.rules_file import dumps, from_dict, read_rules

BETAS = (0.0, 0.2, 1.0)


@pytest.fixture(scope="module")
def convbn(model_zoo):
    path = model_zoo["convbn"]
    net = import_network(path)
    x = check_data(onnx_models.sample_input(onnx.load(str(path)), 40, seed=9), net.input_shape, net.dtype)
    return net, harvest(net, path, x)


def _plain_patches(x, layer):
    """Receptive fields by explicit loops: (sample, oy, ox) -> values in (c, ky, kx) order."""
    c = layer.conv
    e, cin, h, w = x.shape
    kh, kw = c.kernel
    oh = (h + c.pads[0] + c.pads[2] - c.dilations[0] * (kh - 1) - 1) // c.strides[0] + 1
    ow = (w + c.pads[1] + c.pads[3] - c.dilations[1] * (kw - 1) - 1) // c.strides[1] + 1
    rows, keys = [], []
    for s in range(e):
        for oy in range(oh):
            for ox in range(ow):
                vals = []
                for ch in range(cin):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = oy * c.strides[0] - c.pads[0] + ky * c.dilations[0]
                            ix = ox * c.strides[1] - c.pads[1] + kx * c.dilations[1]
                            vals.append(x[s, ch, iy, ix] if 0 <= iy < h and 0 <= ix < w else 0.0)
                rows.append(vals)
                keys.append((s, oy, ox))
    return np.array(rows, dtype=x.dtype), keys


def test_conv_layer_equals_plain_method(convbn):
    """conv2 (stride (2,1), dilation (1,2)) in chain mode, all positions, against the plain method."""
    net, acts = convbn
    rs = extract(net, acts, layers=["conv2"], betas=BETAS, device="cpu", conv_examples=10**6)
    conv1, conv2 = net.layers[0], net.layers[1]
    pred = predicted_class(net, acts)
    patches, keys = _plain_patches(np.asarray(acts[conv2.input]), conv2)
    out = np.asarray(acts[conv2.output])
    ppred = np.array([pred[s] for s, _, _ in keys])
    # chain mode: conv2's literals carry conv1's head split of their channel
    a1 = np.asarray(acts[conv1.output])
    head1 = [plain_split(a1[:, ch].reshape(-1), np.repeat(pred, a1.shape[2] * a1.shape[3]), 3) for ch in range(4)]
    lit_thr = np.array([head1[ch] for ch in range(4) for _ in range(9)], dtype=a1.dtype)
    layer = rs.layers[0]
    assert layer.n_examples == len(keys) and layer.conv_position == "all"
    for ch, unit in enumerate(layer.units):
        target = np.array([out[s, ch, oy, ox] for s, oy, ox in keys])
        head = plain_split(target, ppred, 3)
        assert unit.threshold == head
        ref, _ = plain_search(patches, lit_thr, conv2.weight[ch].reshape(-1), target >= head, BETAS)
        for rule, b in zip(unit.rules, BETAS):
            assert (rule.n, rule.m, rule.error, rule.complexity) == ref[b][:4]
            for li, k in zip(rule.literals, ref[b][4]):
                cin, ky, kx = np.unravel_index(k, (4, 3, 3))
                assert (li.input, li.offset) == (cin, (ky * 1 - 0, kx * 2 - 0))
                assert li.threshold == head1[cin]


def test_conv_subsampling_is_seeded(convbn):
    net, acts = convbn
    a = extract(net, acts, layers=["conv1"], betas=BETAS, device="cpu", conv_examples=500, seed=3)
    b = extract(net, acts, layers=["conv1"], betas=BETAS, device="cpu", conv_examples=500, seed=3)
    c = extract(net, acts, layers=["conv1"], betas=BETAS, device="cpu", conv_examples=500, seed=4)
    assert a.layers[0].n_examples == 500 and dumps(a) == dumps(b) and dumps(a) != dumps(c)


def test_best_position_option(convbn):
    net, acts = convbn
    rs = extract(net, acts, layers=["conv1"], betas=BETAS, device="cpu", conv_position="best")
    assert rs.layers[0].conv_position == "best" and rs.layers[0].n_examples == 40
    assert len(rs.layers[0].units) == 4


def test_chain_thresholds_through_maxpool_and_flatten(default_model, digits):
    net = import_network(default_model)
    x = check_data(digits["images"][:400], net.input_shape, net.dtype)
    acts = harvest(net, default_model, x)
    rs = extract(net, acts, betas=BETAS, device="cpu")
    conv2, dense = rs.layers[1], rs.layers[2]
    heads = np.array([u.threshold for u in conv2.units])
    # dense input k = (channel, y, x) of the pooled 16x4x4 tensor: its threshold is the channel's head
    for u in dense.units:
        for r in u.rules:
            for li in r.literals:
                assert li.threshold == heads[li.input // 16]
    per = propagate_thresholds(heads.astype(np.float32), (16, 8, 8), [s for s in net.sequence[2:4]])
    assert per.shape == (256,) and np.all(per.reshape(16, 16) == heads[:, None].astype(np.float32))
    assert rs.layers[3].units[0].threshold is None  # the output layer has no head split


def test_rules_json_schema_and_roundtrip(tmp_path, capsys, default_model, digits):
    np.save(tmp_path / "x.npy", digits["images"][:300])
    out = tmp_path / "rules.json"
    code = main(["extract", str(default_model), "--data", str(tmp_path / "x.npy"), "-o", str(out),
                 "--beta", "0,0.2", "--device", "cpu"])
    stdout = capsys.readouterr().out
    assert code == 0 and "layer node_linear_1 (dense, 10 units" in stdout and "mean error" in stdout
    d = json.loads(out.read_text())
    assert d["format"] == "mofn2logic-rules" and d["version"] == 2
    assert set(d["provenance"]) >= {"package", "version", "model_sha256", "data_sha256", "options"}
    rs = read_rules(out)  # the schema itself: tests/test_search_rules_file.py
    assert [la.name for la in rs.layers] == ["node_conv2d", "node_conv2d_1", "node_linear", "node_linear_1"]
    for la in rs.layers:
        for u in la.units:
            assert [r.beta for r in u.rules] == [0.0, 0.2]
            for r in u.rules:
                assert len(r.literals) == r.n
                assert all((li.offset is not None) == (la.kind == "conv") for li in r.literals)
            cx = [f.complexity for f in u.front]
            err = [f.error for f in u.front]
            assert cx == sorted(cx) and err == sorted(err, reverse=True)
    assert rs.layers[-1].units[0].threshold is None
    assert dumps(read_rules(out)) == out.read_text()
    # deterministic: the same inputs give the same bytes
    out2 = tmp_path / "rules2.json"
    main(["extract", str(default_model), "--data", str(tmp_path / "x.npy"), "-o", str(out2), "--beta", "0,0.2",
          "--device", "cpu"])
    assert out.read_bytes() == out2.read_bytes()


def test_torch_backend_gives_identical_rules(default_model, digits):
    net = import_network(default_model)
    x = check_data(digits["images"][:300], net.input_shape, net.dtype)
    acts = harvest(net, default_model, x)
    a = extract(net, acts, betas=BETAS, device="cpu", order="best")
    b = extract(net, acts, betas=BETAS, device="torch", order="best", memory_budget=1 << 20)
    assert [la.units for la in a.layers] == [la.units for la in b.layers]


def test_float64_model_searched_in_float64(model_zoo):
    path = model_zoo["gemm64"]
    net = import_network(path)
    x = check_data(onnx_models.sample_input(onnx.load(str(path)), 80), net.input_shape, net.dtype)
    acts = harvest(net, path, x)
    assert acts[net.layers[0].input].dtype == np.float64
    rs = extract(net, acts, betas=BETAS, device="cpu", mode="paper")
    thr = [li.threshold for u in rs.layers[0].units for r in u.rules for li in r.literals]
    assert thr and any(float(np.float32(t)) != t for t in thr)  # float64 thresholds, not float32 ones


def test_errors(convbn, tmp_path, capsys, default_model, digits):
    net, acts = convbn
    with pytest.raises(SearchError, match=r"unknown layer 'nope'; the model has 'conv1', 'conv2', 'fc'"):
        extract(net, acts, layers=["nope"])
    with pytest.raises(SearchError, match=r"beta '-1' is not a non-negative number"):
        extract(net, acts, betas=["-1"])
    one = dict(acts)
    one[net.output] = np.tile(np.array([[0.1, 0.8, 0.1]], np.float32), (40, 1))
    with pytest.raises(SearchError, match=r"all 40 samples are predicted as class 1"):
        extract(net, one)
    np.save(tmp_path / "x.npy", digits["images"][:50])
    for args, pattern in [
        (["--layers", "fc9"], r"unknown layer 'fc9'"),
        (["--beta", "0,abc"], r"beta 'abc' is not a non-negative number"),
        (["--beta", "-0.5"], r"beta '-0.5' is not a non-negative number"),
    ]:
        out = tmp_path / "r.json"
        code = main(["extract", str(default_model), "--data", str(tmp_path / "x.npy"), "-o", str(out), *args])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and __import__("re").search(pattern, err), err
        assert not out.exists()


def test_single_input_layer_is_refused(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], transB=1, name="narrow"),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2"], ["g"], transB=1, name="out"),
             helper.make_node("Softmax", ["g"], ["y"], axis=1)]
    inits = [numpy_helper.from_array(np.array([[1.0], [-1.0]], np.float32), "w1"),
             numpy_helper.from_array(np.array([[1.0, 0.0], [0.0, 1.0]], np.float32), "w2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], initializer=inits)
    path = onnx_models.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "n.onnx")
    net = import_network(path)
    x = np.linspace(-1, 1, 20, dtype=np.float32)[:, None]
    acts = harvest(net, path, x)
    with pytest.raises(SearchError, match=r"layer 'narrow' has 1 input: the complexity measure .* undefined"):
        extract(net, acts, betas=BETAS)
    assert extract(net, acts, layers=["out"], betas=BETAS).layers[0].name == "out"


def test_memory_budget_chunks_not_crashes(convbn):
    net, acts = convbn
    a = extract(net, acts, betas=BETAS, device="cpu")
    b = extract(net, acts, betas=BETAS, device="cpu", memory_budget=2048)
    assert dumps(a) == dumps(b)


def test_from_dict_rejects_other_formats():
    from mofn2logic.errors import ProgramError

    with pytest.raises(ProgramError, match="not a mofn2logic rule set"):
        from_dict({"format": "x"})


# --------------------------------------------------------------------------- exact search, fitting on the program

def _unpruned_program(rs, beta):
    """compile_program without folding or pruning: every unit keeps its rule."""
    from mofn2logic.ir.program import Program
    from mofn2logic.program.compile import _steps, input_tests, rule_block

    blocks: list = []
    source = ""
    for k, la in enumerate(rs.layers):
        if k > 0:
            source = _steps(la, rs.layers[k - 1], source, blocks)
        blocks.append(rule_block(la, beta, source))
    return Program("", input_tests(rs.layers[0], beta), tuple(blocks))


@pytest.fixture(scope="module")
def digits_acts(default_model, digits):
    net = import_network(default_model)
    x = check_data(digits["images"][:300], net.input_shape, net.dtype)
    return net, harvest(net, default_model, x)


def test_fit_on_program_fits_each_layer_on_the_atoms_below(digits_acts):
    """A dense layer fitted on the program's atoms: its rules' recorded errors are exactly the rate at which
    the program's own atoms (compiled without folding or pruning) disagree with the layer's targets."""
    from mofn2logic.engines.numpy_engine import evaluate
    from mofn2logic.program.compile import compile_program

    net, acts = digits_acts
    rs = extract(net, acts, betas=(0.0, 0.2), device="cpu", order="exact", fit_on="program")
    assert [la.fit_on for la in rs.layers] == ["network", "program", "program", "program"]
    plain = extract(net, acts, betas=(0.0, 0.2), device="cpu", order="exact")
    assert rs.layers[0] == plain.layers[0] and all(la.fit_on == "network" for la in plain.layers)
    assert plain == extract(net, acts, betas=(0.0, 0.2), device="cpu", order="exact", fit_on="network")
    atoms = evaluate(_unpruned_program(rs, 0.0), np.asarray(acts[rs.layers[0].input_tensor]))[0]
    pred = predicted_class(net, acts)
    for la in rs.layers[2:]:
        out = np.asarray(acts[la.output_tensor])
        for u in la.units:
            truth = (pred == u.unit) if u.threshold is None else out[:, u.unit] >= np.float32(u.threshold)
            assert u.rule(0.0).error == pytest.approx(np.mean(atoms[la.name][:, u.unit] != truth), abs=1e-12)
    # literals record the chain's thresholds, so the program compiles as any chain-mode rule set
    for prev, la in zip(rs.layers, rs.layers[1:]):
        heads = {u.unit: u.threshold for u in prev.units}
        for u in la.units:
            for li in u.rule(0.0).literals:
                if la.kind == "conv":
                    assert li.threshold == heads[li.input]
    compile_program(rs, beta=0.2)


def test_fit_on_program_restarts_where_the_chain_does(digits_acts):
    net, acts = digits_acts
    names = [la.name for la in net.layers]
    rs = extract(net, acts, layers=[names[0], names[2], names[3]], betas=(0.0,), device="cpu", fit_on="program")
    assert [la.fit_on for la in rs.layers] == ["network", "network", "program"]


def test_exact_chain_rules_compile_and_paper_rules_use_cuts(digits_acts):
    from mofn2logic.program.compile import compile_program

    net, acts = digits_acts
    chain = extract(net, acts, betas=BETAS, device="cpu", order="exact")
    compile_program(chain, beta=0.0)  # one threshold per input: the program's input tests accept it
    paper = extract(net, acts, layers=[net.layers[-1].name], mode="paper", betas=BETAS, device="cpu", order="exact")
    thresholds = {li.threshold for u in paper.layers[0].units for r in u.rules for li in r.literals}
    assert len(thresholds) > 128 / 4  # free thresholds: more than the paper's one split per (input, target)
    assert {r.method for u in paper.layers[0].units for r in u.rules} <= {"weight", "exact", "local"}


def test_target_input_splits_choose_for_the_layers_targets():
    from mofn2logic.ir.network import Layer
    from mofn2logic.search.network import Examples, target_input_splits

    rng = np.random.default_rng(0)
    x = rng.integers(0, 11, size=(400, 3)).astype(np.float32)
    targets = np.stack([x[:, 0] >= 7, x[:, 1] >= 3], 1)
    layer = Layer(name="fc", kind="dense", weight=np.ones((2, 3), np.float32), bias=np.zeros(2, np.float32),
                  activation="relu", input="x", preact="p", output="y", input_shape=(3,), output_shape=(2,))
    got = target_input_splits(layer, Examples(x, targets, np.zeros(400, np.int64)), targets,
                              np.full(3, 9.5, np.float32), 16)
    assert got[0] == np.float32(6.5) and got[1] == np.float32(2.5)
    assert got.dtype == np.float32


def test_exact_options_errors(digits_acts):
    net, acts = digits_acts
    with pytest.raises(SearchError, match="fit-on 'program' needs chain mode"):
        extract(net, acts, mode="paper", fit_on="program")
    with pytest.raises(SearchError, match="fit-on 'atoms' is unknown; expected one of network, program"):
        extract(net, acts, fit_on="atoms")
    with pytest.raises(SearchError, match=r"cuts must be in 0\.\.254.*got 300"):
        extract(net, acts, order="exact", cuts=300)
    with pytest.raises(SearchError, match=r"would score 66,018,450 subsets per unit; expected at most 2,000,000"):
        extract(net, acts, order="exact", small_n=4, exact_pool=200)
