"""The papers' figures as pyplot-free :class:`~matplotlib.figure.Figure` objects in one style (``hdd.mplstyle``),
shown as PNG in IPython; :func:`save_figure` writes one atomically, :func:`write_all` the ``figures`` stage's."""

from __future__ import annotations

import functools
import io
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib import style as mpl_style
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..params import Paths, run_id
from ..storage import atomic_write, load_json
from ..synset import SyntheticSet
from .published import paper_numbers, paper_pruning
from .tidy import SCORES, accuracies, known_methods, load_metrics, method_label, method_order, ordered, pooled, tidy_curves

__all__ = ["STYLE", "FIGURES", "style", "styled", "save_figure", "history", "image_grid", "accuracy_vs_iteration",
           "pruning_curves", "geodm_trajectories", "loss_curve", "poincare_plot", "geometry_figure",
           "poincare_for_run", "write_all"]

#: The style file applied to every figure.
STYLE = Path(__file__).with_name("hdd.mplstyle")
#: The files :func:`write_all` writes in ``paths.figures`` (declared as outputs in ``dvc.yaml``).
FIGURES = {"accuracy": "fig2_accuracy_vs_iteration.png", "pruning": "fig3_pruning.png",
           "geodm": "fig4_geodm_trajectories.png", "images": "fig5_synthetic_images.png",
           "poincare": "fig6_poincare.png", "loss": "fig7_loss.png"}


def style():
    """Context in which matplotlib uses ``hdd.mplstyle`` (restored on exit)."""
    return mpl_style.context(str(STYLE))


def _png(fig: Figure) -> bytes:
    with style(), io.BytesIO() as buf:
        fig.savefig(buf, format="png", dpi=100)
        return buf.getvalue()


def show_in_ipython() -> None:
    """In a running IPython (Jupyter, papermill) display every ``Figure`` as ``image/png``: pyplot-free figures get no
    formatter from a backend, and would show as ``<Figure size ...>``."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, _png)


def styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under :func:`style` (creating each axis's first tick there, which later ticks copy, so that a
    figure drawn outside keeps the style) and make it display in IPython."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with style():
            fig = fn(*args, **kwargs)
            for ax in fig.axes:
                ax.xaxis.get_major_ticks(1), ax.yaxis.get_major_ticks(1)
        show_in_ipython()
        return fig
    return wrapper


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: float | None = None) -> Path:
    """Write ``fig`` atomically in the format of the suffix (PNG at the style's 150 dpi by default)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    with style():
        return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **({"dpi": dpi} if dpi else {})))


# ----------------------------------------------------------------------------- drawing blocks
def grid(n: int, *, ncols: int = 3, size: tuple[float, float] = (3.4, 2.7), sharey: bool = False,
         title: str | None = None):
    """A new figure (``title``: its suptitle) and its ``n >= 1`` panels in rows of ``ncols``, ``size`` per panel."""
    n = max(n, 1)
    cols = min(n, ncols)
    fig = Figure(figsize=(size[0] * cols, size[1] * math.ceil(n / cols)))
    axes = fig.subplots(math.ceil(n / cols), cols, sharey=sharey, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig, axes[:n]


def empty(ax: Any, text: str) -> None:
    """Turn ``ax`` into an empty panel saying ``text``."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.45", fontsize=9, wrap=True)
    ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)


def palette(n: int) -> list[tuple[float, float, float]]:
    """``n`` distinguishable colours (seaborn's colorblind palette up to 10, husl beyond)."""
    import seaborn as sns  # slow to import: only when drawing
    return list(sns.color_palette("colorblind" if n <= 10 else "husl", max(n, 1)))


def method_colors(methods: Sequence[str]) -> dict[str, Any]:
    """One colour per method, the same in every figure (known methods in table order first)."""
    names = method_order({*known_methods(), *methods})
    return dict(zip(names, palette(len(names))))


def band(ax: Any, x: Any, mean: Any, std: Any, color: Any, label: str) -> None:
    """Markers at ``mean`` joined by a line, ``± std`` error bars and a shaded band (NaN std: none)."""
    x, mean, std = (np.asarray(v, dtype=float) for v in (x, mean, std))
    ax.errorbar(x, mean, yerr=np.nan_to_num(std), color=color, label=label, marker="o", markersize=3.5, capsize=3)
    ax.fill_between(x, mean - np.nan_to_num(std), mean + np.nan_to_num(std), color=color, alpha=0.15, linewidth=0)


def history(records: Sequence[dict[str, Any]] | None, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Columns of a distillation history (``distill.json``'s ``history``) as ``key -> (iterations, values)``, sorted by
    iteration; entries without the key or with a non-finite value are skipped, and a key present nowhere is left out
    (``{}``: nothing to plot)."""
    df = pd.DataFrame([r for r in records or [] if isinstance(r, dict) and "iteration" in r])
    out = {}
    for key in (k for k in keys if k in df):
        s = df[["iteration", key]].apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan).dropna()
        if len(s):
            s = s.sort_values("iteration", kind="stable")
            out[key] = (s["iteration"].to_numpy(float), s[key].to_numpy(float))
    return out


# ----------------------------------------------------------------------------- figures
@styled
def image_grid(images: Any, spec: Any = None, *, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
               class_names: Sequence[str] | None = None, max_classes: int = 10, max_per_class: int = 10,
               title: str | None = None) -> Figure:
    """Normalised images ``[C, n, ch, H, W]`` (``ch`` 1 or 3) as a grid, one labelled row per class; ``spec`` (a
    :class:`~hdd_lib.data.DatasetSpec`) gives ``mean``, ``std`` and ``class_names``; the keywords override
    it; without either the images are shown as they are (clipped to [0, 1])."""
    x = np.asarray(images.detach().cpu().double() if hasattr(images, "detach") else images, dtype=np.float64)
    x = x[None] if x.ndim == 4 else x
    if x.ndim != 5 or x.shape[2] not in (1, 3):
        raise ValueError(f"images must be [C, n, ch, H, W] with 1 or 3 channels, got shape {x.shape}")
    x = x[:max_classes, :max_per_class]
    C, n, ch, H, W = x.shape
    mu = np.asarray(mean if mean is not None else getattr(spec, "mean", None) or (0.0,), dtype=float)
    sd = np.asarray(std if std is not None else getattr(spec, "std", None) or (1.0,), dtype=float)
    if mu.size not in (1, ch) or sd.size not in (1, ch):
        raise ValueError(f"mean/std need 1 or {ch} values, got {mu.size} and {sd.size}")
    x = np.clip(x * sd.reshape(-1, 1, 1) + mu.reshape(-1, 1, 1), 0.0, 1.0)
    canvas = np.pad(x.transpose(0, 3, 1, 4, 2), ((0, 0), (1, 0), (0, 0), (1, 0), (0, 0)), constant_values=1.0)
    canvas = np.pad(canvas.reshape(C * (H + 1), n * (W + 1), ch), ((0, 1), (0, 1), (0, 0)), constant_values=1.0)
    fig = Figure(figsize=(min(12.0, 0.55 * max(n, 1) + 1.6), 0.55 * max(C, 1) + 0.7))
    ax = fig.subplots()
    ax.imshow(canvas[..., 0] if ch == 1 else canvas, cmap="gray", vmin=0.0, vmax=1.0)
    names = class_names if class_names is not None else getattr(spec, "class_names", None) or range(C)
    ax.set_yticks([1 + c * (H + 1) + H / 2 - 0.5 for c in range(C)], [str(v) for v in list(names)[:C]])
    ax.set_xticks([]), ax.tick_params(length=0), ax.grid(False), ax.set_title(title or "Distilled images")
    for s in ax.spines.values():
        s.set_visible(False)
    return fig


@styled
def accuracy_vs_iteration(metrics: Sequence[dict[str, Any]], *, methods: Sequence[str] | None = None,
                          title: str | None = None) -> Figure:
    """Test accuracy vs distillation iteration, one panel per dataset x IPC, per method the mean with ± std error bars
    and band (the metrics' ``curve`` entries pooled over seeds), one legend outside."""
    df = tidy_curves(metrics)
    df = df if methods is None else df[df["method"].isin(methods)]
    cells = df[["dataset", "ipc", "data_copy"]].drop_duplicates(["dataset", "ipc"])
    fig, axes = grid(len(cells), title=title)
    if df.empty:
        empty(axes[0], "no accuracy-vs-iteration data\n(evaluation during distillation was off)")
        return fig
    colors = method_colors(df["method"].unique())
    for ax, (d, ipc, copy) in zip(axes, cells.itertuples(index=False)):
        sel = df[(df["dataset"] == d) & (df["ipc"] == ipc)]
        for me in method_order(sel["method"]):
            s = sel[sel["method"] == me]
            band(ax, s["iteration"], s["mean"], s["std"], colors[me], method_label(me))
        ax.set(title=f"{copy}, IPC {ipc}", xlabel="distillation iteration", ylabel="test accuracy (%)")
        its = sorted(sel["iteration"].unique())      # few logged iterations: tick exactly those
        ax.set_xticks(its) if len(its) <= 6 else ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    shown = method_order(df["method"].unique())
    handles = {h.get_label(): h for ax in axes for h in ax.get_legend_handles_labels()[0]}
    fig.legend([handles[method_label(m)] for m in shown], [method_label(m) for m in shown], loc="outside right upper")
    zero = " (0 here: one network per evaluation and one seed)" if (df["std"].fillna(0) == 0).all() else ""
    fig.supxlabel(f"error bars and bands: ± std (population) at each logged iteration, pooled over seeds{zero}",
                  fontsize=7, color="0.35")
    return fig


@styled
def pruning_curves(metrics: Sequence[dict[str, Any]], *, published: pd.DataFrame | None = None,
                   title: str | None = None) -> Figure:
    """Accuracy vs keep ratio, mean ± std per pruning score, one panel per dataset x IPC x method; the published HDD
    pruning numbers of a panel (``published``, default the packaged ones) as black crosses."""
    df = pooled(accuracies(metrics), ["dataset", "ipc", "method", "score", "keep"])
    pub = paper_numbers(published, pruning=True)
    cells = df[["dataset", "ipc", "method", "data_copy"]].drop_duplicates(["dataset", "ipc", "method"])
    fig, axes = grid(len(cells), sharey=True, title=title)
    colors = dict(zip(ordered(df["score"], SCORES), palette(df["score"].nunique())))
    for ax, (d, ipc, me, copy) in zip(axes, cells.itertuples(index=False)):
        sel = df[(df["dataset"] == d) & (df["ipc"] == ipc) & (df["method"] == me)]
        for s in ordered(sel["score"], SCORES):
            r = sel[sel["score"] == s].sort_values("keep")
            band(ax, r["keep"], r["mean"], r["std"], colors[s], SCORES.get(s, s))
        p = paper_pruning(pub, d, ipc, me)
        if len(p):
            ax.plot(p["keep"].astype(float), p["mean"].astype(float), "x", color="k", markersize=6,
                    label="paper (hyperbolic)")
        ax.invert_xaxis()
        ax.set(title=f"{copy}, IPC {ipc}, {method_label(me)}", xlabel="keep ratio", ylabel="test accuracy (%)")
        ax.legend()
    return fig


@styled
def geodm_trajectories(records: Sequence[dict[str, Any]] | None, *, title: str | None = None) -> Figure:
    """GeoDM's geometry during distillation, from a ``distill.json`` history: curvatures ``k_H``, ``k_S`` (left) and
    factor weights ``w_E``, ``w_H``, ``w_S`` (right) vs iteration."""
    fig, axes = grid(2, ncols=2, title=title)
    pal = palette(3)
    colors = {"k_H": pal[1], "k_S": pal[2], "w_E": pal[0], "w_H": pal[1], "w_S": pal[2]}
    for ax, keys, ylabel, what in zip(axes, (("k_H", "k_S"), ("w_E", "w_H", "w_S")),
                                      ("curvature parameter k", "weight"), ("curvatures", "factor weights")):
        series = history(records, keys)
        if not series:
            empty(ax, f"no {what} in the history\n(not a GeoDM run, or not logged)")
            continue
        for key, (it, val) in series.items():
            ax.plot(it, val, color=colors[key], label=key)
        ax.set(xlabel="distillation iteration", ylabel=ylabel, title=what)
        ax.legend()
    return fig


@styled
def loss_curve(records: Sequence[dict[str, Any]], *, title: str | None = None, smooth: int | None = None) -> Figure:
    """Matching loss vs iteration from a ``distill.json`` history, with a moving average over ``smooth`` logged values
    (default: about 1/50 of them); a log scale when the loss spans more than a decade."""
    fig, (ax,) = grid(1, size=(5.2, 3.4))
    it, val = history(records, ("loss",))["loss"]
    color = palette(1)[0]
    ax.plot(it, val, color=color, alpha=0.35, linewidth=0.8, label="logged")
    w = smooth if smooth is not None else max(1, len(val) // 50)
    if 1 < w < len(val):
        ax.plot(it[w - 1:], np.convolve(val, np.ones(w) / w, mode="valid"), color=color, label=f"moving average ({w})")
    if val.min() > 0 and val.max() / val.min() > 10:
        ax.set_yscale("log")
    ax.set(title=title or "matching loss", xlabel="distillation iteration", ylabel="loss")
    ax.legend()
    return fig


from .poincare import geometry_figure, poincare_for_run, poincare_plot  # noqa: E402  (they use the blocks above)


# ----------------------------------------------------------------------------- the pipeline's figures
def write_all(metrics_dir: str | os.PathLike, paths: Paths, *, figure_run: dict[str, Any], data: Any = None,
              published: pd.DataFrame | None = None) -> list[Path]:
    """Write the ``figures`` stage's :data:`FIGURES` to ``paths.figures``; returns the paths. Figures 2 and 3 show every
    ``metrics_dir/eval`` and ``prune`` metric; the others the run ``figure_run`` (``{dataset, ipc, method, seed}``,
    optionally ``variant``; ``report.figure_run``): 4 the GeoDM run beside it (itself if GeoDM), 5 its images, 6 its
    features on the Poincaré disk (:func:`poincare_for_run`, real data from ``data.data_root``, ``data.download``), 7
    its loss."""
    missing = [k for k in ("dataset", "ipc", "method", "seed") if (figure_run or {}).get(k) is None]
    if missing:
        raise ValueError(f"figure_run needs dataset, ipc, method and seed; {', '.join(missing)} missing in {figure_run}")
    run = dict(figure_run)
    rid = run_id(run["dataset"], int(run["ipc"]), run["method"], int(run["seed"]), run.get("variant"))
    geo = rid if "geodm" in run["method"] else run_id(run["dataset"], int(run["ipc"]), "geodm", int(run["seed"]))
    record = lambda r: paths.find(f"runs/{r}/distill.json")  # noqa: E731
    syn, meta = SyntheticSet.load(paths.find(f"runs/{rid}/synset.pt")), load_json(record(rid))
    spec = syn.meta["dataset"]
    disk = poincare_for_run(paths, run, data=data)
    geo_history = load_json(record(geo))["history"] if record(geo).is_file() else None
    figs = {"accuracy": accuracy_vs_iteration(load_metrics(Path(metrics_dir) / "eval"),
                                              title="Test accuracy during distillation"),
            "pruning": pruning_curves(load_metrics(Path(metrics_dir) / "prune"), published=published,
                                      title="Pruning the distilled sets"),
            "geodm": geodm_trajectories(geo_history, title=f"GeoDM geometry during distillation: {geo}"),
            "images": image_grid(syn.per_class(), mean=spec["mean"], std=spec["std"], class_names=spec["class_names"],
                                 title=f"Synthetic images: {rid}"),
            "poincare": poincare_plot(disk, class_names=disk["class_names"]),
            "loss": loss_curve(meta["history"], title=f"Matching loss: {rid}")}
    return [save_figure(figs[key], paths.figures / name) for key, name in FIGURES.items()]


show_in_ipython()
