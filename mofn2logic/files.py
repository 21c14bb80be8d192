"""Atomic writes: a file appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any
from collections.abc import Iterator
from pathlib import Path

from mofn2logic.errors import InputFileError


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """A UTF-8 text file, or a one-line error naming `what` it should have been."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError) as e:
        raise InputFileError(f"{what} file {str(path)!r} does not exist") from e
    except UnicodeDecodeError as e:
        raise InputFileError(f"{what} file {str(path)!r} is not UTF-8 text") from e


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_text(text: str, source: str, error: type[Exception]) -> Any:
    """JSON data from `text`, or one `error` line: strict JSON (no NaN or Infinity), and nesting
    too deep for the parser is refused rather than crashing it."""
    import json

    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise error(f"{source} is not JSON: {e}") from e
    except ValueError as e:
        raise error(f"{source} is not strict JSON: {e}") from e
    except RecursionError as e:
        raise error(f"{source} nests its JSON too deeply to read") from e


def read_json(path: str | os.PathLike[str], what: str, error: type[Exception]) -> Any:
    return parse_json_text(read_text(path, what), repr(str(path)), error)


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Fail early, before any work, when `path` cannot be written (its folder is missing)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputFileError(f"cannot write {str(target)!r}: folder {str(folder)!r} does not exist")
    if target.is_dir():
        raise InputFileError(f"cannot write {str(target)!r}: it is a folder; expected a file path")
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    target = check_output_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
