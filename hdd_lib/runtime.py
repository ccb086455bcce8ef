"""Run-time choices shared by distillation and evaluation: device, seeding, mixed precision."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "autocast", "use_bf16"]


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


def autocast(enabled: bool, device: torch.device):
    """bf16 autocast on ``device`` when ``enabled``; norms and losses stay in float32 (autocast's lists)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
