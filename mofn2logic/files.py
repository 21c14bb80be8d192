"""Files in and out: inputs read with a size bound and a one-line error; outputs written
atomically (a file or a folder appears whole or not at all, with the umask's permissions), never
over an input or a device.

>>> with atomic_path("rules.json") as tmp:                     # doctest: +SKIP
...     tmp.write_text("{}")
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mofn2logic.errors import InputFileError, Mofn2LogicError, OutputFileError

# Programs and rule files are parsed whole in memory: larger ones are refused before reading.
MAX_TEXT_BYTES = 256 * 1024**2
# Characters of a path shown in a message (the middle of a longer one is elided).
SHOWN_PATH = 120

PathLike = str | os.PathLike[str]


def shown(path: PathLike) -> str:
    """`path` quoted for a one-line message: repr (so control characters are escaped), and at
    most SHOWN_PATH characters."""
    text = repr(str(path))
    if len(text) <= SHOWN_PATH:
        return text
    half = (SHOWN_PATH - 3) // 2
    return text[:half] + "..." + text[-half:]


def size_text(n: int) -> str:
    """Bytes as a short human size: 4.0 GiB, 512 MiB, 100 bytes."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or unit == "EiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    raise AssertionError("unreachable")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_input_file(path: PathLike, what: str) -> os.stat_result:
    """The stat of a regular file the user named, or a one-line error: missing, a folder, or a
    pipe or device (which could block a read forever)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError) as e:
        raise InputFileError(f"{what} file {shown(path)} does not exist") from e
    except (OSError, ValueError) as e:  # permission, name too long, NUL in the name
        raise InputFileError(f"cannot read {what} file {shown(path)}: {_reason(e)}") from e
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(f"{what} file {shown(path)} is {_kind(st.st_mode)}; expected a regular file")
    return st


def read_text(path: PathLike, what: str, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A UTF-8 text file of at most `max_bytes`, or a one-line error naming `what` it should have been."""
    st = check_input_file(path, what)
    if st.st_size > max_bytes:
        raise InputFileError(f"{what} file {shown(path)} has {size_text(st.st_size)}; "
                             f"expected at most {size_text(max_bytes)}")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise InputFileError(f"cannot read {what} file {shown(path)}: {_reason(e)}") from e
    if len(data) > max_bytes:  # it grew while we looked
        raise InputFileError(f"{what} file {shown(path)} has more than {size_text(max_bytes)}; "
                             f"expected at most {size_text(max_bytes)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputFileError(f"{what} file {shown(path)} is not UTF-8 text (byte {e.start} is "
                             f"{data[e.start]:#04x})") from e


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


def read_json(path: PathLike, what: str, error: type[Exception]) -> Any:
    return parse_json_text(read_text(path, what), repr(str(path)), error)


# --------------------------------------------------------------------------- outputs

def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return " ".join(str(e).split())[:200] or type(e).__name__


def _write_error(target: Path, e: BaseException) -> OutputFileError:
    return OutputFileError(f"cannot write {shown(target)}: {_reason(e)}")


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask sets it)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _same_file(a: PathLike, b: PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return os.path.realpath(a) == os.path.realpath(b)


def _check_folder(folder: Path, target: Path, *, create: bool = False) -> None:
    """The folder an output goes into exists and is a folder (or, with `create`, could be made)."""
    try:
        st = os.stat(folder)
    except (FileNotFoundError, NotADirectoryError) as e:
        if create:
            above = next((p for p in folder.parents if os.path.lexists(p)), None)
            if above is None or os.path.isdir(above):
                return
            raise OutputFileError(f"cannot write {shown(target)}: {shown(above)} is a file, not a folder") from e
        # Name the nearest existing part that is not a folder, if one is in the way.
        blocker = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), None)
        if blocker is not None and not os.path.isdir(blocker):
            raise OutputFileError(f"cannot write {shown(target)}: {shown(blocker)} is a file, not a folder") from e
        raise OutputFileError(f"cannot write {shown(target)}: folder {shown(folder)} does not exist") from e
    except (OSError, ValueError) as e:
        raise _write_error(target, e) from e
    if not stat.S_ISDIR(st.st_mode):
        raise OutputFileError(f"cannot write {shown(target)}: {shown(folder)} is {_kind(st.st_mode)}, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputFileError(f"cannot write {shown(target)}: folder {shown(folder)} is not writable")


def check_output_path(path: PathLike, *, inputs: Iterable[PathLike] = ()) -> Path:
    """Fail early, before any work, when the file `path` cannot be written: its folder is
    missing or not a folder, `path` is a folder or a device, or it is one of `inputs`."""
    if not str(path):
        raise OutputFileError("the output path is empty; expected a file path")
    target = Path(path)
    _check_folder(target.parent, target)
    if os.path.lexists(target):
        st = os.stat(target) if os.path.exists(target) else os.lstat(target)
        if stat.S_ISDIR(st.st_mode):
            raise OutputFileError(f"cannot write {shown(target)}: it is a folder; expected a file path")
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
            raise OutputFileError(f"cannot write {shown(target)}: it is {_kind(st.st_mode)}; expected a file path")
        for p in inputs:
            if p is not None and _same_file(p, target):
                raise OutputFileError(f"cannot write {shown(target)}: it is the input {shown(p)}; "
                                     "expected an output path apart from the inputs")
    return target


@contextlib.contextmanager
def atomic_path(path: PathLike, *, inputs: Iterable[PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.
    The file gets the permissions a plain `open` would give (0666 less the umask)."""
    target = check_output_path(path, inputs=inputs)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".part", dir=target.parent)
    except OSError as e:
        raise _write_error(target, e) from e
    try:
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        yield Path(tmp)
        os.replace(tmp, target)
    except Mofn2LogicError:
        raise
    except (OSError, UnicodeEncodeError) as e:
        raise _write_error(target, e) from e
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def write_text_atomic(path: PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- output folders

def _inside(path: PathLike, folder: PathLike) -> bool:
    try:
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))
    except (OSError, ValueError):
        return False


def check_output_folder(path: PathLike, *, inputs: Iterable[PathLike] = (), marker: str | None = None) -> Path:
    """Fail early when the folder `path` cannot be written whole: its parent is missing, it is
    a file, it holds an input, or it holds files that are not an earlier output (an existing
    folder is replaced as a whole, so it must be empty or hold `marker`)."""
    if not str(path):
        raise OutputFileError("the output folder is empty; expected a folder path")
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    _check_folder(target.parent, target)
    for p in inputs:
        if p is not None and _inside(p, target):
            raise OutputFileError(f"cannot write the folder {shown(path)}: it holds the input {shown(p)}, and the "
                                 "folder is replaced as a whole; expected an output folder apart from the inputs")
    if os.path.lexists(target):
        st = os.stat(target) if os.path.exists(target) else os.lstat(target)
        if not stat.S_ISDIR(st.st_mode):
            raise OutputFileError(f"cannot write the folder {shown(path)}: it is "
                                 f"{_kind(st.st_mode)}; expected a folder")
        if target.resolve() in (Path.cwd().resolve(), Path.home().resolve(), Path(target.anchor)):
            raise OutputFileError(f"cannot write the folder {shown(path)}: it is the current, home or root folder, "
                                 "and the folder is replaced as a whole; expected a folder of its own")
        try:
            names = os.listdir(target)
        except OSError as e:
            raise _write_error(target, e) from e
        if names and (marker is None or marker not in names):
            raise InputFileError(
                f"cannot write the folder {shown(path)}: it holds {len(names)} files that are not an earlier output"
                + (f" (no {marker})" if marker else "")
                + ", and the folder is replaced as a whole; expected a new or empty folder, or an earlier output")
    return target


@contextlib.contextmanager
def atomic_folder(path: PathLike, *, inputs: Iterable[PathLike] = (), marker: str | None = None) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `path`; when the block succeeds, it replaces `path`
    as a whole (an earlier folder there is removed, never mixed with the new files); when it
    fails or is interrupted, it is removed and `path` stays as it was."""
    inputs = list(inputs)
    target = check_output_folder(path, inputs=inputs, marker=marker)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name[:40]}.", suffix=".part", dir=target.parent))
    except OSError as e:
        raise _write_error(target, e) from e
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        check_output_folder(path, inputs=inputs, marker=marker)  # still ours to replace
        _swap_in(tmp, target)
    except Mofn2LogicError:
        raise
    except OSError as e:
        raise _write_error(target, e) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait (and arrive right after) while the block runs: a swap is never
    left half done, with the old folder moved aside and the new one not yet in place."""
    import signal

    held = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename the folder `tmp` onto `target`. rename(2) replaces only an empty folder, so a full
    one is first moved aside (and removed after); another run doing the same at the same time
    makes one of the two folders win whole."""
    with _signals_held():
        _swap(tmp, target)


def _swap(tmp: Path, target: Path) -> None:
    aside: list[Path] = []
    try:
        for _ in range(20):
            try:
                os.replace(tmp, target)
                return
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            old = Path(tempfile.mkdtemp(prefix=f".{target.name[:40]}.", suffix=".old", dir=target.parent))
            aside.append(old)
            with contextlib.suppress(FileNotFoundError):
                os.replace(target, old)
        raise OSError(errno.EBUSY, "the folder kept being replaced by another process")
    finally:
        for old in aside:
            shutil.rmtree(old, ignore_errors=True)


def file_stem(name: str, limit: int = 48) -> str:
    """A safe part of a file name for `name` (a layer's name can be anything): ASCII letters,
    digits, '-' and '_' only, at most `limit` characters. A name changed on the way ends in 8 hex
    digits of its hash, so two names never share a file.

    >>> file_stem("fc1"), file_stem("a/b")
    ('fc1', 'a_b-c14cddc0')
    """
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in name)
    if safe == name and 0 < len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe[:limit - 9] or 'x'}-{digest}"
