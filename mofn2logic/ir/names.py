"""Names for the inputs, hidden units and classes of an explained network (plain frozen data).

Without names, the exporters speak of ``input 12`` and ``fc2 unit 3``. A user brings:

- input names (the features): a CSV header, ``--feature-names FILE`` (one name per line, or a
  JSON list), one per value of a sample in C order; an image input (channels, height, width)
  without them is named ``pixel[r,c]`` (one channel) or ``pixel[ch,r,c]`` by `input_name`;
- class names: ``--class-names FILE`` (same forms), one per unit of the output layer;
- unit names: ``--names FILE``, JSON ``{layer: {unit: name}}`` (any subset), whose optional
  ``"classes"`` key holds the class names as a list.

`make_names` checks them against the network (counts, layer and unit indices, characters) and
says in one line what was expected and what arrived. Names travel in the RuleSet and in
rules.json's optional ``"names"`` section; the exporters quote them like tensor names.

>>> names = make_names(net, inputs=["age", "income"], classes=["no", "yes"])   # doctest: +SKIP
>>> names.input_name(1), names.class_name(0)                                   # doctest: +SKIP
('income', 'no')
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mofn2logic.errors import DataError

# What a name may not hold (as for node names, see mofn2logic.onnx.importer): controls other than
# tab and newline, lone surrogates, U+FFFE/U+FFFF. Names are at most MAX_NAME characters.
REFUSED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
MAX_NAME = 1000
MAX_FILE_BYTES = 64 * 1024**2


@dataclass(frozen=True, slots=True)
class Names:
    """inputs: one name per value of a sample of the explained part's input (C order), or ()
    for the default; input_shape: that input's per-sample shape (for the default image names);
    classes: one per class, or (); units: (layer, ((unit, name), ...)) for the named hidden units."""

    inputs: tuple[str, ...] = ()
    input_shape: tuple[int, ...] = ()
    classes: tuple[str, ...] = ()
    units: tuple[tuple[str, tuple[tuple[int, str], ...]], ...] = ()

    def input_name(self, index: int) -> str | None:
        """The name of input value `index` (flat, C order): given, or pixel[...] for an image."""
        if self.inputs:
            return self.inputs[index]
        return pixel_name(self.input_shape, index)

    def class_name(self, k: int) -> str | None:
        return self.classes[k] if self.classes else None

    def unit_name(self, layer: str, unit: int) -> str | None:
        for name, units in self.units:
            if name == layer:
                return dict(units).get(unit)
        return None

    def __bool__(self) -> bool:
        """Whether anything is named: by the user, or the inputs of an image by default."""
        return bool(self.inputs or self.classes or self.units or self.image)

    @property
    def image(self) -> bool:
        """Whether the inputs take the default image names (pixel[r,c]): none given, an image shape."""
        return not self.inputs and pixel_name(self.input_shape, 0) is not None


def pixel_name(shape: Sequence[int | None], index: int) -> str | None:
    """The default name of value `index` of an image sample of per-sample `shape` (channels,
    height, width): ``pixel[r,c]`` with one channel, ``pixel[ch,r,c]`` with several; None when
    the input is not an image (or its shape is open)."""
    if len(shape) != 3 or any(d is None for d in shape):
        return None
    c, h, w = (int(d) for d in shape)  # type: ignore[arg-type]
    if not 0 <= index < c * h * w:
        return None
    ch, rest = divmod(index, h * w)
    r, col = divmod(rest, w)
    return f"pixel[{r},{col}]" if c == 1 else f"pixel[{ch},{r},{col}]"


def check_text(name: Any, what: str) -> str:
    """One name: a non-empty string the exporters can write back (one line on failure)."""
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{what} is {name!r}; expected a non-empty text")
    bad = REFUSED.search(name)
    if bad:
        raise DataError(f"{what} {name[:60]!r} holds control character U+{ord(bad.group()):04X}; names may hold any "
                        "character except controls other than tab and newline")
    if len(name) > MAX_NAME:
        raise DataError(f"{what} has {len(name)} characters; expected at most {MAX_NAME}")
    return name


def read_name_list(path: str | os.PathLike[str], what: str) -> tuple[str, ...]:
    """Names from a file: a JSON list of strings, or one name per line (blank lines at the end
    ignored; surrounding spaces kept off)."""
    text = _read(path, what)
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{what} file {str(path)!r} is not a JSON list: {e.msg} at line {e.lineno}") from e
        if not isinstance(items, list):
            raise DataError(f"{what} file {str(path)!r} holds {type(items).__name__}; expected a JSON list of names")
    else:
        items = [line.strip() for line in text.rstrip("\n").split("\n")] if text.strip() else []
    return tuple(check_text(n, f"{what} #{i} in {str(path)!r}") for i, n in enumerate(items))


def read_unit_names(path: str | os.PathLike[str]) -> tuple[dict[str, dict[int, str]], tuple[str, ...]]:
    """``--names FILE``: JSON {layer: {unit: name}} with an optional "classes" list."""
    text = _read(path, "names")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"names file {str(path)!r} is not JSON: {e.msg} at line {e.lineno}") from e
    if not isinstance(doc, dict):
        raise DataError(f"names file {str(path)!r} holds {type(doc).__name__}; expected a JSON object "
                        '{"layer": {"unit": "name"}, "classes": ["name", ...]}')
    classes: tuple[str, ...] = ()
    units: dict[str, dict[int, str]] = {}
    for layer, value in doc.items():
        if layer == "classes" and isinstance(value, list):
            classes = tuple(check_text(n, f"class name #{i} in {str(path)!r}") for i, n in enumerate(value))
            continue
        if not isinstance(value, dict):
            raise DataError(f"names file {str(path)!r}: layer {layer!r} maps to {type(value).__name__}; expected "
                            '{"unit": "name"}')
        units[layer] = {}
        for unit, name in value.items():
            if not re.fullmatch(r"\d{1,9}", str(unit)):
                raise DataError(f"names file {str(path)!r}: layer {layer!r} has unit {unit!r}; expected unit numbers "
                                "0, 1, 2, ...")
            units[layer][int(unit)] = check_text(name, f"name of {layer} unit {unit} in {str(path)!r}")
    return units, classes


def _read(path: str | os.PathLike[str], what: str) -> str:
    from mofn2logic.files import check_input_file

    st = check_input_file(path, f"{what} file")
    if st.st_size > MAX_FILE_BYTES:
        raise DataError(f"{what} file {str(path)!r} has {st.st_size} bytes; expected at most {MAX_FILE_BYTES}")
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{what} file {str(path)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from e


def make_names(network: Any, *, inputs: Sequence[str] | None = None, classes: Sequence[str] | None = None,
               units: Mapping[str, Mapping[int, str]] | None = None, source: str = "feature names") -> Names:
    """Names checked against `network` (a `mofn2logic.ir.network.Network`): as many input names
    as values in a sample of its explained input, as many class names as its output has units,
    units of layers it has. Input names name the graph's input, so they need the explained part
    to start there (no head)."""
    shape = tuple(int(d) for d in network.input_shape if d is not None)
    full = len(shape) == len(network.input_shape)
    if inputs:
        if network.head is not None:
            raise DataError(f"{source} name the model's input {network.head.input!r}, but the explained part starts "
                            f"at {network.input!r} inside the graph ({network.head.reason}); input names need it to "
                            "start at the graph input")
        n = math.prod(shape) if full else None
        if n is not None and len(inputs) != n:
            raise DataError(f"{source} give {len(inputs)} names; the model's input {network.input!r} has {n} values "
                            f"per sample (shape {shape})")
        inputs = tuple(check_text(x, f"input name #{i}") for i, x in enumerate(inputs))
        twice = sorted({x for x in inputs if inputs.count(x) > 1})
        if twice:
            raise DataError(f"{source} name {twice[0]!r} more than once; expected distinct names")
    out_units = int(network.layers[-1].units) if network.layers else 0
    if classes:
        if len(classes) != out_units:
            raise DataError(f"{len(classes)} class names given; the model's output {network.output!r} has "
                            f"{out_units} classes")
        classes = tuple(check_text(x, f"class name #{i}") for i, x in enumerate(classes))
    named: list[tuple[str, tuple[tuple[int, str], ...]]] = []
    by_name = {la.name: la for la in network.layers}
    for layer, given in (units or {}).items():
        if layer not in by_name:
            known = ", ".join(repr(n) for n in by_name)
            raise DataError(f"unit names for layer {layer!r}, which the explained part does not have; it has {known}")
        for unit, name in given.items():
            if not 0 <= int(unit) < by_name[layer].units:
                raise DataError(f"unit names: layer {layer!r} has units 0..{by_name[layer].units - 1}, not {unit}")
            check_text(name, f"name of {layer} unit {unit}")
        named.append((layer, tuple(sorted((int(u), n) for u, n in given.items()))))
    order = {n: i for i, n in enumerate(by_name)}
    # The default image names name the graph's input (not a tensor inside the graph, after a head), read
    # by a dense first layer: a convolution's input tests are per channel, so no pixel is named.
    dense_first = bool(network.layers) and network.layers[0].kind == "dense"
    image = shape if full and network.head is None and dense_first else ()
    return Names(inputs=tuple(inputs or ()), input_shape=image, classes=tuple(classes or ()),
                 units=tuple(sorted(named, key=lambda item: order[item[0]])))


def default_names(network: Any) -> Names | None:
    """The names a model has when the user gives none: pixel[r,c] (pixel[ch,r,c]) for the values of
    an image fed straight to a dense first layer (no head before it), else none (a convolution's
    input tests are per channel: no pixel is named)."""
    names = make_names(network)
    return names if names else None
