from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx_models
import pytest


def require_tool(name: str) -> str:
    """Path of an external program; fail under CI=true when missing, skip elsewhere."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name!r} is not installed (make setup installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def model_zoo(tmp_path_factory) -> dict[str, Path]:
    """Every model kind the importer must read, saved to disk once per test session."""
    d = tmp_path_factory.mktemp("zoo")
    paths = {
        "tf2onnx": onnx_models.save(onnx_models.tf2onnx_cnn(), d / "tf2onnx.onnx"),
        "cntk": onnx_models.save(onnx_models.cntk_cnn(), d / "cntk.onnx"),
        "gemm32": onnx_models.save(onnx_models.gemm_zoo(), d / "gemm32.onnx"),
        "gemm64": onnx_models.save(onnx_models.gemm_zoo(dtype=np.float64), d / "gemm64.onnx"),
        "convbn": onnx_models.save(onnx_models.conv_bn_gap(), d / "convbn.onnx"),
        "torch_mlp_dynamo": onnx_models.torch_mlp_bn(d / "mlp_dynamo.onnx", dynamo=True),
        "torch_mlp_legacy": onnx_models.torch_mlp_bn(d / "mlp_legacy.onnx", dynamo=False),
        "torch_cnn_dynamo": onnx_models.torch_cnn(d / "cnn_dynamo.onnx", dynamo=True),
        "torch_cnn_legacy": onnx_models.torch_cnn(d / "cnn_legacy.onnx", dynamo=False),
    }
    ext = d / "external"
    ext.mkdir()
    paths["external"] = onnx_models.save_external(onnx_models.conv_bn_gap(), ext / "model.onnx")
    return paths


@pytest.fixture(scope="session")
def default_model() -> Path:
    import mofn2logic

    return mofn2logic.default_model_path()


@pytest.fixture(scope="session")
def digits() -> dict[str, np.ndarray]:
    import mofn2logic

    with np.load(mofn2logic.default_data_path()) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def default_acts(default_model, digits):
    import mofn2logic as M

    net = M.import_network(default_model)
    return net, M.harvest(net, default_model, M.check_data(digits["images"], net.input_shape, net.dtype))


@pytest.fixture(scope="session")
def default_rules(default_acts):
    from mofn2logic.search.network import extract

    net, acts = default_acts
    return extract(net, acts, betas=(0.0, 0.2, 1.0), device="cpu")
