r"""The sphere of radius :math:`\sqrt{k}` used by GeoDM's spherical factor, as a thin layer over geoopt.

Points satisfy :math:`\langle x, x\rangle = k`, ``k > 0`` (radius :math:`\sqrt{k}`, curvature :math:`+1/k`);
geoopt's unit ``Sphere`` does the radial projection. ``k`` is keyword-only as in :mod:`hdd_lib.geometry`;
:func:`project` casts features to ``dtype`` (float64 by default).
"""

from __future__ import annotations

import warnings

import torch

from .geometry import as_curvature, prepare, safe_sqrt

with warnings.catch_warnings():  # geoopt scripts its kernels with the deprecated torch.jit
    warnings.simplefilter("ignore", FutureWarning)
    from geoopt import Sphere

__all__ = ["MIN_NORM", "project", "centroid", "dist", "pairwise_dist"]

#: Vectors shorter than this have no direction; :func:`project` and :func:`centroid` send them to
#: the "north pole" :math:`R e_1` (an arbitrary but fixed point), with zero gradient.
MIN_NORM = 1e-30

_UNIT_SPHERE = Sphere()


def _direction(v: torch.Tensor) -> torch.Tensor:
    """Unit vector ``v / |v|`` along the last dim; ``e_1`` where ``|v| < MIN_NORM`` (no NaN, no inf)."""
    small = torch.linalg.vector_norm(v, dim=-1, keepdim=True) < MIN_NORM
    pole = torch.zeros_like(v)
    pole[..., 0] = 1.0
    return _UNIT_SPHERE.projx(torch.where(small, pole, v))


def project(feat: torch.Tensor, *, k: float | torch.Tensor = 1.0,
            dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    r"""Radially project features ``[..., D]`` onto the sphere of radius :math:`\sqrt{k}`:

    .. math:: x = \sqrt{k}\,\frac{f}{|f|} \qquad (x = \sqrt{k}\, e_1 \text{ if } f = 0)"""
    feat, k = prepare(feat, k=k, dtype=dtype)
    return torch.sqrt(k) * _direction(feat)


def centroid(x: torch.Tensor, *, k: float | torch.Tensor = 1.0, dim: int = -2) -> torch.Tensor:
    r"""Spherical centroid of points ``x`` along ``dim`` (not the last one): the Euclidean mean renormalised to the
    sphere (closed form, not a Karcher mean; a zero mean maps to :math:`\sqrt{k}\,e_1`):

    .. math:: \bar x = \frac{1}{N}\sum_i x_i, \qquad c = \sqrt{k}\,\frac{\bar x}{|\bar x|}"""
    k = as_curvature(k, x)
    return torch.sqrt(k) * _direction(x.mean(dim=dim))


def dist(x: torch.Tensor, y: torch.Tensor, *, k: float | torch.Tensor = 1.0, keepdim: bool = False,
         dim: int = -1) -> torch.Tensor:
    r"""Great-circle distance on the sphere of radius :math:`R = \sqrt{k}` (not squared), in the second form: full
    precision for close and antipodal points, 0 (finite gradient) at ``x == y``.

    .. math:: d_S(x, y) = R \arccos\frac{\langle x, y\rangle}{R^2} = 2R\,\operatorname{atan2}(|x - y|, |x + y|)
    """
    k = as_curvature(k, x)
    a, b = (torch.linalg.vector_norm(v, dim=dim, keepdim=keepdim) for v in (x - y, x + y))
    return 2.0 * torch.sqrt(k) * torch.atan2(a, b)


def pairwise_dist(x: torch.Tensor, y: torch.Tensor, *, k: float | torch.Tensor = 1.0) -> torch.Tensor:
    r"""All geodesic distances ``[..., N, M]`` between ``x [..., N, D]`` and ``y [..., M, D]`` by one matmul of the unit
    vectors :math:`u = x/R`, :math:`v = y/R`, :math:`c = u^\top v` (close pairs lose precision, about
    :math:`R\sqrt{\text{eps}}`: use :func:`dist` for elementwise pairs):

    .. math:: d_S(x_i, y_j) = 2R\,\operatorname{atan2}\big(\sqrt{2 - 2c_{ij}},\; \sqrt{2 + 2c_{ij}}\big)"""
    k = as_curvature(k, x)
    r = torch.sqrt(k)
    c = (x / r) @ (y / r).transpose(-1, -2)
    return 2.0 * r * torch.atan2(safe_sqrt(2.0 - 2.0 * c), safe_sqrt(2.0 + 2.0 * c))
