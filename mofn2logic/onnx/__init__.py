"""ONNX in: load a model file (with its guards), import it into the network IR, and harvest
every layer's activations with onnxruntime."""

from mofn2logic.onnx.harvest import Activations, harvest, parse_size, save_npz, select_providers
from mofn2logic.onnx.importer import import_network, layer_table
from mofn2logic.onnx.load import load_onnx

__all__ = ["load_onnx", "import_network", "layer_table", "harvest", "Activations", "save_npz", "parse_size",
           "select_providers"]
