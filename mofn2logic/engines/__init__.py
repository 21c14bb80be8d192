"""Engines run a program on the cut tensor's values: numpy (the reference), SymPy and SWI-Prolog.
`verify` runs them side by side against the network."""

from __future__ import annotations

from mofn2logic.engines.base import Engine, EngineResult
from mofn2logic.errors import ProgramError

ENGINE_NAMES = ("python", "sympy", "prolog")


def get_engine(name: str) -> Engine:
    """The engine called `name` (imported on demand: SymPy and swipl cost time to start)."""
    if name == "python":
        from mofn2logic.engines.numpy_engine import NumpyEngine

        return NumpyEngine()
    if name == "sympy":
        from mofn2logic.engines.sympy_engine import SympyEngine

        return SympyEngine()
    if name == "prolog":
        from mofn2logic.engines.prolog_engine import PrologEngine

        return PrologEngine()
    raise ProgramError(f"engine {name!r} is unknown; expected one of {', '.join(ENGINE_NAMES)} or all")


from mofn2logic.engines.verify import VerifyReport, verify  # noqa: E402  (verify uses get_engine)

__all__ = ["Engine", "EngineResult", "ENGINE_NAMES", "get_engine", "verify", "VerifyReport"]
