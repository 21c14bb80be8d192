"""Every program format in one table: `export --to`, `load_program` (by file suffix) and the
pipeline all read it, so a new format is one `register` call here and touches nothing else.

Each format module has symmetric names: `to_<fmt>(program, **options) -> str` and
`write_<fmt>(program, path, **options)`, and for readable formats `parse_<fmt>(text, source=...)`
and `read_<fmt>(path)`. Built-in entries import their module on first use (SymPy, Lark).

>>> from mofn2logic.exporters import load_program, write
>>> program = load_program("softmax.mofn")            # doctest: +SKIP
>>> write(program, "softmax.pl")                      # doctest: +SKIP   (Prolog, by suffix)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mofn2logic.errors import ExportError, ProgramError
from mofn2logic.ir.program import Program

ToText = Callable[..., str]
ParseText = Callable[..., Program]


@dataclass(frozen=True, slots=True)
class Format:
    """One program format.

    to_text(program, **options) -> str; parse_text(text, source=...) -> Program, or None for a
    write-only format; options: the option names `to_text` takes, with their defaults.
    """

    name: str
    suffixes: tuple[str, ...]
    to_text: ToText
    parse_text: ParseText | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def readable(self) -> bool:
        return self.parse_text is not None


_FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add `fmt` to the table (a name or suffix already taken is an error); returns it."""
    if fmt.name in _FORMATS:
        raise ValueError(f"a program format named {fmt.name!r} is already registered")
    taken = {s: f.name for f in _FORMATS.values() for s in f.suffixes}
    clash = [s for s in fmt.suffixes if s.lower() in taken]
    if clash:
        raise ValueError(f"suffix {clash[0]!r} of format {fmt.name!r} already belongs to {taken[clash[0].lower()]!r}")
    _FORMATS[fmt.name] = Format(fmt.name, tuple(s.lower() for s in fmt.suffixes), fmt.to_text, fmt.parse_text,
                                fmt.options, fmt.description)
    return _FORMATS[fmt.name]


def unregister(name: str) -> None:
    _FORMATS.pop(name, None)


def formats() -> Mapping[str, Format]:
    """Name -> format, in registration order (read-only)."""
    return MappingProxyType(_FORMATS)


def get_format(name: str) -> Format:
    try:
        return _FORMATS[name]
    except KeyError:
        raise ExportError(f"program format {name!r} is unknown; expected one of {', '.join(_FORMATS)}") from None


def format_for_suffix(path: str | os.PathLike[str]) -> Format:
    """The format whose suffix `path` has (case-insensitive)."""
    suffix = Path(path).suffix.lower()
    for fmt in _FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    known = ", ".join(f"{s} ({f.name})" for f in _FORMATS.values() for s in f.suffixes)
    raise ExportError(f"{str(path)!r} has suffix {suffix!r}, which names no program format; known: {known}")


def to_text(program: Program, fmt: str | Format, **options: Any) -> str:
    """The program in format `fmt`; an option the format does not take raises TypeError."""
    f = fmt if isinstance(fmt, Format) else get_format(fmt)
    return f.to_text(program, **options)


def write(program: Program, path: str | os.PathLike[str], fmt: str | Format | None = None, **options: Any) -> None:
    """Write the program to `path` (atomically), in `fmt` or else the format of the path's suffix."""
    from mofn2logic.files import check_output_path, write_text_atomic

    check_output_path(path)
    f = format_for_suffix(path) if fmt is None else fmt if isinstance(fmt, Format) else get_format(fmt)
    write_text_atomic(path, to_text(program, f, **options))


def parse(text: str, fmt: str | Format, source: str = "<text>") -> Program:
    f = fmt if isinstance(fmt, Format) else get_format(fmt)
    if f.parse_text is None:
        raise ProgramError(f"{source}: the {f.name} format is write-only; readable: {_readable()}")
    return f.parse_text(text, source=source)


def load_program(path: str | os.PathLike[str]) -> Program:
    """Read a program file in the format of its suffix, checked (`check_program`)."""
    from mofn2logic.files import read_text

    try:
        f = format_for_suffix(path)
    except ExportError:
        raise ProgramError(f"cannot tell the format of program {str(path)!r} from its suffix; "
                           f"readable: {_readable()}") from None
    if f.parse_text is None:
        raise ProgramError(f"{str(path)!r} is a {f.name} file, which mofn2logic only writes; readable: {_readable()}")
    return f.parse_text(read_text(path, "program"), source=str(path))


def _readable() -> str:
    return ", ".join(f"{s} ({f.name})" for f in _FORMATS.values() if f.readable for s in f.suffixes)


# --------------------------------------------------------------------------- built-in formats

def _lazy(module: str, name: str) -> Callable[..., Any]:
    """Function `name` of exporter module `module`, imported on the first call (SymPy, Lark)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"mofn2logic.exporters.{module}"), name)(*args, **kwargs)

    call.__name__ = name
    call.__qualname__ = name
    return call


class _PrinterOptions(Mapping[str, Any]):
    """A printer class's `options` (name -> default), read when first asked for: the table
    says what each format takes without importing SymPy or Lark up front, and without a copy
    that could drift from the printer."""

    def __init__(self, module: str, printer: str) -> None:
        self._where = (module, printer)
        self._options: Mapping[str, Any] | None = None

    def _get(self) -> Mapping[str, Any]:
        if self._options is None:
            mod = importlib.import_module(f"mofn2logic.exporters.{self._where[0]}")
            self._options = dict(getattr(getattr(mod, self._where[1], None), "options", {}))
        return self._options

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(dict(self._get()))


for _fmt in (
    Format("mofn", (".mofn",), _lazy("mofn", "to_mofn"), _lazy("mofn", "parse_mofn"),
           _PrinterOptions("mofn", "MofnPrinter"), "the .mofn text (grammars/mofn.lark)"),
    Format("json", (".json",), _lazy("json_program", "to_json"), _lazy("json_program", "parse_json"),
           _PrinterOptions("json_program", "JsonPrinter"), "JSON, format mofn2logic-program"),
    Format("prolog", (".pl",), _lazy("prolog", "to_prolog"), _lazy("prolog_read", "parse_prolog"),
           _PrinterOptions("prolog", "PrologPrinter"), "SWI-Prolog clauses with predict/2 and explain/3"),
    Format("sympy", (".py",), _lazy("sympy_expr", "to_sympy"), None,
           _PrinterOptions("sympy_expr", "SympyPrinter"), "a Python file of SymPy expressions (write-only)"),
    Format("dot", (".dot", ".gv"), _lazy("dot", "to_dot"), None,
           _PrinterOptions("dot", "DotPrinter"), "the rule graph in Graphviz DOT (write-only)"),
    Format("svg", (".svg",), _lazy("dot", "to_svg"), None,
           _PrinterOptions("dot", "DotPrinter"), "the rule graph laid out by Graphviz dot (write-only)"),
):
    register(_fmt)
del _fmt

__all__ = ["Format", "register", "unregister", "formats", "get_format", "format_for_suffix", "to_text", "write",
           "parse", "load_program"]
