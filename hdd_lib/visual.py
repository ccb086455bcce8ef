r"""The computations behind HDD's pictures: a faithful 2-D Poincaré disk, feature-norm statistics.

Nothing here draws (no matplotlib import); :mod:`hdd_lib.report.figures` plots what these functions
return. Everything is returned as NumPy arrays (float64).

The picture (:func:`poincare_disk`)
-----------------------------------
HDD lifts features onto the hyperboloid (:func:`hdd_lib.geometry.lift`) and matches Lorentzian
centroids (:func:`hdd_lib.geometry.centroid`). To draw a point :math:`x` of the :math:`D`-dimensional
hyperboloid in the 2-D disk we split it, as the logarithmic map at the origin does, into

* its **hyperbolic distance to the origin** :math:`r = d_L(o, x) = \sqrt{k}\,\operatorname{arsinh}
  (|x_{1:}| / \sqrt{k})` (the norm of :math:`\log_o x`), kept **exactly**: the point is drawn at
  Poincaré radius :math:`\rho = \tanh\big(r / (2\sqrt{k})\big)` of the unit disk, i.e.
  :math:`\sqrt{k}\,\rho` in the ball of radius :math:`\sqrt{k}` of
  :func:`hdd_lib.geometry.to_poincare`;
* its **direction** :math:`u = x_{1:} / |x_{1:}|` (the direction of :math:`\log_o x`), which is
  **approximated**: the polar angle is that of :math:`W^\top (u - \bar u)`, with :math:`W` the two
  leading principal axes of the real points' directions (all classes) and :math:`\bar u` their mean
  (``center=False``: :math:`W^\top u`, uncentred axes).

So each point's (and centroid's) distance to the origin is exact; angles, and hence distances
between points, are a 2-D projection. With :math:`D = 2` and ``center=False`` the projection is an
orthogonal map (given at least two real points) and the picture is an isometry of
:func:`~hdd_lib.geometry.to_poincare` (distances between points exact too). ``plane_fraction``
reports how much of the directions lies in the plane (mean :math:`|W^\top(u - \bar u)| / |u - \bar u|`),
``explained_variance`` the PCA's share.

Saturation
----------
With the radius clamp of HDD's ``expmap0`` (``clamp = 10``) every feature with
:math:`|f| \ge 10\sqrt{k}` lands at distance exactly :math:`10\sqrt{k}` from the origin, i.e. at disk
radius :math:`\tanh 5 \approx 0.99991`, on the rim. Instance-norm ConvNet features (:math:`|f|
\approx 23` for 2048-d) saturate for ``k = 1``, so in the faithful picture all points sit on the rim
and only their directions differ. ``scale`` multiplies the features before lifting (an explicit,
reported distortion) to show the interior; :func:`feature_norm_stats` and the ``saturated_*``
entries tell how many points are at the clamp.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .geometry import EXP_MAX_RADIUS, centroid, dist, lift

__all__ = ["poincare_disk", "feature_norm_stats", "disk_radius", "history_series"]

#: Directions shorter than this (after centring) get polar angle 0.
_MIN_DIRECTION = 1e-12
#: Quantiles of the feature norms reported by :func:`feature_norm_stats` (besides the median).
_NORM_QUANTILES = (0.05, 0.25, 0.75, 0.95)
#: Entries of :func:`poincare_disk` about synthetic points (left out when ``syn_feat`` is None).
_SYN_KEYS = ("syn", "syn_labels", "syn_centroids", "syn_dist0", "syn_centroid_dist0", "centroid_dist", "saturated_syn")


def _as_tensor(x: Any) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t.to(device="cpu", dtype=torch.float64)


def disk_radius(r: np.ndarray | float, *, k: float = 1.0) -> np.ndarray:
    r"""Unit-disk radius of a point at hyperbolic distance ``r`` from the origin.

    .. math::
        \rho = \tanh\!\Big(\frac{r}{2\sqrt{k}}\Big),

    the Euclidean norm of the Poincaré-ball point divided by the ball radius :math:`\sqrt{k}`.
    """
    return np.tanh(np.asarray(r, dtype=np.float64) / (2.0 * math.sqrt(k)))


def _origin_distance(x: torch.Tensor, k: float) -> torch.Tensor:
    r"""Stable :math:`d_L(o, x) = \sqrt{k}\operatorname{arsinh}(|x_{1:}|/\sqrt{k})` for hyperboloid points."""
    sk = math.sqrt(k)
    return sk * torch.asinh(x[..., 1:].norm(dim=-1) / sk)


def _directions(x: torch.Tensor) -> torch.Tensor:
    """Unit spatial directions ``x[1:] / |x[1:]|`` (zero where the point is the origin)."""
    s = x[..., 1:]
    n = s.norm(dim=-1, keepdim=True)
    return torch.where(n > 0, s / n.clamp_min(1e-300), torch.zeros_like(s))


def _principal_axes(u: torch.Tensor, *, center: bool) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Two leading principal axes ``W [D, 2]`` of the rows of ``u [N, D]``, the mean used, and the
    share of variance (second moment when not centred) they explain. Signs are fixed so that each
    axis's largest-magnitude entry is positive (a deterministic picture)."""
    d = u.shape[-1]
    mean = u.mean(0) if center and len(u) else torch.zeros(d, dtype=u.dtype)
    a = u - mean
    if len(a) == 0 or float(a.abs().max()) == 0.0:
        w = torch.zeros(d, 2, dtype=u.dtype)
        w[: min(d, 2), : min(d, 2)] = torch.eye(min(d, 2), dtype=u.dtype)
        return w, mean, 0.0
    _, s, vh = torch.linalg.svd(a, full_matrices=False)
    w = torch.zeros(d, 2, dtype=u.dtype)
    w[:, : min(2, len(vh))] = vh[:2].T
    pivot = w[w.abs().argmax(0), torch.arange(2)]
    w = w * torch.where(pivot < 0, -1.0, 1.0).to(w)
    total = float((s**2).sum())
    explained = float((s[:2] ** 2).sum()) / total if total > 0 else 0.0
    return w, mean, explained


def _to_disk(x: torch.Tensor, w: torch.Tensor, mean: torch.Tensor,
             k: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disk coordinates ``[..., 2]``, hyperbolic distances to the origin ``[...]`` and in-plane
    fractions ``[...]`` of hyperboloid points ``x [..., D+1]``."""
    r = _origin_distance(x, k)
    a = _directions(x) - mean
    p = a @ w
    pn = p.norm(dim=-1, keepdim=True)
    an = a.norm(dim=-1, keepdim=True)
    unit = torch.where(pn > _MIN_DIRECTION, p / pn.clamp_min(_MIN_DIRECTION),
                       torch.tensor([1.0, 0.0], dtype=p.dtype).expand_as(p))
    rho = torch.tanh(r / (2.0 * math.sqrt(k))).unsqueeze(-1)
    frac = torch.where(an > _MIN_DIRECTION, pn / an.clamp_min(_MIN_DIRECTION), torch.zeros_like(an))
    return (rho * unit).numpy(), r.numpy(), frac.squeeze(-1).numpy()


def feature_norm_stats(feat: Any, *, k: float = 1.0, clamp: float | None = EXP_MAX_RADIUS) -> dict[str, Any]:
    r"""How many features the ``expmap0`` radius clamp saturates.

    A feature is saturated when :math:`|f| \ge \text{clamp}\cdot\sqrt{k}` (then its point lies at
    distance exactly :math:`\text{clamp}\sqrt{k}` from the origin, whatever :math:`|f|`).

    Parameters
    ----------
    feat : tensor or array ``[..., D]``
    k : float, keyword-only, ``k > 0``
    clamp : float or None (no clamp: nothing saturates)

    Returns
    -------
    dict with ``norms`` (array ``[...]``), ``threshold`` (:math:`\text{clamp}\sqrt{k}`, or ``inf``),
    ``fraction_saturated``, ``count``, ``mean``, ``median``, ``min``, ``max`` and the quantiles
    ``q05``, ``q25``, ``q75``, ``q95`` of the norms (NaN when empty).
    """
    if not k > 0:
        raise ValueError(f"k must be > 0, got k={k}")
    f = _as_tensor(feat)
    norms = f.norm(dim=-1).numpy() if f.numel() else np.zeros(f.shape[:-1] if f.dim() else (0,))
    threshold = float(clamp) * math.sqrt(k) if clamp is not None else math.inf
    n = int(norms.size)
    flat = norms.reshape(-1)

    def stat(fn) -> float:
        return float(fn(flat)) if n else math.nan

    return {
        "norms": norms,
        "threshold": threshold,
        "fraction_saturated": float((flat >= threshold).mean()) if n else math.nan,
        "count": n,
        "mean": stat(np.mean),
        "median": stat(np.median),
        "min": stat(np.min),
        "max": stat(np.max),
        **{f"q{round(100 * q):02d}": stat(lambda a, q=q: np.quantile(a, q)) for q in _NORM_QUANTILES},
    }


def poincare_disk(
    real_feat: Any,
    syn_feat: Any,
    *,
    k: float = 1.0,
    how: str = "expmap0",
    clamp: float | None = EXP_MAX_RADIUS,
    scale: float | None = None,
    center: bool = True,
) -> dict[str, Any]:
    r"""Map real and synthetic features, and their Lorentzian class centroids, to the unit Poincaré disk.

    Each point keeps its hyperbolic distance :math:`r` to the origin exactly (disk radius
    :math:`\tanh(r / 2\sqrt{k})`); its polar angle comes from a 2-D PCA of the real directions (see
    the module docstring for what is exact and what is approximate).

    Parameters
    ----------
    real_feat : tensor or array ``[C, N, D]``, real features per class
    syn_feat : tensor or array ``[C, M, D]``, synthetic features per class (``M`` may be 0), or None:
        real points and their centroids only (the ``syn*`` and ``centroid_dist`` entries are left out)
    k : float, keyword-only; hyperboloid parameter (curvature :math:`-1/k`)
    how, clamp : as in :func:`hdd_lib.geometry.lift` (HDD: ``"expmap0"``, 10)
    scale : float or None; features are multiplied by it before lifting (None: as they are)
    center : centre the directions on their real mean before the PCA (default) or not

    Returns
    -------
    dict with

    - ``real`` ``[C, N, 2]``, ``syn`` ``[C, M, 2]``: unit-disk coordinates
    - ``real_labels`` ``[C, N]``, ``syn_labels`` ``[C, M]``: class ids
    - ``real_centroids``, ``syn_centroids`` ``[C, 2]``: the Lorentzian centroids in the disk
    - ``real_dist0`` ``[C, N]``, ``syn_dist0`` ``[C, M]``, ``real_centroid_dist0``,
      ``syn_centroid_dist0`` ``[C]``: hyperbolic distances to the origin (exact)
    - ``centroid_dist`` ``[C]``: :math:`d_L(c^{real}_c, c^{syn}_c)`, the quantity HDD's loss sums
      (before :math:`\lambda`); NaN where a class has no synthetic point
    - ``saturated_real``, ``saturated_syn``, ``saturated``: fractions of points at the radius clamp
      (0 for ``how="lift"`` or ``clamp=None``)
    - ``max_radius``: the clamp's distance :math:`\text{clamp}\sqrt{k}` (``inf`` without clamp),
      ``max_disk_radius`` its disk radius
    - ``explained_variance``: share of the direction variance in the plane; ``plane_fraction``:
      mean in-plane share of each real direction's length
    - ``k``, ``how``, ``clamp``, ``scale``, ``center``: the settings used
    """
    if not k > 0:
        raise ValueError(f"k must be > 0, got k={k}")
    real = _as_tensor(real_feat)
    has_syn = syn_feat is not None
    syn = _as_tensor(syn_feat) if has_syn else real.new_zeros(*real.shape[:1], 0, *real.shape[2:])
    if real.dim() != 3 or syn.dim() != 3:
        raise ValueError(f"features must be [C, N, D]; got real {tuple(real.shape)}, syn {tuple(syn.shape)}")
    if real.shape[0] != syn.shape[0] or real.shape[2] != syn.shape[2]:
        raise ValueError(f"real {tuple(real.shape)} and syn {tuple(syn.shape)} need the same C and D")
    C, N, D = real.shape
    M = syn.shape[1]
    if scale is not None:
        real, syn = real * float(scale), syn * float(scale)
    use_clamp = how == "expmap0" and clamp is not None
    threshold = float(clamp) * math.sqrt(k) if use_clamp else math.inf

    x_real = lift(real, k=k, how=how, clamp=clamp)   # [C, N, D+1]
    x_syn = lift(syn, k=k, how=how, clamp=clamp)     # [C, M, D+1]
    c_real = centroid(x_real, k=k) if N else torch.full((C, D + 1), math.nan, dtype=torch.float64)
    c_syn = centroid(x_syn, k=k) if M else torch.full((C, D + 1), math.nan, dtype=torch.float64)

    w, mean, explained = _principal_axes(_directions(x_real).reshape(-1, D), center=center)
    p_real, r_real, frac_real = _to_disk(x_real, w, mean, k)
    p_syn, r_syn, _ = _to_disk(x_syn, w, mean, k)
    pc_real, rc_real, _ = _to_disk(c_real, w, mean, k)
    pc_syn, rc_syn, _ = _to_disk(c_syn, w, mean, k)

    cdist = dist(c_real, c_syn, k=k).numpy() if N and M else np.full(C, math.nan)
    sat_real = (real.norm(dim=-1) >= threshold).numpy()
    sat_syn = (syn.norm(dim=-1) >= threshold).numpy()
    n_all = sat_real.size + sat_syn.size

    def frac(a: np.ndarray) -> float:
        return float(a.mean()) if a.size else math.nan

    out = {
        "real": p_real, "syn": p_syn,
        "real_labels": np.broadcast_to(np.arange(C)[:, None], (C, N)).copy(),
        "syn_labels": np.broadcast_to(np.arange(C)[:, None], (C, M)).copy(),
        "real_centroids": pc_real, "syn_centroids": pc_syn,
        "real_dist0": r_real, "syn_dist0": r_syn,
        "real_centroid_dist0": rc_real, "syn_centroid_dist0": rc_syn,
        "centroid_dist": cdist,
        "saturated_real": frac(sat_real), "saturated_syn": frac(sat_syn),
        "saturated": float((sat_real.sum() + sat_syn.sum()) / n_all) if n_all else math.nan,
        "max_radius": threshold,
        "max_disk_radius": float(disk_radius(threshold, k=k)) if math.isfinite(threshold) else 1.0,
        "explained_variance": explained,
        "plane_fraction": frac(frac_real),
        "k": float(k), "how": how, "clamp": clamp, "scale": scale, "center": center,
    }
    if not has_syn:
        for key in _SYN_KEYS:
            del out[key]
    return out


def history_series(history: list[dict[str, Any]] | None,
                   keys: list[str] | tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Columns of a distillation history (``distill.json``'s ``"history"``) as ``(iterations, values)``.

    Entries without the key (e.g. evaluation entries in a loss history) or with a non-finite value
    are skipped; a key present nowhere is left out of the result, so ``{}`` means nothing to plot.

    Parameters
    ----------
    history : list of ``{"iteration": int, key: float, ...}`` (or None)
    keys : names to extract, e.g. ``("k_H", "k_S")``

    Returns
    -------
    dict ``key -> (iterations [n], values [n])``, sorted by iteration
    """
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key in keys:
        pts = []
        for e in history or []:
            v = e.get(key) if isinstance(e, dict) else None
            if v is None or "iteration" not in e:
                continue
            try:
                v = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                pts.append((float(e["iteration"]), v))
        if pts:
            pts.sort(key=lambda t: t[0])
            it, val = zip(*pts)
            out[key] = (np.asarray(it), np.asarray(val))
    return out
