"""One exception root. Each subclass is also a builtin type so callers can catch either."""

from __future__ import annotations


class Mofn2LogicError(Exception):
    """Root of every error mofn2logic raises on purpose (user errors: exit status 2)."""


class InputFileError(Mofn2LogicError, FileNotFoundError):
    """A file the user named is missing or unreadable."""


class OutputFileError(Mofn2LogicError, OSError):
    """An output path cannot be written (a missing folder, a folder where a file goes, an input)."""


class ModelFormatError(Mofn2LogicError, ValueError):
    """The file is not a readable ONNX model."""


class UnsupportedModelError(Mofn2LogicError, ValueError):
    """The ONNX graph uses a construct mofn2logic cannot turn into layers."""


class DataError(Mofn2LogicError, ValueError):
    """Data does not fit the model (shape, dtype, NaN/Inf, empty)."""


class SearchError(Mofn2LogicError, ValueError):
    """The rule search cannot run with the given layer, data or options."""


class RuleSyntaxError(Mofn2LogicError, ValueError):
    """A .mofn or Prolog text does not parse; the message carries line, column and a caret."""


class ProgramError(Mofn2LogicError, ValueError):
    """A logic program is inconsistent (undefined atom, cycle, unknown layer)."""


class ExportError(Mofn2LogicError, ValueError):
    """An exporter met a construct it cannot write."""


class ToolMissingError(Mofn2LogicError, RuntimeError):
    """An external program (swipl, dot) is not installed."""
