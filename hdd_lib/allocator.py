"""glibc malloc tuning for large CPU tensors, applied when ``hdd_lib`` is imported (no torch import)."""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune_allocator", "MALLOC_ENV"]

#: Set to ``0`` to leave glibc's allocator as it is (see :func:`tune_allocator`).
MALLOC_ENV = "HDD_MALLOC_TUNE"
# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
#: The user's own glibc malloc settings, which :func:`tune_allocator` leaves alone.
_USER_MALLOC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")



def tune_allocator() -> dict[str, int] | None:
    """Keep freed memory in glibc's heap for reuse instead of handing it back to the kernel.

    glibc serves every block above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and
    ``munmap``-s it on free, so each large activation of a CPU forward pass is page-faulted in
    anew: about half the CPU time of a distillation iteration. This sets, with ``mallopt``,
    ``M_MMAP_MAX = 0`` (large blocks from the heap too), ``M_TRIM_THRESHOLD = SIZE_MAX`` (never
    shrink the heap) and ``M_TOP_PAD = 64 MiB``. The cost: the process keeps its peak heap
    (``ctypes.CDLL(None).malloc_trim(0)`` hands the free part back).

    Does nothing (returns ``None``) off glibc, with ``HDD_MALLOC_TUNE=0``, or when the user set
    glibc's own ``MALLOC_*_`` variables. Returns the settings applied.
    """
    if os.environ.get(MALLOC_ENV, "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    if not sys.platform.startswith("linux") or any(k in os.environ for k in _USER_MALLOC_ENV):
        return None
    try:
        os.confstr("CS_GNU_LIBC_VERSION")  # raises off glibc (musl)
        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = {"M_MMAP_MAX": 0, "M_TRIM_THRESHOLD": -1, "M_TOP_PAD": 64 << 20}  # -1: SIZE_MAX in glibc
    codes = {"M_MMAP_MAX": _M_MMAP_MAX, "M_TRIM_THRESHOLD": _M_TRIM_THRESHOLD, "M_TOP_PAD": _M_TOP_PAD}
    if not all(mallopt(codes[k], v) == 1 for k, v in settings.items()):
        return None
    return settings
