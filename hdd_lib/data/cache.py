"""A disk cache for decoded image sets, so that 60k JPEGs are decoded once, not on every load.

Entries live in ``$HDD_CACHE_DIR`` (default ``~/.cache/hdd_lib``), never beside the data: the data
root may be read-only. An entry's key hashes the source's absolute path with its size and
modification time (for a folder: every file's relative path, size and time), so a changed source
is decoded afresh. Entries are written atomically (temporary file + ``os.replace``); an unreadable
entry is decoded again, and an unwritable cache only costs the time, with a warning.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["CACHE_VERSION", "default_cache_dir", "fingerprint", "cached"]

#: Bumped whenever the layout of a cache entry changes, which invalidates older entries.
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$HDD_CACHE_DIR`` if set, else ``~/.cache/hdd_lib``."""
    env = os.environ.get("HDD_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hdd_lib"


def fingerprint(path: str | os.PathLike) -> str:
    """Hex digest identifying ``path``'s current content cheaply (paths, sizes, mtimes; no bytes read)."""
    path = Path(path).resolve()
    h = hashlib.sha256(f"v{CACHE_VERSION}|{path}".encode())
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                rel = os.path.relpath(os.path.join(dirpath, name), path)
                h.update(f"|{rel}|{st.st_size}|{st.st_mtime_ns}".encode())
    else:
        st = path.stat()
        h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def cached(
    kind: str,
    source: str | os.PathLike,
    build: Callable[[], dict[str, Any]],
    *,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Return ``build()``'s result for ``source``, from the cache when an entry for it exists.

    Parameters
    ----------
    kind : str
        What is cached (file-name prefix), e.g. ``"imagefolder"``.
    source : path
        The file or folder whose :func:`fingerprint` keys the entry.
    build : callable
        Makes the value: a dict of tensors, lists and strings (``torch.load(weights_only=True)``-safe).
    cache_dir : path, optional
        Defaults to :func:`default_cache_dir`.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = folder / f"{kind}-{fingerprint(source)[:32]}.pt"
    if entry.is_file():
        try:
            return torch.load(entry, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged entry is rebuilt, never fatal
            warnings.warn(f"ignoring unreadable cache entry {str(entry)!r} ({err}); decoding again", stacklevel=2)
    value = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{kind}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(value, f)
            os.replace(tmp, entry)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as err:
        warnings.warn(
            f"could not write the decode cache in {str(folder)!r} ({err}); set $HDD_CACHE_DIR to a writable folder "
            "to avoid decoding again next time",
            stacklevel=2,
        )
    return value
