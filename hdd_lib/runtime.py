"""Run-time choices shared by distillation and evaluation: device, seeding, precision, allocator, compile.

Importing :mod:`hdd_lib` calls :func:`tune_allocator` once (glibc only; ``HDD_MALLOC_TUNE=0`` turns
it off), so every entry point (``dvc repro``'s papermill kernels, the CLI, the tests, user code)
gets it without setting anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import sys
import warnings
from typing import Callable

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "autocast", "use_bf16", "use_bf16_real", "cpu_has_bf16",
           "tune_allocator", "MALLOC_ENV", "compiled"]

#: Set to ``0`` to leave glibc's allocator as it is (see :func:`tune_allocator`).
MALLOC_ENV = "HDD_MALLOC_TUNE"
# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
#: The user's own glibc malloc settings, which :func:`tune_allocator` leaves alone.
_USER_MALLOC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; an explicit CUDA device must exist."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available on this machine; use 'cpu' or 'auto'")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global RNGs (the library itself draws only from explicit generators)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def use_bf16(amp: str, device: torch.device) -> bool:
    """Whether networks run under bf16 autocast: ``"auto"`` means on CUDA only."""
    if amp == "bf16":
        return True
    return amp == "auto" and device.type == "cuda"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX) and oneDNN is built in."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return torch.backends.mkldnn.is_available() and any(p is not None and p() for p in probes)


def use_bf16_real(precision: str, amp: str, device: torch.device) -> bool:
    """Whether the real images' forward pass (no gradient) runs under bf16 autocast.

    ``"bf16"`` / ``"fp32"``: as said. ``"auto"``: never with ``amp="off"``; on CUDA as ``amp`` says;
    on a CPU with ``amp="bf16"`` or where it has native bf16 (:func:`cpu_has_bf16`).
    """
    if precision != "auto":
        return precision == "bf16"
    if amp == "off":
        return False
    return use_bf16(amp, device) or (device.type == "cpu" and cpu_has_bf16())


def autocast(enabled: bool, device: torch.device):
    """bf16 autocast on ``device`` when ``enabled``; norms and losses stay in float32 (autocast's lists)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


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


def compiled(fn: Callable, *, name: str = "the network") -> Callable:
    """``torch.compile(fn, dynamic=False)`` that falls back to ``fn`` for good, with one warning,
    where compiling fails (no inductor backend, no C++ compiler, an unsupported op).

    ``dynamic=False``: one static graph per input shape and grad/autocast mode (a distillation
    run has two or three), which inductor makes faster than one shape-generic graph.
    """
    state = {"fn": torch.compile(fn, dynamic=False)}

    def call(*args, **kwargs):
        if state["fn"] is fn:
            return fn(*args, **kwargs)
        try:
            return state["fn"](*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any compile failure: run eagerly instead
            warnings.warn(f"torch.compile of {name} failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                          "running it uncompiled", RuntimeWarning, stacklevel=2)
            state["fn"] = fn
            return fn(*args, **kwargs)

    return call
