r"""Hyperbolic Dataset Distillation (Li et al., NeurIPS 2025): Lorentzian centroid matching.

Each class's features are lifted onto the hyperboloid (curvature :math:`-1/k`; :math:`\phi` = ``expmap0``
clamped at radius 10, or ``lift``) and the loss is the geodesic distance (not squared) of the real and
synthetic closed-form Lorentzian centroids, in float64:

.. math:: \mathcal{L}_{HDD} = \sum_{c=1}^{C} \lambda \; d_L\big(\bar c(\phi(F^{real}_c)),\, \bar c(\phi(F^{syn}_c))\big)

Authors' settings: DM+HDD ``k=1, lam=20, how="expmap0"``; IDM+HDD CIFAR-10 ``k=2.4, lam=100``,
CIFAR-100 ``k=2, lam=100, how="lift"``, Tiny-ImageNet ``k=0.5, lam=500, how="lift"`` (float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch

from .. import geometry
from ..config import NonNegative, Positive, Range, Settings
from .base import LOSSES, MatchingLoss

__all__ = ["HDDLoss"]


@dataclass(frozen=True)
class HDDSettings(Settings):
    """``k`` (curvature ``-1/k``), weight ``lam``, map ``how``, radius ``clamp`` (None: unclamped), math ``dtype``."""

    k: Annotated[float, Range(ge=1e-6, le=1e6)] = 1.0
    lam: NonNegative = 20.0
    how: geometry.Mapping = "expmap0"
    clamp: Positive | None = geometry.EXP_MAX_RADIUS
    dtype: Literal["float64", "float32"] = "float64"


@LOSSES.register("hdd", label="HDD")
class HDDLoss(MatchingLoss):
    """HDD loss; ``per_class`` returns :math:`\\lambda\\, d_L(c^{real}_c, c^{syn}_c)`, shape ``[C]``."""

    Settings = HDDSettings

    def centroids(self, feat: torch.Tensor) -> torch.Tensor:
        """Lorentzian centroid per class: ``[C, N, D] -> [C, D+1]`` in ``settings.dtype``."""
        s = self.settings
        x = geometry.lift(feat, k=s.k, how=s.how, clamp=s.clamp, dtype=getattr(torch, s.dtype))
        return geometry.centroid(x, k=s.k)

    def per_class(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
        return self.settings.lam * geometry.dist(self.centroids(real), self.centroids(syn), k=self.settings.k)
