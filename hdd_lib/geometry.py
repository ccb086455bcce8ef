r"""The Lorentz (hyperboloid) model used by HDD, as a thin layer over geoopt.

Convention (geoopt's ``Lorentz``, stated once here and used everywhere):
points :math:`x \in \mathbb{R}^{D+1}` satisfy :math:`\langle x, x\rangle_L = -k` with
:math:`\langle u, v\rangle_L = -u_0 v_0 + \sum_{i \ge 1} u_i v_i`, ``k > 0``; the sectional
curvature is :math:`-1/k` and the origin is :math:`o = (\sqrt{k}, 0, \dots, 0)`.

Every function takes ``k`` keyword-only, as a float or a (possibly learnable) tensor, and works in
the dtype of its input; :func:`lift` casts features to ``dtype`` (float64 by default) at the
boundary, which is where HDD needs the precision.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch

with warnings.catch_warnings():  # geoopt scripts its kernels with the deprecated torch.jit
    warnings.simplefilter("ignore", FutureWarning)
    from geoopt.manifolds.lorentz import math as lmath

__all__ = [
    "EXP_MAX_RADIUS",
    "as_curvature",
    "inner",
    "lift",
    "centroid",
    "dist",
    "arcosh1p",
    "to_poincare",
    "pairwise_dist",
    "prepare",
]

Mapping = Literal["expmap0", "lift"]

#: Radius clamp of the HDD authors' modified geoopt (``EXP_MAX_NORM``): the tangent vector is
#: rescaled so that :math:`|f| / \sqrt{k} \le 10` before the exponential map.
EXP_MAX_RADIUS = 10.0

#: Offset inside the square root of :func:`arcosh1p`, per dtype. It keeps the gradient finite where
#: two points coincide (the distance is not differentiable there); the relative change of a
#: distance ``d`` is about ``sqrt(eps) / d`` (1e-15 / d in float64).
_SQRT_EPS = {torch.float64: 1e-30, torch.float32: 1e-20, torch.float16: 1e-7, torch.bfloat16: 1e-7}

#: Smallest feature norm used as a divisor when the tangent vector is rescaled.
_MIN_NORM = 1e-30


def as_curvature(k: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Return ``k`` as a tensor on ``like``'s device and dtype (gradients preserved).

    Raises ``ValueError`` if ``k <= 0`` (the model is undefined there). A float becomes a tensor
    through a fill kernel (no host-to-device copy, so no synchronisation on a GPU); a CUDA tensor
    is not checked, since reading it back would stall the GPU pipeline.
    """
    if isinstance(k, torch.Tensor):
        if k.device.type == "cpu":
            kd = k.detach()
            if not bool(torch.all((kd > 0) & torch.isfinite(kd))):
                raise ValueError(f"k must be finite and > 0, got k={kd.tolist()}")
        return k.to(device=like.device, dtype=like.dtype)
    k = float(k)
    if not k > 0 or not math.isfinite(k):
        raise ValueError(f"k must be a finite number > 0, got k={k}")
    return torch.full((), k, device=like.device, dtype=like.dtype)


def prepare(feat: torch.Tensor, *, k: float | torch.Tensor, dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Check features ``[..., D]``, cast them to ``dtype`` (``None``: keep) and ``k`` to a tensor beside them."""
    if feat.dim() < 1:
        raise ValueError(f"feat must have at least one dimension, got shape {tuple(feat.shape)}")
    if dtype is not None:
        feat = feat.to(dtype)
    return feat, as_curvature(k, feat)


def inner(u: torch.Tensor, v: torch.Tensor, *, keepdim: bool = False, dim: int = -1) -> torch.Tensor:
    r"""Minkowski inner product :math:`\langle u, v\rangle_L = -u_0 v_0 + \sum_i u_i v_i` (geoopt)."""
    return lmath.inner(u, v, keepdim=keepdim, dim=dim)


def lift(
    feat: torch.Tensor,
    *,
    k: float | torch.Tensor = 1.0,
    how: Mapping = "expmap0",
    clamp: float | None = EXP_MAX_RADIUS,
    dtype: torch.dtype | None = torch.float64,
) -> torch.Tensor:
    r"""Map Euclidean features ``[..., D]`` onto the hyperboloid, giving points ``[..., D+1]``.

    ``how="expmap0"`` (HDD's default): the tangent vector :math:`u = (0, f)` at the origin is
    rescaled to Lorentz norm at most :math:`\text{clamp}\cdot\sqrt{k}` and sent through geoopt's
    ``expmap0`` followed by ``projx``:

    .. math::
        x = \operatorname{proj}\Big(\exp_o\big((0, s f)\big)\Big), \quad
        s = \min\Big(1, \frac{\text{clamp}\,\sqrt{k}}{|f|}\Big),
        \quad \exp_o(u) = \Big(\sqrt{k}\cosh\tfrac{|f|}{\sqrt{k}},\;
        \sqrt{k}\sinh\tfrac{|f|}{\sqrt{k}}\,\tfrac{f}{|f|}\Big).

    ``clamp=None`` disables the rescaling (released geoopt's behaviour, which overflows for large
    norms). ``how="lift"``: :math:`x = \operatorname{proj}((0, f)) = (\sqrt{k + |f|^2}, f)`, no clamp.

    Parameters
    ----------
    feat : tensor ``[..., D]``
    k : float or tensor, keyword-only; ``k > 0``
    how : ``"expmap0"`` or ``"lift"``
    clamp : float or None, maximal radius :math:`|f|/\sqrt{k}` (HDD: 10)
    dtype : dtype the points are computed in (float64 by default; ``None`` keeps ``feat``'s)
    """
    feat, k = prepare(feat, k=k, dtype=dtype)
    u = torch.nn.functional.pad(feat, (1, 0))
    if how == "lift":
        return lmath.project(u, k=k)
    if how != "expmap0":
        raise ValueError(f"how must be 'expmap0' or 'lift', got how={how!r}")
    if clamp is not None:
        if not clamp > 0:
            raise ValueError(f"clamp must be > 0 or None, got clamp={clamp}")
        norm = feat.norm(dim=-1, keepdim=True).clamp_min(_MIN_NORM)
        scale = torch.clamp_max(clamp * torch.sqrt(k) / norm, 1.0)
        u = u * scale
    return lmath.project(lmath.expmap0(u, k=k), k=k)


def centroid(x: torch.Tensor, *, k: float | torch.Tensor = 1.0, dim: int = -2) -> torch.Tensor:
    r"""Closed-form Lorentzian centroid of points ``x`` along ``dim`` (not a Karcher mean).

    .. math::
        \bar z = \frac{1}{N}\sum_i x_i, \qquad
        c = \frac{\sqrt{k}\,\bar z}{\sqrt{|\langle \bar z, \bar z\rangle_L|}}

    so that :math:`\langle c, c\rangle_L = -k`. For points on the upper sheet
    :math:`|\langle \bar z, \bar z\rangle_L| \ge k`; the denominator is floored at ``k`` so that
    rounding can never divide by (almost) zero.

    Parameters
    ----------
    x : tensor ``[..., N, D+1]`` (with the default ``dim=-2``)
    k : float or tensor, keyword-only
    dim : the dimension holding the N points

    Returns
    -------
    tensor ``[..., D+1]``
    """
    k = as_curvature(k, x)
    z = x.mean(dim=dim)
    q = torch.maximum(-lmath.inner(z, z, keepdim=True), k)
    return torch.sqrt(k) * z / torch.sqrt(q)


def arcosh1p(delta: torch.Tensor) -> torch.Tensor:
    r"""Stable :math:`\operatorname{arcosh}(1 + \delta)` for :math:`\delta \ge 0`.

    .. math::
        \operatorname{arcosh}(1+\delta) = \log\!\big(1 + \delta + \sqrt{\delta(\delta + 2)}\big)

    evaluated with ``log1p`` and without forming :math:`(1+\delta)^2 - 1`, so that close points keep
    full relative precision. The root is :math:`\sqrt{s + \epsilon} - \sqrt{\epsilon}` with a tiny
    dtype-dependent :math:`\epsilon`: exactly zero at :math:`\delta = 0` with a finite gradient.
    """
    delta = delta.clamp_min(0.0)
    eps = _SQRT_EPS.get(delta.dtype, 1e-20)
    root = torch.sqrt(delta * (delta + 2.0) + eps) - math.sqrt(eps)
    return torch.log1p(delta + root)


def dist(
    x: torch.Tensor, y: torch.Tensor, *, k: float | torch.Tensor = 1.0, keepdim: bool = False, dim: int = -1
) -> torch.Tensor:
    r"""Geodesic distance on the hyperboloid (not squared).

    .. math::
        d_L(x, y) = \sqrt{k}\,\operatorname{arcosh}\!\Big(-\frac{\langle x, y\rangle_L}{k}\Big)
                  = \sqrt{k}\,\operatorname{arcosh}\!\Big(1 + \frac{\langle x-y, x-y\rangle_L}{2k}\Big)

    The second form (equal on the manifold) avoids the cancellation of the first for close points
    far from the origin; with :func:`arcosh1p` it is exactly zero for ``x == y``.
    """
    k = as_curvature(k, x)
    diff = x - y
    delta = lmath.inner(diff, diff, keepdim=keepdim, dim=dim) / (2.0 * k)
    return torch.sqrt(k) * arcosh1p(delta)


def to_poincare(x: torch.Tensor, *, k: float | torch.Tensor = 1.0, dim: int = -1) -> torch.Tensor:
    r"""Project hyperboloid points to the Poincaré ball of radius :math:`\sqrt{k}`.

    .. math::
        p = \frac{\sqrt{k}\, x_{1:}}{x_0 + \sqrt{k}}

    Works on any batch shape (geoopt's ``lorentz_to_poincare`` does not on 3-D input).
    """
    k = as_curvature(k, x)
    x0 = x.narrow(dim, 0, 1)
    rest = x.narrow(dim, 1, x.size(dim) - 1)
    return torch.sqrt(k) * rest / (x0 + torch.sqrt(k))


def pairwise_dist(x: torch.Tensor, y: torch.Tensor, *, k: float | torch.Tensor = 1.0) -> torch.Tensor:
    r"""All geodesic distances between hyperboloid points ``x [..., N, D+1]`` and ``y [..., M, D+1]``.

    The Minkowski inner products come from one matmul (no ``[N, M, D+1]`` intermediate):

    .. math::
        d_L(x_i, y_j) = \sqrt{k}\,\operatorname{arcosh}\!\big(1 + \delta_{ij}\big), \qquad
        \delta_{ij} = -\frac{\langle x_i, y_j\rangle_L}{k} - 1 \;(\ge 0),

    with the stable :func:`arcosh1p`. Close pairs far from the origin lose precision to the
    cancellation in :math:`\delta` (absolute error about :math:`x_0 y_0 / k` times machine eps), so
    use float64 (at HDD's radius clamp 10, :math:`x_0 y_0/k \approx 1.2\cdot 10^8`), and
    :func:`dist` for elementwise pairs.

    Returns
    -------
    tensor ``[..., N, M]``
    """
    k = as_curvature(k, x)
    spatial = x[..., 1:] @ y[..., 1:].transpose(-1, -2)
    timelike = x[..., :1] @ y[..., :1].transpose(-1, -2)
    delta = (timelike - spatial) / k - 1.0
    return torch.sqrt(k) * arcosh1p(delta)
