r"""The Lorentz (hyperboloid) model used by HDD, as a thin layer over geoopt.

Convention (geoopt's ``Lorentz``): :math:`\langle x, x\rangle_L = -k`, ``k > 0``, with
:math:`\langle u, v\rangle_L = -u_0 v_0 + \sum_{i \ge 1} u_i v_i`; curvature :math:`-1/k`, origin
:math:`o = (\sqrt{k}, 0, \dots, 0)`. ``k`` is keyword-only, a float or a (learnable) tensor; functions
work in their input's dtype, :func:`lift` casts to ``dtype`` (float64 by default).
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch

with warnings.catch_warnings():  # geoopt scripts its kernels with the deprecated torch.jit
    warnings.simplefilter("ignore", FutureWarning)
    from geoopt.manifolds.lorentz import math as lmath

__all__ = ["EXP_MAX_RADIUS", "as_curvature", "inner", "lift", "centroid", "dist", "arcosh1p", "to_poincare",
           "pairwise_dist", "prepare", "safe_sqrt"]

Mapping = Literal["expmap0", "lift"]

#: Radius clamp of the HDD authors' modified geoopt (``EXP_MAX_NORM``): :math:`|f| / \sqrt{k} \le 10` before exp.
EXP_MAX_RADIUS = 10.0

#: Offset inside the square root of :func:`arcosh1p`, per dtype: a finite gradient where two points
#: coincide; a distance ``d`` changes by about ``sqrt(eps) / d`` relative (1e-15 / d in float64).
_SQRT_EPS = {torch.float64: 1e-30, torch.float32: 1e-20, torch.float16: 1e-7, torch.bfloat16: 1e-7}

#: Smallest feature norm used as a divisor when the tangent vector is rescaled.
_MIN_NORM = 1e-30


def as_curvature(k: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``k`` as a tensor on ``like``'s device and dtype (gradients kept); ``ValueError`` if ``k <= 0``; a float becomes
    a tensor by a fill kernel (no GPU sync); a CUDA tensor is not checked (reading it back stalls)."""
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


def lift(feat: torch.Tensor, *, k: float | torch.Tensor = 1.0, how: Mapping = "expmap0",
         clamp: float | None = EXP_MAX_RADIUS, dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    r"""Map Euclidean features ``[..., D]`` onto the hyperboloid, giving points ``[..., D+1]`` of ``dtype``.

    .. math::
        \text{expmap0 (HDD): } x = \operatorname{proj}\big(\exp_o((0, s f))\big),\;
        s = \min\Big(1, \frac{\text{clamp}\,\sqrt{k}}{|f|}\Big); \qquad
        \text{lift: } x = \operatorname{proj}((0, f)) = (\sqrt{k + |f|^2}, f)

    (geoopt's ``expmap0``/``projx``; ``clamp=None``: no rescaling, released geoopt, overflows for large norms)."""
    feat, k = prepare(feat, k=k, dtype=dtype)
    u = torch.nn.functional.pad(feat, (1, 0))
    if how == "lift":
        return lmath.project(u, k=k)
    if how != "expmap0":
        raise ValueError(f"how must be 'expmap0' or 'lift', got how={how!r}")
    if clamp is not None:
        if not clamp > 0:
            raise ValueError(f"clamp must be > 0 or None, got clamp={clamp}")
        u = u * torch.clamp_max(clamp * torch.sqrt(k) / feat.norm(dim=-1, keepdim=True).clamp_min(_MIN_NORM), 1.0)
    return lmath.project(lmath.expmap0(u, k=k), k=k)


def centroid(x: torch.Tensor, *, k: float | torch.Tensor = 1.0, dim: int = -2) -> torch.Tensor:
    r"""Closed-form Lorentzian centroid of ``x`` along ``dim`` (not a Karcher mean), :math:`\langle c, c\rangle_L = -k`:

    .. math:: \bar z = \frac{1}{N}\sum_i x_i, \qquad
              c = \frac{\sqrt{k}\,\bar z}{\sqrt{\max(-\langle \bar z, \bar z\rangle_L, k)}}

    (on the upper sheet :math:`-\langle \bar z, \bar z\rangle_L \ge k`: the floor only absorbs rounding)."""
    k = as_curvature(k, x)
    z = x.mean(dim=dim)
    q = torch.maximum(-lmath.inner(z, z, keepdim=True), k)
    return torch.sqrt(k) * z / torch.sqrt(q)


def arcosh1p(delta: torch.Tensor) -> torch.Tensor:
    r"""Stable :math:`\operatorname{arcosh}(1 + \delta)` for :math:`\delta \ge 0` with ``log1p``, without forming
    :math:`(1+\delta)^2 - 1` (the root is :func:`safe_sqrt`):

    .. math:: \operatorname{arcosh}(1+\delta) = \log\!\big(1 + \delta + \sqrt{\delta(\delta + 2)}\big)
    """
    delta = delta.clamp_min(0.0)
    return torch.log1p(delta + safe_sqrt(delta * (delta + 2.0)))


def safe_sqrt(s: torch.Tensor) -> torch.Tensor:
    r""":math:`\sqrt{s+\epsilon}-\sqrt{\epsilon}` for ``s >= 0`` (clamped): exactly 0 at 0, finite gradient."""
    eps = _SQRT_EPS.get(s.dtype, 1e-20)
    return torch.sqrt(s.clamp_min(0.0) + eps) - math.sqrt(eps)


def dist(x: torch.Tensor, y: torch.Tensor, *, k: float | torch.Tensor = 1.0, keepdim: bool = False,
         dim: int = -1) -> torch.Tensor:
    r"""Geodesic distance on the hyperboloid (not squared), in the second form: no cancellation, 0 at ``x == y``.

    .. math:: d_L(x, y) = \sqrt{k}\,\operatorname{arcosh}(-\langle x, y\rangle_L / k)
              = \sqrt{k}\,\operatorname{arcosh}\big(1 + \langle x-y, x-y\rangle_L / 2k\big)
    """
    k = as_curvature(k, x)
    diff = x - y
    return torch.sqrt(k) * arcosh1p(lmath.inner(diff, diff, keepdim=keepdim, dim=dim) / (2.0 * k))


def to_poincare(x: torch.Tensor, *, k: float | torch.Tensor = 1.0, dim: int = -1) -> torch.Tensor:
    r"""Project hyperboloid points to the Poincaré ball of radius :math:`\sqrt{k}`, any batch shape (geoopt's
    ``lorentz_to_poincare`` fails on 3-D input): :math:`p = \sqrt{k}\, x_{1:} / (x_0 + \sqrt{k})`."""
    k = as_curvature(k, x)
    return torch.sqrt(k) * x.narrow(dim, 1, x.size(dim) - 1) / (x.narrow(dim, 0, 1) + torch.sqrt(k))


def pairwise_dist(x: torch.Tensor, y: torch.Tensor, *, k: float | torch.Tensor = 1.0) -> torch.Tensor:
    r"""All geodesic distances ``[..., N, M]`` between points ``x [..., N, D+1]``, ``y [..., M, D+1]`` by one matmul:

    .. math:: d_L(x_i, y_j) = \sqrt{k}\,\operatorname{arcosh}(1 + \delta_{ij}), \quad
              \delta_{ij} = -\langle x_i, y_j\rangle_L / k - 1

    Close pairs far from the origin lose precision (error about :math:`x_0 y_0 / k` eps): use float64, :func:`dist`."""
    k = as_curvature(k, x)
    delta = (x[..., :1] @ y[..., :1].transpose(-1, -2) - x[..., 1:] @ y[..., 1:].transpose(-1, -2)) / k - 1.0
    return torch.sqrt(k) * arcosh1p(delta)


# ----------------------------------------------------------------------------- the Poincaré-disk picture
import numpy as np  # noqa: E402

__all__ += ["disk_radius", "feature_norm_stats", "poincare_disk"]

#: Directions shorter than this (after centring) get polar angle 0.
_MIN_DIRECTION = 1e-12


def disk_radius(r, *, k: float = 1.0):
    r"""Unit-disk radius :math:`\rho = \tanh(r / 2\sqrt{k})` of a point at hyperbolic distance ``r`` from
    the origin (the norm of its :func:`to_poincare` point divided by the ball radius :math:`\sqrt{k}`)."""
    return np.tanh(np.asarray(r, dtype=np.float64) / (2.0 * math.sqrt(k)))


def feature_norm_stats(feat, *, k: float = 1.0, clamp: float | None = EXP_MAX_RADIUS) -> dict:
    r"""How many features ``[..., D]`` the ``expmap0`` clamp saturates (:math:`|f| \ge \text{clamp}\sqrt{k}`):
    ``norms``, ``threshold`` (``inf`` without clamp), ``fraction_saturated``, ``count`` and norm statistics."""
    if not k > 0:
        raise ValueError(f"k must be > 0, got k={k}")
    f = torch.as_tensor(feat).detach().cpu().double()
    norms = f.norm(dim=-1).numpy()
    flat = norms.reshape(-1)
    threshold = float(clamp) * math.sqrt(k) if clamp is not None else math.inf
    stat = lambda fn: float(fn(flat)) if flat.size else math.nan  # noqa: E731
    return {"norms": norms, "threshold": threshold, "fraction_saturated": stat(lambda a: (a >= threshold).mean()),
            "count": int(flat.size), "mean": stat(np.mean), "median": stat(np.median), "min": stat(np.min),
            "max": stat(np.max), **{f"q{round(100 * q):02d}": stat(lambda a, q=q: np.quantile(a, q))
                                    for q in (0.05, 0.25, 0.75, 0.95)}}


def _principal_axes(u: torch.Tensor, *, center: bool) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Two leading principal axes ``W [D, 2]`` of rows ``u [N, D]`` (largest entry > 0), the mean, explained share."""
    d = u.shape[-1]
    mean = u.mean(0) if center and len(u) else u.new_zeros(d)
    w = u.new_zeros(d, 2)
    if len(u) == 0 or float((u - mean).abs().max()) == 0.0:
        w[: min(d, 2), : min(d, 2)] = torch.eye(min(d, 2), dtype=u.dtype)
        return w, mean, 0.0
    _, s, vh = torch.linalg.svd(u - mean, full_matrices=False)
    w[:, : min(2, len(vh))] = vh[:2].T
    w = w * torch.where(w[w.abs().argmax(0), torch.arange(2)] < 0, -1.0, 1.0).to(w)
    total = float((s**2).sum())
    return w, mean, float((s[:2] ** 2).sum()) / total if total > 0 else 0.0


def _directions(x: torch.Tensor) -> torch.Tensor:
    """Unit spatial directions ``x[1:] / |x[1:]|`` of hyperboloid points (zero at the origin)."""
    n = x[..., 1:].norm(dim=-1, keepdim=True)
    return torch.where(n > 0, x[..., 1:] / n.clamp_min(1e-300), torch.zeros_like(x[..., 1:]))


def _to_disk(x: torch.Tensor, w: torch.Tensor, mean: torch.Tensor, k: float):
    r"""Unit-disk points ``[..., 2]``, distances to the origin :math:`\sqrt{k}\operatorname{arsinh}(|x_{1:}|/\sqrt{k})`
    and in-plane fractions of hyperboloid points ``x [..., D+1]``."""
    r = math.sqrt(k) * torch.asinh(x[..., 1:].norm(dim=-1) / math.sqrt(k))
    a = _directions(x) - mean
    p = a @ w
    pn, an = p.norm(dim=-1, keepdim=True), a.norm(dim=-1, keepdim=True)
    unit = torch.where(pn > _MIN_DIRECTION, p / pn.clamp_min(_MIN_DIRECTION), torch.tensor([1.0, 0.0], dtype=p.dtype))
    frac = torch.where(an > _MIN_DIRECTION, pn / an.clamp_min(_MIN_DIRECTION), torch.zeros_like(an))
    return (torch.tanh(r / (2.0 * math.sqrt(k))).unsqueeze(-1) * unit).numpy(), r.numpy(), frac.squeeze(-1).numpy()


def poincare_disk(real_feat, syn_feat, *, k: float = 1.0, how: Mapping = "expmap0",
                  clamp: float | None = EXP_MAX_RADIUS, scale: float | None = None, center: bool = True) -> dict:
    r"""Real ``[C, N, D]`` and synthetic ``[C, M, D]`` (or None) features (times ``scale``, :func:`lift`-ed) and their
    Lorentzian centroids in the unit Poincaré disk: radius exact, direction approximate,

    .. math:: \rho = \tanh\big(d_L(o, x) / 2\sqrt{k}\big), \qquad \text{direction } W^\top(u - \bar u),\;
              u = x_{1:}/|x_{1:}|

    (:math:`W` the two leading principal axes of the real directions, :math:`\bar u` their mean, 0 with
    ``center=False``). Returns the points, labels, ``*_dist0``, ``centroid_dist [C]``, ``saturated*``, ``max_radius``,
    ``max_disk_radius``, ``explained_variance``, ``plane_fraction``, the settings; no ``syn*`` without ``syn_feat``."""
    if not k > 0:
        raise ValueError(f"k must be > 0, got k={k}")
    real = torch.as_tensor(real_feat).detach().cpu().double()
    syn = real.new_zeros(real.shape[0], 0, *real.shape[2:]) if syn_feat is None else \
        torch.as_tensor(syn_feat).detach().cpu().double()
    if real.dim() != 3 or syn.dim() != 3:
        raise ValueError(f"features must be [C, N, D]; got real {tuple(real.shape)}, syn {tuple(syn.shape)}")
    if real.shape[0] != syn.shape[0] or real.shape[2] != syn.shape[2]:
        raise ValueError(f"real {tuple(real.shape)} and syn {tuple(syn.shape)} need the same C and D")
    (C, N, D), M = real.shape, syn.shape[1]
    if scale is not None:
        real, syn = real * float(scale), syn * float(scale)
    threshold = float(clamp) * math.sqrt(k) if how == "expmap0" and clamp is not None else math.inf
    x_real, x_syn = lift(real, k=k, how=how, clamp=clamp), lift(syn, k=k, how=how, clamp=clamp)
    nan = torch.full((C, D + 1), math.nan, dtype=torch.float64)
    c_real, c_syn = centroid(x_real, k=k) if N else nan, centroid(x_syn, k=k) if M else nan
    w, mean, explained = _principal_axes(_directions(x_real).reshape(-1, D), center=center)
    (p_real, r_real, f_real), (p_syn, r_syn, _) = _to_disk(x_real, w, mean, k), _to_disk(x_syn, w, mean, k)
    (pc_real, rc_real, _), (pc_syn, rc_syn, _) = _to_disk(c_real, w, mean, k), _to_disk(c_syn, w, mean, k)
    sat_real, sat_syn = (real.norm(dim=-1) >= threshold).numpy(), (syn.norm(dim=-1) >= threshold).numpy()
    frac = lambda a: float(a.mean()) if a.size else math.nan  # noqa: E731
    labels = lambda n: np.repeat(np.arange(C)[:, None], n, axis=1)  # noqa: E731
    out = {"real": p_real, "real_labels": labels(N), "real_centroids": pc_real, "real_dist0": r_real,
           "real_centroid_dist0": rc_real, "saturated_real": frac(sat_real),
           "syn": p_syn, "syn_labels": labels(M), "syn_centroids": pc_syn, "syn_dist0": r_syn,
           "syn_centroid_dist0": rc_syn, "saturated_syn": frac(sat_syn),
           "centroid_dist": dist(c_real, c_syn, k=k).numpy() if N and M else np.full(C, math.nan),
           "saturated": frac(np.concatenate([sat_real.ravel(), sat_syn.ravel()])), "max_radius": threshold,
           "max_disk_radius": float(disk_radius(threshold, k=k)) if math.isfinite(threshold) else 1.0,
           "explained_variance": explained, "plane_fraction": frac(f_real),
           "k": float(k), "how": how, "clamp": clamp, "scale": scale, "center": center}
    return out if syn_feat is not None else {key: v for key, v in out.items()
                                             if not key.startswith("syn") and key != "centroid_dist"}
