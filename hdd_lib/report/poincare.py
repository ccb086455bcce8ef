r"""Features on the Poincaré disk: one run's real vs synthetic features (Figure 6) and the clamp figure (Figure 1).

:func:`poincare_for_run` computes a run's picture (:func:`hdd_lib.geometry.poincare_disk`: exact radii, angles from a
2-D PCA), :func:`poincare_plot` draws it; :func:`geometry_figure` draws :func:`hdd_lib.stages.geometry_summary`. All are
re-exported by :mod:`hdd_lib.report.figures`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from ..geometry import EXP_MAX_RADIUS, poincare_disk
from ..params import Paths, run_id
from ..synset import SyntheticSet
from .figures import empty, grid, palette, styled

__all__ = ["poincare_for_run", "poincare_plot", "geometry_figure", "draw_disk", "draw_norm_histogram"]


def poincare_for_run(paths: Paths, run: dict[str, Any], *, data: Any = None, batch: int = 64, nets: int = 1,
                     median_fraction: float = 0.15) -> dict[str, Any]:
    """Real and synthetic features of one run (``{dataset, ipc, method, seed}``, optionally ``variant``) on the Poincaré
    disk: those of ``nets`` random ConvNets of the run's architecture (the DM embedding; ``batch`` real images per
    class, loaded with ``data.data_root`` / ``data.download``), lifted with the run's HDD ``k``, map and clamp, after
    scaling so that the median real norm is ``median_fraction`` of the clamp radius (unscaled, ConvNet features saturate
    the clamp and sit on one circle near the rim). Returns :func:`~hdd_lib.geometry.poincare_disk`'s dict, ``run_id``
    and ``class_names``."""
    from ..config import ModelConfig, from_dict
    from ..data import load
    from ..models import random_features
    rid = run_id(run["dataset"], int(run["ipc"]), run["method"], int(run["seed"]), run.get("variant"))
    syn = SyntheticSet.load(paths.find(f"runs/{rid}/synset.pt"))
    config = syn.meta.get("config") or {}
    loss = config.get("loss") or {}
    loss = next((t for t in loss if t.get("name") == "hdd"), {}) if isinstance(loss, list) else loss
    hdd = {"k": 1.0, "how": "expmap0", "clamp": EXP_MAX_RADIUS,
           **{k: loss[k] for k in ("k", "how", "clamp") if k in loss and loss.get("name") == "hdd"}}
    train = load(run["dataset"], getattr(data, "data_root", None), split="train", download=getattr(data, "download", False))
    real = train.sample(min(batch, int(train.counts.min())), generator=torch.Generator().manual_seed(0))
    f_real, f_syn = (random_features(x, model_cfg=from_dict(ModelConfig, config.get("model") or {}), spec=train.spec,
                                     nets=nets, generator=torch.Generator().manual_seed(1), device="auto")
                     for x in (real, syn.per_class()))
    threshold = (hdd["clamp"] or EXP_MAX_RADIUS) * math.sqrt(hdd["k"])
    scale = median_fraction * threshold / float(f_real.norm(dim=-1).median().clamp_min(1e-12))
    disk = poincare_disk(f_real, f_syn, k=hdd["k"], how=hdd["how"], clamp=hdd["clamp"], scale=scale)
    return {**disk, "run_id": rid, "class_names": list(train.spec.class_names)}


def draw_disk(ax: Any, disk: dict[str, Any], colors: Sequence[Any], names: Sequence[str], classes: int,
              legend: bool = False) -> None:
    """The unit disk with the first ``classes`` classes of a :func:`~hdd_lib.geometry.poincare_disk` dict: real points
    as dots, synthetic ones (if any) as triangles, the real centroid a large circle and the synthetic one a star, joined
    by a line (the distance HDD's loss measures); a dashed circle marks the clamp radius when it is inside the disk.
    ``legend``: one entry per class and marker kind."""
    ax.add_patch(Circle((0, 0), 1.0, fill=False, color="0.2", linewidth=1.0))
    ax.set(aspect="equal", xlim=(-1.08, 1.08), ylim=(-1.08, 1.08), xticks=[], yticks=[])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    if disk["max_disk_radius"] < 0.99:
        ax.add_patch(Circle((0, 0), disk["max_disk_radius"], fill=False, color="0.5", linestyle="--", linewidth=0.8))
    syn = "syn" in disk and disk["syn"].shape[1] > 0
    for c in range(classes):
        ax.scatter(*disk["real"][c].T, s=7, color=colors[c], alpha=0.35, linewidths=0)
        cr = disk["real_centroids"][c]
        if syn:
            cs = disk["syn_centroids"][c]
            ax.scatter(*disk["syn"][c].T, s=28, marker="^", color=colors[c], edgecolors="k", linewidths=0.5)
            ax.plot([cr[0], cs[0]], [cr[1], cs[1]], color=colors[c], linewidth=1.0, alpha=0.9)
            ax.scatter(*cs, s=170, marker="*", color=colors[c], edgecolors="k", linewidths=0.8, zorder=4)
        ax.scatter(*cr, s=80, marker="o", color=colors[c], edgecolors="k", linewidths=0.8, zorder=4)
    if legend:
        kinds = [("^", 5, "synthetic"), ("o", 7, "real centroid"), ("*", 10, "synthetic centroid")]
        handles = [Line2D([], [], marker="o", linestyle="", color=colors[c], label=names[c]) for c in range(classes)]
        handles += [Line2D([], [], marker=m, linestyle="", color="0.5", markeredgecolor="k", markersize=s, label=lab)
                    for m, s, lab in kinds if syn or lab == "real centroid"]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5))


def draw_norm_histogram(ax: Any, stats: dict[str, Any], *, color: Any = None) -> None:
    """Histogram of :func:`~hdd_lib.geometry.feature_norm_stats`'s norms with the clamp radius (dashed) and the fraction
    at or above it in the legend."""
    norms = np.asarray(stats["norms"], dtype=float).ravel()
    threshold = float(stats.get("threshold", math.inf))
    top = max(float(norms.max()), threshold if math.isfinite(threshold) else 0.0)
    ax.hist(norms, bins=np.linspace(0.0, 1.05 * top if top > 0 else 1.0, 40), color=color, alpha=0.8,
            label=f"{norms.size} features")
    if math.isfinite(threshold):
        ax.axvline(threshold, color="k", linestyle="--", linewidth=1.0, label=f"clamp radius {threshold:.3g}\n"
                   f"{100 * float(stats.get('fraction_saturated', np.mean(norms >= threshold))):.0f} % at or above it")
    ax.set(xlabel="feature norm |f|", ylabel="count")
    ax.legend()


@styled
def poincare_plot(disk: dict[str, Any], *, class_names: Sequence[str] | None = None, max_classes: int = 10,
                  title: str | None = None) -> Figure:
    """Real vs synthetic points per class and their Lorentzian centroids in the unit Poincaré disk (a
    :func:`~hdd_lib.geometry.poincare_disk` dict; the first ``max_classes`` classes). Radii are exact hyperbolic
    distances to the origin, angles a 2-D PCA; the default title gives k, map, clamp, scale."""
    fig = Figure(figsize=(5.6, 5.2))
    ax = fig.subplots()
    C = min(disk["real"].shape[0], max_classes)
    names = list(class_names) if class_names is not None else [str(c) for c in range(C)]
    draw_disk(ax, disk, palette(C), names, C, legend=True)
    scale = disk.get("scale")
    ax.set_title(title or (f"Poincaré disk: k={disk['k']:g}, {disk['how']}, clamp={disk['clamp']}"
                           + (f", features ×{scale:.3g}" if scale else "")))
    note = (f"radius = tanh(d(o,x)/2√k) (exact); angle: 2-D PCA of directions "
            f"({100 * disk['explained_variance']:.0f} % of variance)")
    if not math.isnan(disk["saturated"]):
        note += f"\n{100 * disk['saturated']:.0f} % of points at the radius clamp" + (" (on the rim)" if disk["saturated"] else "")
    ax.text(0.5, -0.04, note, transform=ax.transAxes, ha="center", va="top", fontsize=7, color="0.35")
    return fig


@styled
def geometry_figure(geo: dict[str, Any], *, median_fraction: float = 0.15, max_classes: int = 10,
                    title: str | None = None) -> Figure:
    r"""Real features against HDD's radius clamp (Figure 1), from :func:`hdd_lib.stages.geometry_summary` (``{"summary",
    "features" [C, N, D], "stats", "spec"}``). Panels: the histogram of the feature norms with the clamp radius
    :math:`\text{clamp}\sqrt{k}`; the features on the Poincaré disk as they are (saturated ones all on the clamp
    circle); the same scaled so that their median norm is ``median_fraction`` of the clamp radius (a point at distance
    :math:`r` is drawn at :math:`\tanh(r / 2\sqrt{k})`, so even half the clamp is at radius 0.987; 0.1–0.2 spreads the
    points; the title gives the factor). Class centroids are circles."""
    fig, (hist, raw, scaled) = grid(3, size=(4.0, 4.0), title=title)
    feats = np.asarray(geo["features"], dtype=float)
    stats = geo.get("stats") or {}
    k = float((geo.get("summary") or {}).get("k") or 1.0)
    threshold = float(stats.get("threshold", EXP_MAX_RADIUS * math.sqrt(k)))
    clamp = threshold / math.sqrt(k) if math.isfinite(threshold) else None
    C = min(feats.shape[0], max_classes)
    colors = palette(C)
    norms = np.linalg.norm(feats, axis=-1)
    draw_norm_histogram(hist, {**stats, "norms": norms, "threshold": threshold}, color=colors[0])
    hist.set_title("feature norms")
    spec = geo.get("spec")
    names = spec.get("class_names") if isinstance(spec, dict) else getattr(spec, "class_names", None)
    names = [str(n) for n in (names or range(feats.shape[0]))]
    disk = poincare_disk(feats, None, k=k, clamp=clamp)
    draw_disk(raw, disk, colors, names, C)
    raw.set_title(f"as they are: {100 * disk['saturated']:.0f} % at the clamp")
    median = float(np.median(norms))
    if clamp is None or median <= 0:
        empty(scaled, "no clamp: nothing to scale below it")
    else:
        factor = median_fraction * threshold / median
        draw_disk(scaled, poincare_disk(feats, None, k=k, clamp=clamp, scale=factor), colors, names, C, legend=True)
        target = "half the" if median_fraction == 0.5 else f"{median_fraction:g} ×"
        scaled.set_title(f"scaled ×{factor:.3g}: median |f| = {target} clamp radius")
    return fig
