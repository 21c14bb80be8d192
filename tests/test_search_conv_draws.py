"""Conv examples gathered while the harvest runs (`ConvDraws`) are the draws `extract` makes from the
whole tensors, so that extract need not store a conv layer's tensors: same examples, same rules."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import onnx
import onnx_models
import pytest

import mofn2logic
from mofn2logic import check_data, harvest, import_network
from mofn2logic.errors import DataError, SearchError
from mofn2logic.search.conv_examples import draw, sample_examples
from mofn2logic.search.network import conv_draws, extract, stored_tensors
from mofn2logic.search.rules_file import dumps

CONV_KINDS = ["convbn", "tf2onnx", "cntk", "torch_cnn_dynamo"]


def _data(model_zoo, kind, n):
    model = onnx.load(str(model_zoo[kind]))
    net = import_network(model_zoo[kind])
    return net, check_data(onnx_models.sample_input(model, n, seed=11), net.input_shape, net.dtype)


@pytest.mark.parametrize("kind", CONV_KINDS)
@pytest.mark.parametrize(("budget", "batch"), [(50, 7), (10_000, 16), (1, 5)])
def test_draws_equal_the_whole_tensor_draws(model_zoo, kind, budget, batch):
    """Batch by batch (batches that cut the drawn samples anywhere), the examples and the input-split
    values equal sample_examples and the split draw on the stored tensors, bit for bit."""
    net, x = _data(model_zoo, kind, 29)
    full = harvest(net, model_zoo[kind], x, batch_size=batch)
    draws = conv_draws(net, len(x), None, budget, seed=3)
    assert draws is not None
    lean = harvest(net, model_zoo[kind], x, batch_size=batch, preactivations=False, keep=stored_tensors(net),
                   on_batch=draws)
    got = draws.result()
    convs = [(i, la) for i, la in enumerate(net.layers) if la.kind == "conv"]
    assert convs and set(got) == {la.name for _, la in convs}
    for i, la in convs:
        want = sample_examples(full[la.input], full[la.output], la, budget, 3 + i)
        d = got[la.name]
        for field in ("sample", "oy", "ox", "patches", "targets"):
            a, b = getattr(d.examples, field), getattr(want, field)
            assert a.dtype == b.dtype and a.shape == b.shape, field
            np.testing.assert_array_equal(a, b, err_msg=field)
        x_in = np.asarray(full[la.input])
        vals = x_in.reshape(len(x), x_in.shape[1], -1)
        s, p = np.divmod(draw(vals.shape[0] * vals.shape[2], budget, 3 + 1000 + i), vals.shape[2])
        np.testing.assert_array_equal(d.split_sample, s)
        np.testing.assert_array_equal(d.split_values, vals[s, :, p])
        assert (d.input_shape, d.output_shape) == (full[la.input].shape[1:], full[la.output].shape[1:])
        assert la.output not in lean or la.output in stored_tensors(net)
    assert set(lean) == stored_tensors(net)


@pytest.mark.parametrize("kind", ["convbn", "tf2onnx", "torch_cnn_dynamo"])  # cntk's fixed batch of 1: one class
def test_extract_with_draws_gives_the_same_rules(model_zoo, kind):
    """extract from draws gathered during the harvest equals extract from the whole stored tensors:
    rules.json byte for byte, in chain and paper mode, for all layers and for a conv layer alone."""
    net, x = _data(model_zoo, kind, 60)
    full = harvest(net, model_zoo[kind], x, batch_size=16)
    for mode, layers in (("chain", None), ("paper", None), ("chain", [next(la.name for la in net.layers
                                                                          if la.kind == "conv")])):
        draws = conv_draws(net, len(x), layers, 300, seed=1)
        assert draws is not None
        lean = harvest(net, model_zoo[kind], x, batch_size=16, preactivations=False, keep=stored_tensors(net),
                       on_batch=draws)
        kw = dict(layers=layers, mode=mode, betas=(0.0, 0.2), device="cpu", conv_examples=300, seed=1)
        a = dumps(extract(net, full, **kw))
        b = dumps(extract(net, lean, drawn=draws.result(), **kw))
        assert a == b, (mode, layers)


def test_api_extract_draws_and_stores_no_conv_tensor(default_model, digits, monkeypatch):
    """mofn2logic.extract on a CNN harvests no conv tensor in full and gives the rules of a search on
    the whole tensors; with the best position per channel (which reads whole tensors) it stores them."""
    hv = sys.modules["mofn2logic.onnx.harvest"]  # the module (the package exports a function of that name)
    seen: list[set[str]] = []
    real = hv.harvest

    def spy(*a, **k):
        acts = real(*a, **k)
        seen.append(set(acts))
        return acts

    monkeypatch.setattr(hv, "harvest", spy)
    x = digits["images"][:240]
    net = mofn2logic.load_model(default_model).network
    rs = mofn2logic.extract(default_model, x, betas=[0, 0.2], device="cpu", conv_examples=500)
    conv_tensors = {t for la in net.layers if la.kind == "conv" for t in (la.input, la.output)}
    dense_tensors = {t for la in net.layers if la.kind != "conv" for t in (la.input, la.output)}
    assert seen[-1] & conv_tensors <= dense_tensors and not (conv_tensors - dense_tensors) & seen[-1]
    full = real(net, mofn2logic.load_model(default_model).proto, check_data(x, net.input_shape, net.dtype))
    want = extract(net, full, betas=(0.0, 0.2), device="cpu", conv_examples=500)
    assert dumps(dataclasses.replace(rs, provenance="{}", names=None)) == dumps(dataclasses.replace(want, provenance="{}"))
    mofn2logic.extract(default_model, x, betas=[0], device="cpu", conv_position="best")
    assert conv_tensors <= seen[-1]


def test_draws_that_do_not_match_extract_are_refused(default_model, digits):
    net = mofn2logic.load_model(default_model).network
    x = check_data(digits["images"][:50], net.input_shape, net.dtype)
    draws = conv_draws(net, len(x), None, 100, seed=0)
    assert draws is not None
    acts = harvest(net, default_model, x, keep=stored_tensors(net), on_batch=draws, preactivations=False)
    drawn = draws.result()
    with pytest.raises(SearchError, match="drawn with budget 100 and seed 0"):
        extract(net, acts, betas=(0.0,), device="cpu", conv_examples=100, seed=5, drawn=drawn)
    with pytest.raises(SearchError, match="conv position 'all'"):
        extract(net, acts, betas=(0.0,), device="cpu", conv_examples=100, conv_position="best", drawn=drawn)
    with pytest.raises(DataError, match="cannot keep"):
        harvest(net, default_model, x, keep={"no such tensor"})


def test_a_dense_model_draws_nothing(model_zoo):
    net = import_network(model_zoo["gemm32"])
    assert conv_draws(net, 10, None, 100, seed=0) is None
