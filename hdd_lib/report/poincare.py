r"""Features in the Poincaré disk: the clamp-saturation figure (Figure 1) and real vs synthetic (Figure 6).

The positions come from :func:`hdd_lib.visual.poincare_disk` (exact radii, angles from a 2-D PCA)
and the norm statistics from :func:`hdd_lib.visual.feature_norm_stats`; this module only draws.
Both figures are re-exported by :mod:`hdd_lib.report.figures`. ::

    from hdd_lib.report import figures
    figures.geometry_figure(experiments.geometry_summary(cfg))           # norms, disk as is, disk scaled
    figures.poincare_plot(experiments.poincare_for_run(cfg, run))         # one run's real vs synthetic
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from ..visual import poincare_disk
from .panels import NOTE, empty, grid, palette, styled, to_numpy

__all__ = ["poincare_plot", "geometry_figure", "draw_disk", "disk_handles", "draw_norm_histogram"]


# ----------------------------------------------------------------------------- drawing on one Axes
def draw_disk(ax: Any, disk: dict[str, Any], colors: Sequence[Any], classes: int) -> None:
    """The unit disk with the first ``classes`` classes of a :func:`hdd_lib.visual.poincare_disk` dict.

    Real points are dots, synthetic points (where ``disk`` has them) triangles, the real centroid a
    large circle and the synthetic centroid a star, joined by a line (the distance HDD's loss
    measures). A dashed circle marks the clamp radius when it is inside the disk.
    """
    ax.add_patch(Circle((0, 0), 1.0, fill=False, color="0.2", linewidth=1.0))
    ax.set_aspect("equal")
    ax.set_xlim(-1.08, 1.08)
    ax.set_ylim(-1.08, 1.08)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    rmax = disk.get("max_disk_radius", 1.0)
    if rmax is not None and rmax < 0.99:
        ax.add_patch(Circle((0, 0), rmax, fill=False, color="0.5", linestyle="--", linewidth=0.8))
    real = np.asarray(disk["real"])
    syn = np.asarray(disk["syn"]) if "syn" in disk else None
    for c in range(classes):
        col = colors[c]
        ax.scatter(real[c, :, 0], real[c, :, 1], s=7, color=col, alpha=0.35, linewidths=0)
        if syn is not None and syn.shape[1]:
            ax.scatter(syn[c, :, 0], syn[c, :, 1], s=28, marker="^", color=col, edgecolors="k", linewidths=0.5)
        cr = disk["real_centroids"][c]
        cs = disk["syn_centroids"][c] if "syn_centroids" in disk else None
        if cs is not None and np.all(np.isfinite(cs)):
            ax.plot([cr[0], cs[0]], [cr[1], cs[1]], color=col, linewidth=1.0, alpha=0.9)
            ax.scatter(*cs, s=170, marker="*", color=col, edgecolors="k", linewidths=0.8, zorder=4)
        ax.scatter(*cr, s=80, marker="o", color=col, edgecolors="k", linewidths=0.8, zorder=4)


def disk_handles(colors: Sequence[Any], names: Sequence[str], classes: int, *, synthetic: bool = True) -> list[Line2D]:
    """Legend entries for :func:`draw_disk`: one per class, then the marker kinds."""
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[c], label=names[c]) for c in range(classes)]
    kinds = (("^", 5, "synthetic"), ("o", 7, "real centroid"), ("*", 10, "synthetic centroid"))
    handles += [Line2D([], [], marker=m, linestyle="", color="0.5", markeredgecolor="k", markersize=s, label=lab)
                for m, s, lab in kinds if synthetic or lab == "real centroid"]
    return handles


def draw_norm_histogram(ax: Any, stats: dict[str, Any], *, color: Any = None) -> None:
    """Histogram of the feature norms of :func:`hdd_lib.visual.feature_norm_stats`, with the clamp
    radius as a dashed line and the saturated fraction in the legend."""
    norms = to_numpy(stats.get("norms", [])).ravel()
    norms = norms[np.isfinite(norms)]
    if norms.size == 0:
        empty(ax, "no feature norms")
        return
    threshold = float(stats.get("threshold", math.inf))
    top = max(float(norms.max()), threshold if math.isfinite(threshold) else 0.0)
    ax.hist(norms, bins=np.linspace(0.0, 1.05 * top if top > 0 else 1.0, 40), color=color, alpha=0.8,
            label=f"{norms.size} features")
    if math.isfinite(threshold):
        frac = float(stats.get("fraction_saturated", np.mean(norms >= threshold)))
        ax.axvline(threshold, color="k", linestyle="--", linewidth=1.0,
                   label=f"clamp radius {threshold:.3g}\n{100 * frac:.0f} % at or above it")
    ax.set_xlabel("feature norm |f|")
    ax.set_ylabel("count")
    ax.legend()


# ----------------------------------------------------------------------------- figures
@styled
def poincare_plot(disk: dict[str, Any] | None, *, class_names: Sequence[str] | None = None, max_classes: int = 10,
                  title: str | None = None) -> Figure:
    """Real vs synthetic points per class and their Lorentzian centroids in the unit Poincaré disk.

    Parameters
    ----------
    disk : the dict of :func:`hdd_lib.visual.poincare_disk` (None or empty: an empty panel; without
        synthetic points when it was made with ``syn_feat=None``)
    class_names : labels of the classes (default: class ids)
    max_classes : draw the first ``max_classes`` classes only
    title : default names k, the mapping, the clamp and the scale

    Real points are dots, synthetic points triangles, the real centroid a large circle and the
    synthetic centroid a star, joined by a line (the distance HDD's loss measures). The radius of
    every mark is exact (hyperbolic distance to the origin); angles come from a 2-D PCA.
    """
    fig = Figure(figsize=(5.6, 5.2))
    ax = fig.subplots()
    real = np.asarray(disk.get("real", np.zeros((0, 0, 2)))) if disk else np.zeros((0, 0, 2))
    if real.size == 0:
        draw_disk(ax, {"real": real, "real_centroids": []}, [], 0)
        ax.set_title(title or "Poincaré disk")
        ax.text(0, 0, "no features to draw", **NOTE)
        return fig
    C = min(real.shape[0], max_classes)
    colors = palette(C)
    names = list(class_names) if class_names is not None else [str(c) for c in range(real.shape[0])]
    draw_disk(ax, disk, colors, C)
    ax.legend(handles=disk_handles(colors, names, C, synthetic="syn" in disk), loc="center left",
              bbox_to_anchor=(1.0, 0.5))
    scale = disk.get("scale")
    ax.set_title(title or (f"Poincaré disk: k={disk.get('k', 1.0):g}, {disk.get('how', 'expmap0')}, "
                           f"clamp={disk.get('clamp')}" + (f", features ×{scale:g}" if scale else "")))
    sat = disk.get("saturated", math.nan)
    note = (f"radius = tanh(d(o,x)/2√k) (exact); angle: 2-D PCA of directions "
            f"({100 * disk.get('explained_variance', math.nan):.0f} % of variance)")
    if not math.isnan(sat):
        note += f"\n{100 * sat:.0f} % of points at the radius clamp" + (" (on the rim)" if sat > 0 else "")
    ax.text(0.5, -0.04, note, transform=ax.transAxes, ha="center", va="top", fontsize=7, color="0.35")
    return fig


@styled
def geometry_figure(geo: dict[str, Any] | None, *, median_fraction: float = 0.15, max_classes: int = 10,
                    title: str | None = None) -> Figure:
    r"""Real features against HDD's radius clamp (Figure 1), from :func:`hdd_lib.experiments.geometry_summary`.

    Panels: the histogram of the feature norms with the clamp radius :math:`\text{clamp}\sqrt{k}`
    and the fraction at or above it; the features on the Poincaré disk as they are (saturated
    features all lie on the clamp circle); the same features scaled so that their median norm is
    ``median_fraction`` of the clamp radius (default 0.15, which spreads points over the disk; the panel title gives the factor).
    Lorentzian class centroids are circles.

    Parameters
    ----------
    geo : ``{"summary": dict, "features": [C, N, D], "stats": feature_norm_stats dict, "spec": DatasetSpec}``
        (None or without features: empty panels)
    median_fraction : median norm after scaling, as a fraction of the clamp radius. A point at
        distance :math:`r` is drawn at disk radius :math:`\tanh(r / 2\sqrt{k})`, so half the clamp
        (:math:`r = 5\sqrt{k}`) is still at radius 0.987; 0.1–0.2 spreads the points over the disk
    max_classes : draw the first ``max_classes`` classes only
    """
    fig, (hist, raw, scaled) = grid(3, size=(4.0, 4.0))
    if title:
        fig.suptitle(title)
    feats = to_numpy(geo["features"]) if geo and geo.get("features") is not None else np.zeros((0, 0, 0))
    stats = (geo or {}).get("stats") or {}
    if feats.ndim != 3 or feats.size == 0:
        for ax in (hist, raw, scaled):
            empty(ax, "no features")
        return fig
    k = float(((geo.get("summary") or {}).get("k")) or 1.0)
    threshold = float(stats.get("threshold", 10.0 * math.sqrt(k)))
    clamp = threshold / math.sqrt(k) if math.isfinite(threshold) else None
    C = min(feats.shape[0], max_classes)
    colors = palette(C)
    norms = np.linalg.norm(feats, axis=-1)
    draw_norm_histogram(hist, {"norms": norms, **stats, "threshold": threshold}, color=colors[0])
    hist.set_title("feature norms")
    median = float(np.median(norms))
    spec = geo.get("spec")
    spec_names = spec.get("class_names") if isinstance(spec, dict) else getattr(spec, "class_names", None)
    names = list(spec_names) if spec_names is not None else [str(c) for c in range(feats.shape[0])]
    disk = poincare_disk(feats, None, k=k, clamp=clamp)
    draw_disk(raw, disk, colors, C)
    raw.set_title(f"as they are: {100 * disk['saturated']:.0f} % at the clamp")
    if clamp is None or median <= 0:
        empty(scaled, "no clamp: nothing to scale below it")
    else:
        factor = median_fraction * threshold / median
        draw_disk(scaled, poincare_disk(feats, None, k=k, clamp=clamp, scale=factor), colors, C)
        target = "half the" if median_fraction == 0.5 else f"{median_fraction:g} ×"
        scaled.set_title(f"scaled ×{factor:.3g}: median |f| = {target} clamp radius")
        scaled.legend(handles=disk_handles(colors, names, C, synthetic=False), loc="center left",
                      bbox_to_anchor=(1.0, 0.5))
    return fig


