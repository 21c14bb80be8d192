"""The printer base: `_print_<Class>` methods found by walking the node's class hierarchy
(the shape of SymPy's printers). The IR knows nothing about printing."""

from __future__ import annotations

from typing import Any

from mofn2logic.errors import ExportError


class Printer:
    """Subclasses set `target` (named in errors) and `options` (name -> default: the keyword
    options the printer takes; any other raises TypeError), and define `_print_<Class>`."""

    target = "text"
    options: dict[str, Any] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown option(s) {', '.join(unknown)}; "
                            f"it takes {', '.join(sorted(self.options)) or 'none'}")
        self.settings = {**self.options, **options}

    def doprint(self, node: Any) -> str:
        return self._print(node)

    def _print(self, node: Any) -> Any:
        for cls in type(node).__mro__:
            method = getattr(self, f"_print_{cls.__name__}", None)
            if method is not None:
                return method(node)
        raise ExportError(f"the {self.target} exporter cannot write {type(node).__name__}")
