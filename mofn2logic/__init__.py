"""mofn2logic: M-of-N rules and logic programs from ONNX classifiers.

>>> import mofn2logic
>>> net = mofn2logic.import_network(mofn2logic.default_model_path())
>>> [layer.kind for layer in net.layers]
['conv', 'conv', 'dense', 'dense']
"""

from __future__ import annotations

__version__ = "0.1.0"

from mofn2logic.api import compile, extract, run, verify  # noqa: A004
from mofn2logic.inputs import check_data, load_data, read_array
from mofn2logic.errors import (
    DataError,
    ExportError,
    InputFileError,
    ModelFormatError,
    Mofn2LogicError,
    ProgramError,
    RuleSyntaxError,
    SearchError,
    ToolMissingError,
    UnsupportedModelError,
)
from mofn2logic.onnx.harvest import Activations, harvest
from mofn2logic.ir import ConvAttrs, Layer, Network, Step
from mofn2logic.onnx.importer import import_network
from mofn2logic.ir import Program, RuleSet
from mofn2logic.resources import default_data_path, default_model_path

__all__ = [
    # the pipeline
    "extract", "compile", "verify", "run",
    # networks
    "RuleSet", "Program",
    "import_network", "Network", "Layer", "Step", "ConvAttrs", "default_model_path",
    # data and activations
    "read_array", "check_data", "load_data", "harvest", "Activations", "default_data_path",
    # errors
    "Mofn2LogicError", "InputFileError", "ModelFormatError", "UnsupportedModelError", "DataError",
    "SearchError", "RuleSyntaxError", "ProgramError", "ExportError", "ToolMissingError",
]
