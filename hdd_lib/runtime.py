"""Run-time choices shared by distillation and evaluation: device, seeding, precision, compile."""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Callable

import torch

__all__ = ["resolve_device", "autocast", "use_bf16", "use_bf16_real", "cpu_has_bf16",
           "compiled"]

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


def use_bf16(amp: str, device: torch.device) -> bool:
    """Whether networks run under bf16 autocast: ``"auto"`` means on CUDA only."""
    return amp == "bf16" or (amp == "auto" and device.type == "cuda")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX) and oneDNN is built in."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return torch.backends.mkldnn.is_available() and any(p is not None and p() for p in probes)


def use_bf16_real(precision: str, amp: str, device: torch.device) -> bool:
    """Whether the real images' no-grad forward runs under bf16: ``"auto"``: never with ``amp="off"``, else
    as ``amp`` says, or on a CPU with native bf16 (:func:`cpu_has_bf16`)."""
    if precision != "auto":
        return precision == "bf16"
    return amp != "off" and (use_bf16(amp, device) or (device.type == "cpu" and cpu_has_bf16()))


def autocast(enabled: bool, device: torch.device):
    """bf16 autocast on ``device`` when ``enabled``; norms and losses stay in float32 (autocast's lists)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def _drop_cuda_home_note(record: logging.LogRecord) -> bool:
    """Inductor imports ``torch.utils.cpp_extension``, which logs "No CUDA runtime is found, using CUDA_HOME=..."
    with a time stamp and process id on a CUDA build without a GPU: it would make executed notebooks differ."""
    return "No CUDA runtime is found" not in record.getMessage()


def compiled(fn: Callable, *, name: str = "the network") -> Callable:
    """``torch.compile(fn, dynamic=False)`` falling back to ``fn`` for good, with one warning, where compiling
    fails. Static graphs: a run has two or three shapes/modes, and inductor makes them faster than a generic one."""
    note = logging.getLogger("torch.utils.cpp_extension")
    if _drop_cuda_home_note not in note.filters:
        note.addFilter(_drop_cuda_home_note)
    state = {"fn": torch.compile(fn, dynamic=False)}

    def call(*args, **kwargs):
        if state["fn"] is not fn:
            try:
                return state["fn"](*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - any compile failure: run eagerly instead
                warnings.warn(f"torch.compile of {name} failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                              "running it uncompiled", RuntimeWarning, stacklevel=2)
                state["fn"] = fn
        return fn(*args, **kwargs)

    return call
