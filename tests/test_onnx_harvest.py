from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_models
import pytest
from onnx.reference import ReferenceEvaluator

from mofn2logic import check_data, harvest, import_network
from mofn2logic.onnx.harvest import parse_size, select_providers


@pytest.mark.parametrize("kind", ["tf2onnx", "cntk", "gemm32", "gemm64", "convbn", "torch_mlp_dynamo",
                                  "torch_mlp_legacy", "torch_cnn_dynamo", "torch_cnn_legacy", "external"])
def test_activations_equal_reference_evaluator(model_zoo, kind):
    model = onnx.load(str(model_zoo[kind]))
    net = import_network(model_zoo[kind])
    x = check_data(onnx_models.sample_input(model, 37, seed=3), net.input_shape, net.dtype)
    acts = harvest(net, model_zoo[kind], x, batch_size=8 if x.shape[0] > 1 else 1)
    ref = ReferenceEvaluator(model).run(None, {net.input: x}, intermediate=True)
    assert set(acts) == {*net.boundary_tensors(), net.output}
    for name, value in acts.items():
        assert value.dtype == net.dtype, name
        np.testing.assert_allclose(value, np.asarray(ref[name]), atol=1e-5, rtol=0, err_msg=name)


def test_disk_store_equals_memory(default_model, digits, tmp_path):
    net = import_network(default_model)
    x = check_data(digits["images"][:300], net.input_shape, net.dtype)
    mem = harvest(net, default_model, x, batch_size=64)
    disk = harvest(net, default_model, x, batch_size=64, memory_budget=1024, store_dir=tmp_path)
    assert mem.directory is None and disk.directory == tmp_path
    assert json.loads((tmp_path / "index.json").read_text()) == list(disk)
    for name in mem:
        assert isinstance(disk[name], np.memmap)
        np.testing.assert_array_equal(mem[name], disk[name])


def test_disk_store_is_read_only_npy_files_and_gives_the_same_conv_examples(default_model, digits, tmp_path,
                                                                            monkeypatch):
    from mofn2logic.search import conv_examples

    net = import_network(default_model)
    x = check_data(digits["images"][:300], net.input_shape, net.dtype)
    mem = harvest(net, default_model, x, batch_size=64)
    disk = harvest(net, default_model, x, batch_size=50, memory_budget=1024, store_dir=tmp_path)
    for k, name in enumerate(disk):
        assert not disk[name].flags.writeable
        np.testing.assert_array_equal(np.load(tmp_path / f"{k:04d}.npy"), mem[name])  # a whole .npy file
    # Read a block of 7 samples at a time: the examples are those gathered from the arrays in memory.
    conv = net.layers[1]
    monkeypatch.setattr(conv_examples, "SAMPLE_BLOCK_BYTES", 7 * mem[conv.output][:1].nbytes)
    blocks = list(conv_examples._sample_blocks(disk[conv.output], np.arange(300)))
    assert len(blocks) == 43 and all(isinstance(b, np.ndarray) and not isinstance(b, np.memmap) for b, _, _ in blocks)
    for budget in (500, 10**6):
        want = conv_examples.sample_examples(mem[conv.input], mem[conv.output], conv, budget, seed=5)
        got = conv_examples.sample_examples(disk[conv.input], disk[conv.output], conv, budget, seed=5)
        for field in ("sample", "oy", "ox", "patches", "targets"):
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)


def test_fixed_batch_model_pads_the_last_batch(model_zoo):
    net = import_network(model_zoo["cntk"])  # input shape [1, 2, 6, 6]: batch fixed to 1
    model = onnx.load(str(model_zoo["cntk"]))
    x = onnx_models.sample_input(model, 1)
    x = np.concatenate([x, x * 2, x * 3])
    acts = harvest(net, model_zoo["cntk"], check_data(x, net.input_shape, net.dtype))
    assert acts[net.output].shape == (3, 6)
    assert not np.allclose(acts[net.output][0], acts[net.output][2])


def test_providers_fall_back_to_what_is_available():
    import onnxruntime as ort

    chosen = select_providers()
    assert chosen and all(p in ort.get_available_providers() for p in chosen)
    assert select_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_parse_size():
    assert parse_size("512M") == 512 * 1024**2 and parse_size("2G") == 2 * 1024**3 and parse_size("100") == 100


def test_float64_conv_is_refused_clearly(tmp_path):
    """onnxruntime's CPU build has no float64 Conv kernel: a clear error, not a crash."""
    from onnx import TensorProto, helper, numpy_helper

    from mofn2logic.errors import UnsupportedModelError

    r = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "k"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["g"], transB=1), helper.make_node("Softmax", ["g"], ["y"], axis=1)]
    inits = [numpy_helper.from_array(r.normal(size=(2, 1, 3, 3)), "k"), numpy_helper.from_array(r.normal(size=(3, 32)), "w")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 3])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_models.OPSET)])
    model.ir_version = onnx_models.IR_VERSION  # pinned: the installed onnx's default may be newer than onnxruntime's
    path = onnx_models.save(model, tmp_path / "c64.onnx")
    net = import_network(path)
    assert net.dtype == np.float64 and net.layers[0].weight.dtype == np.float64
    with pytest.raises(UnsupportedModelError, match=r"onnxruntime cannot run this model: .*Conv"):
        harvest(net, path, check_data(r.normal(size=(4, 1, 4, 4)), net.input_shape, net.dtype))


@pytest.mark.parametrize("kind", ["convbn", "torch_cnn_dynamo", "gemm32"])
def test_without_preactivations_the_rest_is_unchanged(model_zoo, kind):
    """preactivations=False leaves out exactly the pre-activations that are no layer's input or output;
    every other tensor equals the full harvest's, bit for bit (onnxruntime may then fuse a layer with
    its activation)."""
    model = onnx.load(str(model_zoo[kind]))
    net = import_network(model_zoo[kind])
    x = check_data(onnx_models.sample_input(model, 21, seed=5), net.input_shape, net.dtype)
    full = harvest(net, model_zoo[kind], x, batch_size=8)
    lean = harvest(net, model_zoo[kind], x, batch_size=8, preactivations=False)
    kept = {t for la in net.layers for t in (la.input, la.output)} | {net.output}
    assert set(lean) == kept and set(full) - set(lean) == {la.preact for la in net.layers} - kept
    assert set(full) - set(lean), "the model has a pre-activation to leave out"
    for name in lean:
        np.testing.assert_array_equal(lean[name], full[name], err_msg=name)


@pytest.mark.parametrize("kind", ["convbn", "torch_cnn_dynamo", "gemm32", "gemm64"])
def test_one_onnxruntime_thread_gives_the_same_activations(model_zoo, kind):
    """A Dask worker's session takes the worker's thread count (one by default); its activations, and so the
    cluster's rules, must be those of a session on every core, bit for bit."""
    model = onnx.load(str(model_zoo[kind]))
    net = import_network(model_zoo[kind])
    x = check_data(onnx_models.sample_input(model, 96, seed=6), net.input_shape, net.dtype)
    many = harvest(net, model_zoo[kind], x, batch_size=48, preactivations=False)
    one = harvest(net, model_zoo[kind], x, batch_size=48, preactivations=False, threads=1)
    assert set(one) == set(many)
    for name in many:
        assert np.asarray(one[name]).tobytes() == np.asarray(many[name]).tobytes(), name
