r"""Hyperbolic Dataset Distillation (Li et al., NeurIPS 2025): Lorentzian centroid matching.

Features of each class are lifted onto the hyperboloid of curvature :math:`-1/k`, and the loss is
the geodesic distance (not squared) between the real and synthetic Lorentzian centroids:

.. math::
    \mathcal{L}_{HDD} = \sum_{c=1}^{C} \lambda \; d_L\big(\bar c(\phi(F^{real}_c)),\,
                                                          \bar c(\phi(F^{syn}_c))\big)

with :math:`\phi` = ``expmap0`` (radius clamped at 10) or ``lift``, :math:`\bar c` the closed-form
centroid and :math:`d_L` the geodesic distance of :mod:`hdd_lib.geometry`, in float64.
Authors' settings: DM+HDD ``k=1, lam=20, how="expmap0"``; IDM+HDD CIFAR-10 ``k=2.4, lam=100``,
CIFAR-100 ``k=2, lam=100, how="lift"``, Tiny-ImageNet ``k=0.5, lam=500, how="lift"`` (float32).
"""

from __future__ import annotations

import math

import torch

from .. import geometry
from .base import MatchingLoss, register_loss

__all__ = ["HDDLoss"]


@register_loss("hdd")
class HDDLoss(MatchingLoss):
    """HDD loss; ``per_class`` returns :math:`\\lambda\\, d_L(c^{real}_c, c^{syn}_c)`, shape ``[C]``.

    Parameters
    ----------
    k : float > 0, the hyperboloid parameter (curvature ``-1/k``)
    lam : float >= 0, the weight :math:`\\lambda`
    how : ``"expmap0"`` or ``"lift"`` (see :func:`hdd_lib.geometry.lift`)
    clamp : maximal radius for ``expmap0`` (``None``: unclamped)
    dtype : dtype of the hyperbolic math (float64 by default)
    """

    def __init__(
        self,
        k: float = 1.0,
        lam: float = 20.0,
        how: geometry.Mapping = "expmap0",
        clamp: float | None = geometry.EXP_MAX_RADIUS,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        if not (isinstance(k, (int, float)) and math.isfinite(k) and k > 0):
            raise ValueError(f"k must be a finite number > 0, got k={k!r}")
        if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam must be a finite number >= 0, got lam={lam!r}")
        if how not in ("expmap0", "lift"):
            raise ValueError(f"how must be 'expmap0' or 'lift', got how={how!r}")
        if clamp is not None and not clamp > 0:
            raise ValueError(f"clamp must be > 0 or None, got clamp={clamp!r}")
        self.k, self.lam, self.how, self.clamp, self.dtype = float(k), float(lam), how, clamp, dtype

    def centroids(self, feat: torch.Tensor) -> torch.Tensor:
        """Lorentzian centroid per class: ``[C, N, D] -> [C, D+1]`` in ``self.dtype``."""
        x = geometry.lift(feat, k=self.k, how=self.how, clamp=self.clamp, dtype=self.dtype)
        return geometry.centroid(x, k=self.k)

    def per_class(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
        d = geometry.dist(self.centroids(real), self.centroids(syn), k=self.k)
        return self.lam * d

    def extra_repr(self) -> str:
        return f"k={self.k}, lam={self.lam}, how={self.how!r}, clamp={self.clamp}, dtype={self.dtype}"
