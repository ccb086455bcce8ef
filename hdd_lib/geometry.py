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


# ----------------------------------------------------------------------------- the Poincaré-disk picture
import numpy as np  # noqa: E402

__all__ += ["disk_radius", "feature_norm_stats", "poincare_disk"]

#: Quantiles of the feature norms reported by :func:`feature_norm_stats` (besides the median).
_NORM_QUANTILES = (0.05, 0.25, 0.75, 0.95)
#: Directions shorter than this (after centring) get polar angle 0.
_MIN_DIRECTION = 1e-12


def disk_radius(r, *, k: float = 1.0):
    r"""Unit-disk radius :math:`\rho = \tanh(r / 2\sqrt{k})` of a point at hyperbolic distance ``r`` from
    the origin (the norm of its :func:`to_poincare` point divided by the ball radius :math:`\sqrt{k}`)."""
    return np.tanh(np.asarray(r, dtype=np.float64) / (2.0 * math.sqrt(k)))


def feature_norm_stats(feat, *, k: float = 1.0, clamp: float | None = EXP_MAX_RADIUS) -> dict:
    r"""How many features ``[..., D]`` the ``expmap0`` clamp saturates: :math:`|f| \ge \text{clamp}\sqrt{k}`
    (such a point lies at distance exactly :math:`\text{clamp}\sqrt{k}` from the origin).

    Returns ``norms`` (array ``[...]``), ``threshold`` (:math:`\text{clamp}\sqrt{k}`, ``inf`` without
    clamp), ``fraction_saturated``, ``count``, ``mean``, ``median``, ``min``, ``max``, ``q05``, ``q25``,
    ``q75``, ``q95`` (NaN when empty).
    """
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
                                    for q in _NORM_QUANTILES}}


def _principal_axes(u: torch.Tensor, *, center: bool) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Two leading principal axes ``W [D, 2]`` of the rows of ``u [N, D]`` (signs fixed so that each
    axis's largest entry is positive), the mean removed, and the share of variance they explain."""
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
    ``[...]`` and in-plane fractions ``[...]`` of hyperboloid points ``x [..., D+1]``."""
    r = math.sqrt(k) * torch.asinh(x[..., 1:].norm(dim=-1) / math.sqrt(k))
    a = _directions(x) - mean
    p = a @ w
    pn, an = p.norm(dim=-1, keepdim=True), a.norm(dim=-1, keepdim=True)
    unit = torch.where(pn > _MIN_DIRECTION, p / pn.clamp_min(_MIN_DIRECTION), torch.tensor([1.0, 0.0], dtype=p.dtype))
    frac = torch.where(an > _MIN_DIRECTION, pn / an.clamp_min(_MIN_DIRECTION), torch.zeros_like(an))
    return (torch.tanh(r / (2.0 * math.sqrt(k))).unsqueeze(-1) * unit).numpy(), r.numpy(), frac.squeeze(-1).numpy()


def poincare_disk(real_feat, syn_feat, *, k: float = 1.0, how: Mapping = "expmap0",
                  clamp: float | None = EXP_MAX_RADIUS, scale: float | None = None, center: bool = True) -> dict:
    r"""Real and synthetic features per class, and their Lorentzian class centroids, in the unit Poincaré disk.

    Features are :func:`lift`-ed (``scale``: multiplied by it first, a reported distortion). A point
    :math:`x` is drawn at radius :math:`\tanh(r / 2\sqrt{k})` with :math:`r = d_L(o, x)` **exact**
    (the radius of :func:`to_poincare`, rescaled to the unit disk), in the direction of
    :math:`W^\top(u - \bar u)`, :math:`u = x_{1:}/|x_{1:}|`, :math:`W` the two leading principal axes of
    the real directions and :math:`\bar u` their mean (``center=False``: uncentred), an
    **approximation**. With :math:`D = 2` and ``center=False`` the picture is an isometry of
    :func:`to_poincare`. Features with :math:`|f| \ge \text{clamp}\sqrt{k}` all lie at the clamp's radius.

    Parameters
    ----------
    real_feat : ``[C, N, D]``; syn_feat : ``[C, M, D]`` (``M`` may be 0) or None (real points only:
        the ``syn*`` and ``centroid_dist`` entries are left out)

    Returns
    -------
    dict with unit-disk points ``real [C, N, 2]``, ``syn [C, M, 2]``, ``real_centroids``,
    ``syn_centroids [C, 2]``; class ids ``real_labels``, ``syn_labels``; exact distances to the origin
    ``real_dist0``, ``syn_dist0``, ``real_centroid_dist0``, ``syn_centroid_dist0``; ``centroid_dist [C]``
    :math:`d_L(c^{real}, c^{syn})` (HDD's loss before :math:`\lambda`; NaN without synthetic points);
    the fractions at the clamp ``saturated_real``, ``saturated_syn``, ``saturated``; ``max_radius``
    (:math:`\text{clamp}\sqrt{k}`) and ``max_disk_radius``; ``explained_variance`` (PCA share) and
    ``plane_fraction`` (mean in-plane share of a real direction); the settings ``k``, ``how``,
    ``clamp``, ``scale``, ``center``.
    """
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
    c_real = centroid(x_real, k=k) if N else nan
    c_syn = centroid(x_syn, k=k) if M else nan
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
