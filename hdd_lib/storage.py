"""Atomic writes: a file is either the old version or the complete new one, never half written.

Each writer writes to a temporary file in the target's folder, flushes it to disk and renames it
over the target (``os.replace`` is atomic on POSIX and Windows), so an interruption or a full disk
cannot leave a truncated result, checkpoint or synthetic set behind.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["atomic_write", "save_json", "load_json", "save_torch", "load_torch", "CorruptFileError"]


#: Permissions of a new file (mkstemp creates 0600); an existing target keeps its own.
NEW_FILE_MODE = 0o644


class CorruptFileError(ValueError):
    """A stored file exists but cannot be read back (truncated, wrong format)."""


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else NEW_FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (torch.dtype, torch.device)):
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


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` atomically."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` (weights only: plain tensors and containers) with a clear error for a corrupt file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, pickle error, ...
        raise CorruptFileError(
            f"{path} cannot be read as a torch file ({type(e).__name__}: {e}); it may be truncated or "
            "not written by hdd_lib"
        ) from e
