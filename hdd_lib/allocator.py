"""glibc malloc tuning for large CPU tensors, applied when ``hdd_lib`` is imported (no torch import)."""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune_allocator", "MALLOC_ENV"]

#: Set to ``0`` to leave glibc's allocator as it is (see :func:`tune_allocator`).
MALLOC_ENV = "HDD_MALLOC_TUNE"
#: The user's own glibc malloc settings, which :func:`tune_allocator` leaves alone.
_USER_MALLOC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")


def tune_allocator() -> dict[str, int] | None:
    """Keep freed memory in glibc's heap for reuse: else every large CPU activation is ``mmap``-ed and page-faulted
    anew (about half a distillation iteration's CPU time). Returns the settings applied (the process keeps its peak
    heap), or ``None`` (nothing done) off glibc, with ``HDD_MALLOC_TUNE=0`` or the user's own ``MALLOC_*_`` variables.
    """
    off = os.environ.get(MALLOC_ENV, "1").strip().lower() in ("0", "off", "false", "no")
    if off or not sys.platform.startswith("linux") or any(k in os.environ for k in _USER_MALLOC_ENV):
        return None
    try:
        os.confstr("CS_GNU_LIBC_VERSION")  # raises off glibc (musl)
        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # {name: (mallopt parameter code in glibc's malloc.h, value)}; a value of -1 is SIZE_MAX in glibc
    settings = {"M_MMAP_MAX": (-4, 0), "M_TRIM_THRESHOLD": (-1, -1), "M_TOP_PAD": (-2, 64 << 20)}
    ok = all(mallopt(code, value) == 1 for code, value in settings.values())
    return {k: value for k, (_, value) in settings.items()} if ok else None
