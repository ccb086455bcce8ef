"""The matching-loss interface and the ``LOSSES`` registry.

A loss sees real ``[C, N, D]`` and synthetic ``[C, M, D]`` features; ``per_class`` returns ``[C]``, calling
sums them (in ``syn``'s dtype). A loss is one file: a :class:`MatchingLoss` subclass with a ``Settings``
dataclass, registered with ``@LOSSES.register("name", label="Label")``; the loop uses only the hooks
:meth:`~MatchingLoss.learned_parameters`, :meth:`~MatchingLoss.resample` (the iteration's random draws)
and :meth:`~MatchingLoss.log_values`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import Registry, Settings, from_dict

__all__ = ["LOSSES", "MatchingLoss", "SumLoss", "check_features", "get_loss", "build_loss", "available_losses"]

LOSSES = Registry("loss", __package__)


def check_features(real: torch.Tensor, syn: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``real`` is ``[C, N, D]`` and ``syn`` is ``[C, M, D]`` (floating, non-empty)."""
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
        raise ValueError(f"real and syn must hold the same number of classes, got real C={real.shape[0]} "
                         f"and syn C={syn.shape[0]}")
    if real.shape[2] != syn.shape[2]:
        raise ValueError(f"real and syn must have the same feature size, got real D={real.shape[2]} and syn D={syn.shape[2]}")


@dataclass(frozen=True)
class NoSettings(Settings):
    """A loss without arguments."""


class MatchingLoss(nn.Module):
    """Base class: subclasses implement ``per_class(real, syn) -> [C]``; calling sums over classes. Built with keyword
    settings (``HDDLoss(k=2.0)``) or a ``Settings`` instance, validated into ``self.settings``."""

    name: str = "base"
    label: str = "base"
    Settings: type[Settings] = NoSettings
    #: The loop ascends (True) or descends (False) the loss in :meth:`learned_parameters`.
    ascent: bool = False

    def __init__(self, settings: Settings | None = None, /, **kwargs: Any) -> None:
        super().__init__()
        if settings is None:
            settings = from_dict(self.Settings, kwargs)
        elif not isinstance(settings, self.Settings):
            raise ValueError(f"settings must be a {self.Settings.__name__}, got {type(settings).__name__}")
        elif kwargs:
            settings = from_dict(self.Settings, {**{k: getattr(settings, k) for k in settings.__dataclass_fields__}, **kwargs})
        self.settings = settings

    def per_class(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
        check_features(real, syn)
        return self.per_class(real, syn).sum().to(syn.dtype)

    def learned_parameters(self) -> list[nn.Parameter]:
        """Parameters of the loss itself that the loop optimises (none by default)."""
        return []

    def resample(self, generator: torch.Generator) -> None:
        """Draw this iteration's random quantities from the run's CPU generator (none by default)."""

    def log_values(self) -> dict[str, torch.Tensor]:
        """Detached 0-d tensors logged every iteration (none by default)."""
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in vars(self.settings).items())


class SumLoss(MatchingLoss):
    """The sum of several matching losses (a method whose ``loss`` is a list)."""

    def __init__(self, terms: list[MatchingLoss]) -> None:
        super().__init__()
        self.terms = nn.ModuleList(terms)
        self.label = "+".join(t.label for t in terms)

    def per_class(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
        return sum(t.per_class(real, syn).to(syn.dtype) for t in self.terms)

    def learned_parameters(self) -> list[nn.Parameter]:
        if any(t.ascent for t in self.terms if t.learned_parameters()):
            raise ValueError("a summed loss cannot ascend its own parameters")
        return [p for t in self.terms for p in t.learned_parameters()]

    def resample(self, generator: torch.Generator) -> None:
        for t in self.terms:
            t.resample(generator)

    def log_values(self) -> dict[str, torch.Tensor]:
        return {f"{t.name}.{k}" if len(self.terms) > 1 else k: v for t in self.terms for k, v in t.log_values().items()}


def available_losses() -> list[str]:
    """Names accepted by :func:`get_loss`."""
    return LOSSES.names()


def get_loss(name: str, **settings: Any) -> MatchingLoss:
    """The loss registered as ``name``, built with keyword ``settings`` (validated by its ``Settings``)."""
    return LOSSES.get(name)(**settings)


def build_loss(spec: dict[str, Any] | list[dict[str, Any]]) -> MatchingLoss:
    """A loss from a config's ``{"name": ..., **settings}`` mapping, or the sum of a list of them."""
    if isinstance(spec, (list, tuple)):
        return SumLoss([build_loss(s) for s in spec]) if len(spec) > 1 else build_loss(spec[0])
    spec = dict(spec)
    return get_loss(spec.pop("name"), **spec)
