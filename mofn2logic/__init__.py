"""mofn2logic: M-of-N rules and logic programs from ONNX classifiers.

>>> import mofn2logic
>>> model = mofn2logic.load_model(mofn2logic.default_model_path())
>>> [layer.kind for layer in model.network.layers]
['conv', 'conv', 'dense', 'dense']
"""

from __future__ import annotations

from mofn2logic.api import activations, compile, demo, extract, fit_decision_list, run, verify  # noqa: A004
from mofn2logic.engines import VerifyReport
from mofn2logic.errors import (
    DataError,
    ExportError,
    InputFileError,
    ModelFormatError,
    Mofn2LogicError,
    OutputFileError,
    ProgramError,
    RuleSyntaxError,
    SearchError,
    ToolMissingError,
    UnsupportedModelError,
)
from mofn2logic.exporters import Format, formats, load_program, to_text, write
from mofn2logic.inputs import (
    Dataset,
    LoadedModel,
    check_data,
    check_labels,
    load_dataset,
    load_model,
    read_array,
)
from mofn2logic.ir import ConvAttrs, Layer, Network, Program, RuleSet, Step
from mofn2logic.onnx.harvest import Activations, harvest
from mofn2logic.onnx.importer import import_network
from mofn2logic.resources import default_data_path, default_model_path
from mofn2logic.run_summary import CheckResult, CutResult, RunSummary
from mofn2logic.version import __version__  # the one version source (mofn2logic/version.py)

__all__ = [
    "__version__",
    # the pipeline
    "extract", "compile", "verify", "run", "demo", "activations", "fit_decision_list",
    # results
    "RuleSet", "Program", "VerifyReport", "RunSummary", "CutResult", "CheckResult",
    # what the user brings
    "load_model", "LoadedModel", "load_dataset", "Dataset", "read_array", "check_data", "check_labels",
    "default_model_path", "default_data_path",
    # networks and activations
    "import_network", "Network", "Layer", "Step", "ConvAttrs", "harvest", "Activations",
    # program formats
    "load_program", "write", "to_text", "formats", "Format",
    # errors
    "Mofn2LogicError", "InputFileError", "OutputFileError", "ModelFormatError", "UnsupportedModelError", "DataError",
    "SearchError", "RuleSyntaxError", "ProgramError", "ExportError", "ToolMissingError",
]
