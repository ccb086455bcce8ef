"""The papers' figures as :class:`matplotlib.figure.Figure` objects, in one style (``hdd.mplstyle``).

Every function returns a new ``Figure`` built without pyplot (no global backend or state: notebooks
display it, headless runs save it with Agg) under :func:`style`, and draws an empty panel with a
note instead of failing when its input is missing or empty. :func:`save_figure` writes a figure
atomically; :func:`write_all` writes every figure of the ``figures`` stage. ::

    from hdd_lib.report import figures, tables
    fig = figures.accuracy_vs_iteration(tables.load_metrics("results/metrics/eval"))
    figures.save_figure(fig, "results/figures/fig2_accuracy_vs_iteration.png")

The numbers come from :mod:`hdd_lib.report.tidy` (pooling over seeds) and :mod:`hdd_lib.visual`
(the Poincaré-disk picture); the drawing blocks are :mod:`hdd_lib.report.panels`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..data import DatasetSpec
from ..pipeline import Paths, run_id
from ..storage import CorruptFileError, atomic_write, load_json
from ..synset import SyntheticSet
from ..visual import history_series
from . import panels
from .panels import STYLE, empty, grid, palette, style, styled
from .poincare import geometry_figure, poincare_plot
from .published import PAPER_DATASET, paper_numbers
from .tidy import ARCHITECTURES, METHODS, SCORES, label, load_metrics, ordered, tidy_curves, tidy_prune

__all__ = ["STYLE", "FIGURES", "style", "save_figure", "note_figure", "poincare_plot", "geometry_figure",
           "image_grid", "accuracy_vs_iteration", "accuracy_bars", "pruning_curves", "geodm_trajectories",
           "loss_curve", "write_all"]

#: The files :func:`write_all` writes in ``paths.figures`` (declared as outputs in ``dvc.yaml``).
FIGURES = {"accuracy": "fig2_accuracy_vs_iteration.png", "pruning": "fig3_pruning.png",
           "geodm": "fig4_geodm_trajectories.png", "images": "fig5_synthetic_images.png", "loss": "fig7_loss.png"}


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: float | None = None) -> Path:
    """Write ``fig`` atomically (temporary file, then rename); the format follows the suffix
    (``.png`` by default), the resolution ``dpi`` (default: the style's ``savefig.dpi``, 150).
    Returns the path."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    kw = {"dpi": dpi} if dpi is not None else {}
    with style():
        return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **kw))


@styled
def note_figure(text: str, *, title: str | None = None) -> Figure:
    """A figure with one empty panel saying ``text`` (a declared output whose input is missing)."""
    fig, (ax,) = grid(1, size=(5.2, 3.4))
    if title:
        ax.set_title(title)
    empty(ax, text)
    return fig


# ----------------------------------------------------------------------------- images
@styled
def image_grid(images: Any, spec: Any = None, *, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
               class_names: Sequence[str] | None = None, max_classes: int = 10, max_per_class: int = 10,
               title: str | None = None) -> Figure:
    """A grid of (synthetic) images, one row per class.

    Parameters
    ----------
    images : tensor or array ``[C, n, ch, H, W]``, normalised (``ch`` = 1 or 3)
    spec : a :class:`~hdd_lib.data.DatasetSpec` (or anything with ``mean``, ``std``,
        ``class_names``) giving the normalisation; ``mean``/``std`` override it; neither: images are
        shown as they are (clipped to [0, 1])
    class_names : row labels (default: ``spec.class_names`` or class ids)
    max_classes, max_per_class : the grid shows at most this many rows / columns
    """
    x = panels.to_numpy(images) if images is not None else np.zeros((0, 0, 1, 1, 1))
    if x.ndim == 4:  # one class
        x = x[None]
    if x.ndim != 5:
        raise ValueError(f"images must be [C, n, ch, H, W], got shape {x.shape}")
    x = x[:max_classes, :max_per_class]
    C, n, ch = x.shape[:3]
    fig = Figure(figsize=(min(12.0, 0.55 * max(n, 1) + 1.6), 0.55 * max(C, 1) + 0.7))
    ax = fig.subplots()
    ax.grid(False)
    ax.set_title(title or "Distilled images")
    if x.size == 0:
        empty(ax, "no images")
        return fig
    if ch not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {ch}")
    mu = mean if mean is not None else (getattr(spec, "mean", None) or (0.0,) * ch)
    sd = std if std is not None else (getattr(spec, "std", None) or (1.0,) * ch)
    mu = np.asarray(mu, dtype=np.float64).reshape(-1, 1, 1)
    sd = np.asarray(sd, dtype=np.float64).reshape(-1, 1, 1)
    if mu.shape[0] not in (1, ch) or sd.shape[0] not in (1, ch):
        raise ValueError(f"mean/std need 1 or {ch} values, got {mu.shape[0]} and {sd.shape[0]}")
    names = class_names if class_names is not None else getattr(spec, "class_names", None)
    names = list(names) if names is not None else [str(c) for c in range(C)]
    panels.draw_images(ax, np.clip(x * sd + mu, 0.0, 1.0), names)
    return fig


# ----------------------------------------------------------------------------- accuracies
@styled
def accuracy_vs_iteration(metrics: Sequence[dict[str, Any]] | None, *, methods: Sequence[str] | None = None,
                          title: str | None = None) -> Figure:
    """Test accuracy vs distillation iteration, one panel per dataset x IPC, a mean ± std band per
    method (the metrics' ``curve`` entries pooled over seeds with :func:`tidy.tidy_curves`)."""
    df = tidy_curves(metrics or [])
    if methods is not None:
        df = df[df["method"].isin(methods)]
    cells = list(df[["dataset", "ipc"]].drop_duplicates().itertuples(index=False)) if len(df) else []
    fig, axes = grid(len(cells), sharey=False)
    if title:
        fig.suptitle(title)
    if not cells:
        empty(axes[0], "no accuracy-vs-iteration data\n(evaluation during distillation was off)")
        return fig
    colors = panels.method_colors(df["method"].unique())
    for ax, (d, ipc) in zip(axes, cells):
        sel = df[(df["dataset"] == d) & (df["ipc"] == ipc)]
        for me in ordered(sel["method"], METHODS):
            s = sel[sel["method"] == me].sort_values("iteration")
            panels.band(ax, s["iteration"].to_numpy(float), s["mean"].to_numpy(float), s["std"].to_numpy(float),
                        colors[me], label(me, METHODS), markersize=3)
        ax.set_title(panels.panel_title(d, ipc, sel["data_copy"].iloc[0]))
        ax.set_xlabel("distillation iteration")
        ax.set_ylabel("test accuracy (%)")
        ax.legend()
    return fig


@styled
def accuracy_bars(metrics: dict[str, Any] | None, *, title: str | None = None) -> Figure:
    """One evaluation (:func:`hdd_lib.experiments.evaluate_cell`): per architecture a bar at the mean
    test accuracy with a ± std error bar (population std) and every network's accuracy as a dot."""
    results = (metrics or {}).get("results") or {}
    archs = [a for a in ordered(results, ARCHITECTURES) if (results[a] or {}).get("accs")]
    fig, (ax,) = grid(1, size=(max(3.2, 1.1 * len(archs) + 1.6), 3.4))
    ax.set_title(title or (metrics or {}).get("run_id") or "test accuracy")
    if not archs:
        empty(ax, "no evaluation results")
        return fig
    color = palette(1)[0]
    rng = np.random.default_rng(0)                       # fixed jitter: the same picture every time
    for i, a in enumerate(archs):
        accs = np.asarray([v for v in results[a]["accs"] if v is not None], dtype=np.float64)
        mean, std = float(np.mean(accs)), float(np.std(accs))
        ax.bar(i, mean, width=0.6, color=color, alpha=0.35, yerr=std, capsize=4, error_kw={"linewidth": 1.0})
        ax.scatter(i + rng.uniform(-0.15, 0.15, accs.size), accs, s=14, color=color, edgecolors="k",
                   linewidths=0.4, zorder=3)
        ax.annotate(f"{mean:.1f} ± {std:.1f}\n(n={accs.size})", (i, mean + std), textcoords="offset points",
                    xytext=(0, 4), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(archs)), [label(a, ARCHITECTURES) for a in archs])
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, min(100.0, 1.2 * max(float(np.max(results[a]["accs"])) for a in archs) + 5))
    return fig


@styled
def pruning_curves(metrics: Sequence[dict[str, Any]] | None, *, published: pd.DataFrame | None = None,
                   title: str | None = None) -> Figure:
    """Accuracy vs keep ratio with mean ± std bands per pruning score, one panel per dataset x IPC x
    method; published HDD pruning numbers (if any for the panel) as black crosses. ``published``
    defaults to the packaged numbers; pass an empty frame for none."""
    df = tidy_prune(metrics or [])
    pub = paper_numbers(published, pruning=True)
    cells = list(df[["dataset", "ipc", "method"]].drop_duplicates().itertuples(index=False)) if len(df) else []
    fig, axes = grid(len(cells), sharey=True)
    if title:
        fig.suptitle(title)
    if not cells:
        empty(axes[0], "no pruning results")
        return fig
    scores = ordered(df["score"], SCORES)
    pal = palette(len(scores))
    colors = {s: pal[i] for i, s in enumerate(scores)}
    for ax, (d, ipc, me) in zip(axes, cells):
        sel = df[(df["dataset"] == d) & (df["ipc"] == ipc) & (df["method"] == me)]
        for s in ordered(sel["score"], SCORES):
            r = sel[sel["score"] == s].sort_values("keep")
            panels.band(ax, r["keep"].to_numpy(float), r["mean"].to_numpy(float), r["std"].to_numpy(float),
                        colors[s], label(s, SCORES))
        if len(pub):
            p = pub[(pub["dataset"] == PAPER_DATASET.get(d, d)) & (pub["ipc"] == ipc) & (pub["base_method"] == me)]
            if len(p):
                ax.plot(p["keep"].astype(float), p["mean"].astype(float), "x", color="k", markersize=6,
                        label="paper (hyperbolic)")
        ax.invert_xaxis()
        ax.set_title(panels.panel_title(d, ipc, sel["data_copy"].iloc[0], f", {label(me, METHODS)}"))
        ax.set_xlabel("keep ratio")
        ax.set_ylabel("test accuracy (%)")
        ax.legend()
    return fig


# ----------------------------------------------------------------------------- histories
@styled
def geodm_trajectories(history: Sequence[dict[str, Any]] | None, *, title: str | None = None) -> Figure:
    """GeoDM's geometry during distillation: curvatures ``k_H``, ``k_S`` (left) and factor weights
    ``w_E``, ``w_H``, ``w_S`` (right) vs iteration, from a ``distill.json`` history."""
    fig, (left, right) = grid(2, ncols=2)
    if title:
        fig.suptitle(title)
    sides = ((left, ("k_H", "k_S"), "curvature parameter k", "curvatures"),
             (right, ("w_E", "w_H", "w_S"), "weight", "factor weights"))
    pal = palette(5)
    colors = dict(zip(("k_H", "k_S", "w_E", "w_H", "w_S"), (pal[1], pal[2], pal[0], pal[1], pal[2])))
    for ax, keys, ylabel, what in sides:
        series = history_series(list(history or []), keys)
        if not series:
            empty(ax, f"no {what} in the history\n(not a GeoDM run, or not logged)")
            continue
        for key, (it, val) in series.items():
            ax.plot(it, val, color=colors[key], label=key)
        ax.set_xlabel("distillation iteration")
        ax.set_ylabel(ylabel)
        ax.set_title(what)
        ax.legend()
    return fig


@styled
def loss_curve(history: Sequence[dict[str, Any]] | None, *, title: str | None = None, smooth: int | None = None) -> Figure:
    """Matching loss vs iteration from a ``distill.json`` history (log scale when positive). A moving
    average over ``smooth`` logged values is drawn on top (default: about 1/50 of the points)."""
    fig, (ax,) = grid(1, size=(5.2, 3.4))
    ax.set_title(title or "matching loss")
    series = history_series(list(history or []), ("loss",))
    if "loss" not in series:
        empty(ax, "no loss values in the history")
        return fig
    it, val = series["loss"]
    color = palette(1)[0]
    ax.plot(it, val, color=color, alpha=0.35, linewidth=0.8, label="logged")
    w = smooth if smooth is not None else max(1, len(val) // 50)
    if w > 1 and len(val) > w:
        avg = np.convolve(val, np.ones(w) / w, mode="valid")
        ax.plot(it[w - 1:], avg, color=color, label=f"moving average ({w})")
    if np.all(val > 0):
        ax.set_yscale("log")
    ax.set_xlabel("distillation iteration")
    ax.set_ylabel("loss")
    ax.legend()
    return fig



# ----------------------------------------------------------------------------- the pipeline's figures
def write_all(metrics_dir: str | os.PathLike, paths: Paths, *, figure_run: dict[str, Any] | None = None,
              published: pd.DataFrame | None = None) -> list[Path]:
    """Write every figure of the ``figures`` stage (:data:`FIGURES`) to ``paths.figures``.

    Parameters
    ----------
    metrics_dir : folder holding ``eval/`` and ``prune/`` metric files (``results/metrics``)
    paths : the repository's :class:`~hdd_lib.pipeline.Paths` (runs are read from ``paths.runs``)
    figure_run : ``{dataset, ipc, method, seed}`` (optionally ``variant``) of the run shown in the
        single-run figures (``params.yaml`` ``report.figure_run``); None: the first evaluation
        metric's run
    published : published pruning numbers for Figure 3 (default: the packaged ones)

    Returns
    -------
    The written paths, in :data:`FIGURES` order: Figure 2 (accuracy vs iteration of every
    evaluation metric), Figure 3 (pruning curves of every pruning metric), Figure 4 (GeoDM's
    curvatures and weights from the ``distill.json`` of the GeoDM run with the figure run's dataset,
    IPC and seed; the figure run itself when it is a GeoDM method), Figure 5 (the figure run's
    synthetic images, denormalised with the spec stored in the set) and Figure 7 (the figure
    run's loss). Every file is always written: a missing or unreadable input gives a panel that
    says why. A ``figure_run`` without the four keys raises ``ValueError``.
    """
    metrics_dir, out = Path(metrics_dir), paths.figures
    evals = load_metrics(metrics_dir / "eval")
    figs = {"accuracy": accuracy_vs_iteration(evals, title="Test accuracy during distillation"),
            "pruning": pruning_curves(load_metrics(metrics_dir / "prune"), published=published,
                                      title="Pruning the distilled sets")}
    run = _figure_run(figure_run, evals)
    if run is None:
        why = "no run to show: report.figure_run is not set\nand there are no evaluation metrics yet"
        figs.update({key: note_figure(why) for key in ("geodm", "images", "loss")})
    else:
        d, ipc, seed = run["dataset"], int(run["ipc"]), int(run["seed"])
        rid = run_id(d, ipc, run["method"], seed, run.get("variant"))
        geo_rid = rid if "geodm" in run["method"] else run_id(d, ipc, "geodm", seed)
        record, why = _read(paths, geo_rid, load_json, paths.distill_record(geo_rid))
        title = f"GeoDM geometry during distillation: {geo_rid}"
        figs["geodm"] = (geodm_trajectories(record.get("history"), title=title) if record is not None
                         else note_figure(why, title=title))
        syn, why = _read(paths, rid, SyntheticSet.load, paths.synset(rid))
        title = f"Synthetic images: {rid}"
        figs["images"] = (image_grid(syn.per_class(), _spec(syn.meta), title=title) if syn is not None
                          else note_figure(why, title=title))
        record, why = _read(paths, rid, load_json, paths.distill_record(rid))
        title = f"Matching loss: {rid}"
        figs["loss"] = (loss_curve(record.get("history"), title=title) if record is not None
                        else note_figure(why, title=title))
    return [save_figure(figs[key], out / name) for key, name in FIGURES.items()]


def _figure_run(figure_run: dict[str, Any] | None, evals: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    if figure_run is None:
        if not evals:
            return None
        figure_run = {key: evals[0].get(key) for key in ("dataset", "ipc", "method", "seed", "variant")}
    missing = [key for key in ("dataset", "ipc", "method", "seed") if figure_run.get(key) is None]
    if missing:
        raise ValueError(f"figure_run needs dataset, ipc, method and seed; {', '.join(missing)} missing in {figure_run}")
    return dict(figure_run)


def _read(paths: Paths, rid: str, load: Callable[[Path], Any], path: Path) -> tuple[Any, str]:
    """``(load(path), "")``, or ``(None, why)`` when the file is missing or unreadable."""
    shown = path.relative_to(paths.root) if path.is_relative_to(paths.root) else path
    try:
        return load(path), ""
    except FileNotFoundError:
        return None, f"{shown} does not exist\n(run the distill stage for {rid})"
    except CorruptFileError as e:
        return None, f"{shown} cannot be read\n({type(e).__name__}); re-run the distill stage for {rid}"


def _spec(meta: dict[str, Any]) -> Any:
    """The :class:`~hdd_lib.data.DatasetSpec` stored in a synthetic set's ``meta["dataset"]`` (None if absent)."""
    fields = meta.get("dataset")
    if not isinstance(fields, dict):
        return None
    return DatasetSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
