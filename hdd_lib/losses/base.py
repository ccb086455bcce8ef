"""The matching-loss interface shared by DM, HDD and GeoDM, and the ``get_loss`` registry.

A matching loss sees all classes at once: real features ``[C, N, D]`` and synthetic features
``[C, M, D]``; ``per_class`` returns ``[C]`` and calling the loss returns their sum (a scalar).
"""

from __future__ import annotations

from typing import Callable, TypeVar

import torch
from torch import nn

__all__ = ["MatchingLoss", "check_features", "register_loss", "get_loss", "available_losses"]


def check_features(real: torch.Tensor, syn: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``real`` is ``[C, N, D]`` and ``syn`` is ``[C, M, D]``."""
    for name, t in (("real", real), ("syn", syn)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")
        if t.dim() != 3:
            raise ValueError(f"{name} must have shape [C, N, D] (3 dims), got shape {tuple(t.shape)}")
        if min(t.shape) == 0:
            raise ValueError(f"{name} must be non-empty, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if real.shape[0] != syn.shape[0]:
        raise ValueError(
            f"real and syn must hold the same number of classes, got real C={real.shape[0]} "
            f"and syn C={syn.shape[0]}"
        )
    if real.shape[2] != syn.shape[2]:
        raise ValueError(
            f"real and syn must have the same feature size, got real D={real.shape[2]} and syn D={syn.shape[2]}"
        )


class MatchingLoss(nn.Module):
    """Base class: subclasses implement ``per_class(real, syn) -> [C]``; calling sums over classes.

    Losses are modules so that learnable geometry (GeoDM's curvatures and weights) is a parameter.
    The returned value has ``syn``'s dtype even where the math runs in float64.
    """

    name: str = "base"

    def per_class(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
        check_features(real, syn)
        return self.per_class(real, syn).sum().to(syn.dtype)


_REGISTRY: dict[str, Callable[..., MatchingLoss]] = {}

L = TypeVar("L", bound=type)


def register_loss(name: str) -> Callable[[L], L]:
    """Class decorator adding a loss to the registry under a lower-case ``name``."""

    def wrap(cls: L) -> L:
        if name in _REGISTRY:
            raise ValueError(f"loss {name!r} is already registered")
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return wrap


def available_losses() -> list[str]:
    """Names accepted by :func:`get_loss`."""
    return sorted(_REGISTRY)


def get_loss(name: str, **kwargs) -> MatchingLoss:
    """Build the matching loss registered as ``name`` with keyword settings ``kwargs``."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(available_losses())}") from None
    return factory(**kwargs)
