"""Safe files: atomic writes, a lock per run folder, and an early check that a folder is writable.

Writes go to a temporary file beside the target, fsynced, then ``os.replace``-d over it (atomic), so an
interruption cannot leave a truncated file; stale temporary files are removed by the next write.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["atomic_write", "save_json", "load_json", "save_torch", "load_torch", "interned", "CorruptFileError", "RunLock",
           "RunLockedError", "writable_dir"]

#: Permissions of a new file (mkstemp creates 0600); an existing target keeps its own.
NEW_FILE_MODE = 0o644
#: A temporary file untouched for this long was left by a killed writer.
STALE_TMP_SECONDS = 60.0


class CorruptFileError(ValueError):
    """A stored file exists but cannot be read back (truncated, wrong format)."""


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed writer
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > STALE_TMP_SECONDS:
                old.unlink()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else NEW_FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def writable_dir(path: str | os.PathLike, *, what: str = "output folder") -> Path:
    """Create ``path`` and check that a file can be written in it (``ValueError`` naming it if not)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder; choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test.", suffix=".tmp"):
            pass
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be written ({e.strerror or e}); choose another path") from None
    return path


class RunLockedError(ValueError):
    """Another live process is running in the same folder."""


class RunLock:
    """Exclusive ``fcntl.flock`` on ``<folder>/.lock`` for a ``with`` block (released by the kernel when the holder
    dies); a second live run raises :class:`RunLockedError` naming the holder. A no-op without ``fcntl``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = writable_dir(folder, what="run folder") / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover (Windows)
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, NEW_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLockedError(f"{self.path.parent} is in use by {holder}; wait for it to finish or use "
                                 "another output folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, (Path, torch.dtype, torch.device)):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in JSON")


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (tensors become lists)."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_jsonable, allow_nan=True) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def load_json(path: str | os.PathLike) -> Any:
    """Read JSON; a malformed file raises :class:`CorruptFileError` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise CorruptFileError(f"{path} is not valid JSON ({e}); delete it or re-run the stage that writes it") from e


def interned(obj: Any) -> Any:
    """``obj`` with every string interned (plain dicts, lists and tuples rebuilt; other objects kept): pickle
    then writes equal strings the same way whatever their origin (a literal, a loaded checkpoint), so equal
    containers save to the same bytes."""
    if type(obj) is str:
        return sys.intern(obj)
    if type(obj) is dict:
        return {interned(k): interned(v) for k, v in obj.items()}
    if type(obj) is list:
        return [interned(v) for v in obj]
    if type(obj) is tuple:
        return tuple(interned(v) for v in obj)
    return obj


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` atomically."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` (weights only: plain tensors and containers) with a clear error for a corrupt file."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, pickle error, ...
        raise CorruptFileError(f"{path} cannot be read as a torch file ({type(e).__name__}: {e}); "
                               "it may be truncated or not written by hdd_lib") from e
