from __future__ import annotations

import numpy as np
import onnx
import onnx_models
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from mofn2logic import import_network
from mofn2logic.errors import InputFileError, ModelFormatError, UnsupportedModelError
from mofn2logic.ir.steps import Step, Transpose

EXPECTED = {
    "tf2onnx": [("conv", "relu"), ("dense", "relu"), ("dense", "softmax")],
    "cntk": [("conv", "tanh"), ("dense", "identity")],
    "gemm32": [("dense", "leaky_relu"), ("dense", "sigmoid"), ("dense", "log_softmax")],
    "gemm64": [("dense", "leaky_relu"), ("dense", "sigmoid"), ("dense", "log_softmax")],
    "convbn": [("conv", "relu"), ("conv", "sigmoid"), ("dense", "softmax")],
    "torch_mlp_dynamo": [("dense", "tanh"), ("dense", "softmax")],
    "torch_mlp_legacy": [("dense", "tanh"), ("dense", "softmax")],
    "torch_cnn_dynamo": [("conv", "relu"), ("conv", "relu"), ("dense", "softmax")],
    "torch_cnn_legacy": [("conv", "relu"), ("conv", "relu"), ("dense", "softmax")],
    "external": [("conv", "relu"), ("conv", "sigmoid"), ("dense", "softmax")],
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_reads_every_exporter_layout(model_zoo, kind):
    net = import_network(model_zoo[kind])
    assert [(layer.kind, layer.activation) for layer in net.layers] == EXPECTED[kind]
    assert net.dtype == (np.float64 if kind == "gemm64" else np.float32)
    for layer in net.layers:
        assert layer.weight.dtype == net.dtype and not layer.weight.flags.writeable


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_layer_weights_reproduce_the_preactivation(model_zoo, kind):
    """The IR's weights, in its documented orientation, recompute each layer's pre-activation."""
    model = onnx.load(str(model_zoo[kind]))
    net = import_network(model_zoo[kind])
    x = onnx_models.sample_input(model, 5)
    ref = ReferenceEvaluator(model).run(None, {net.input: x}, intermediate=True)
    for layer in net.layers:
        inp = np.asarray(ref[layer.input], dtype=np.float64)
        if layer.kind == "dense":
            pre = inp @ layer.weight.T.astype(np.float64) + layer.bias
        else:
            c = layer.conv
            padded = torch.nn.functional.pad(torch.from_numpy(inp), (c.pads[1], c.pads[3], c.pads[0], c.pads[2]))
            pre = torch.nn.functional.conv2d(
                padded, torch.from_numpy(layer.weight.astype(np.float64)), torch.from_numpy(layer.bias.astype(np.float64)),
                stride=c.strides, dilation=c.dilations, groups=c.groups).numpy()
        np.testing.assert_allclose(pre, np.asarray(ref[layer.preact]), atol=1e-5, rtol=1e-5)


def test_default_model_table(default_model):
    net = import_network(default_model)
    assert [(la.kind, la.units, la.fan_in, la.activation) for la in net.layers] == [
        ("conv", 8, 9, "relu"), ("conv", 16, 72, "relu"), ("dense", 32, 256, "relu"), ("dense", 10, 32, "softmax")]
    assert [s.op for s in net.sequence if isinstance(s, Step)] == ["maxpool", "reshape"]
    assert net.layers[0].input_shape == (1, 8, 8) and net.layers[1].output_shape == (16, 8, 8)


def test_tf2onnx_same_padding_and_transposes(model_zoo):
    net = import_network(model_zoo["tf2onnx"])
    assert net.layers[0].conv.pads == (1, 1, 1, 1)
    assert [s.perm for s in net.sequence if isinstance(s, Transpose)] == [
        (0, 3, 1, 2), (0, 2, 3, 1)]


def test_gemm_transA_after_transpose_uses_the_untransposed_input(model_zoo):
    net = import_network(model_zoo["gemm32"])
    assert net.layers[1].input == "h1" and net.layers[1].weight.shape == (6, 7)


def test_cntk_bias_add_and_constant_subgraph_weights(model_zoo):
    net = import_network(model_zoo["cntk"])
    conv, dense = net.layers
    assert conv.preact == "c1b" and conv.bias.shape == (3,)
    assert dense.weight.shape == (6, 27)


@pytest.mark.parametrize("builder, match", [
    (onnx_models.unsupported_op, r"'weird_sin' \(Sin\).*supported between input and output: .*Conv"),
    (onnx_models.no_layer, r"no dense or conv layer"),
    (onnx_models.branching, r"'residual' \(Add\) combines computed tensors 'a', 'g'"),
])
def test_refuses_what_it_cannot_read(tmp_path, builder, match):
    path = onnx_models.save(builder(), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedModelError, match=match):
        import_network(path)


def test_external_data_inside_folder_is_read(model_zoo):
    assert (model_zoo["external"].parent / "weights.bin").is_file()
    assert import_network(model_zoo["external"]).layers[0].weight.shape == (4, 3, 3, 3)


def test_external_data_outside_folder_is_refused(tmp_path):
    path = onnx_models.save_external_outside(onnx_models.conv_bn_gap(), tmp_path / "inner")
    with pytest.raises(ModelFormatError, match=r"outside the model's folder"):
        import_network(path)


def test_not_onnx(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFormatError, match="is not an ONNX model"):
        import_network(junk)
    with pytest.raises(InputFileError, match="does not exist"):
        import_network(tmp_path / "missing.onnx")
