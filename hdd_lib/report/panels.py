"""Drawing blocks shared by the figures: the style, panel grids, colours, and panels drawn on one Axes.

Nothing here creates pyplot state: :func:`grid` builds a :class:`~matplotlib.figure.Figure`
directly, and every ``draw_*`` function draws on an ``Axes`` it is given. The figures themselves
(titles, layout, what is plotted) are :mod:`hdd_lib.report.figures`. ::

    from hdd_lib.report import panels
    @panels.styled
    def my_figure(values) -> Figure:
        fig, (ax,) = panels.grid(1)
        if not values:
            panels.empty(ax, "nothing to draw")
        ...
"""

from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from matplotlib import style as mpl_style
from matplotlib.figure import Figure

from .tidy import DATASETS, METHODS, label

__all__ = ["STYLE", "NOTE", "style", "styled", "empty", "grid", "palette", "method_colors", "band", "panel_title",
           "draw_images", "to_numpy"]

#: The style file applied to every figure.
STYLE = Path(__file__).with_name("hdd.mplstyle")
#: Text properties of the explanatory note of an empty panel.
NOTE = {"ha": "center", "va": "center", "color": "0.45", "fontsize": 9, "wrap": True}


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Context in which matplotlib uses ``hdd.mplstyle`` (restored on exit)."""
    with mpl_style.context(str(STYLE)):
        yield


def styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under :func:`style`; create the first tick of each axis there too (later
    ticks copy it), so that a figure drawn outside the context (a notebook) keeps the style."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with style():
            fig = fn(*args, **kwargs)
            for ax in fig.axes:
                ax.xaxis.get_major_ticks(1)
                ax.yaxis.get_major_ticks(1)
        return fig

    return wrapper


def empty(ax: Any, text: str) -> None:
    """Turn ``ax`` into an empty panel that says ``text``."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, **NOTE)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def grid(n: int, *, ncols: int = 3, size: tuple[float, float] = (3.4, 2.7), sharey: bool = False
         ) -> tuple[Figure, list[Any]]:
    """A new figure with ``n`` panels (at least one) in rows of ``ncols``; ``size`` is per panel."""
    n = max(n, 1)
    cols = min(n, ncols)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=sharey, squeeze=False)).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def palette(n: int) -> list[tuple[float, float, float]]:
    """``n`` distinguishable colours (seaborn's colorblind palette up to 10, husl beyond)."""
    import seaborn as sns  # imported when drawing: it is slow to import

    return list(sns.color_palette("colorblind" if n <= 10 else "husl", max(n, 1)))


def method_colors(methods: Sequence[str]) -> dict[str, Any]:
    """One colour per method, the same in every figure (known methods in :data:`tidy.METHODS` order)."""
    known = list(METHODS)
    others = sorted(m for m in methods if m not in known)
    pal = palette(len(known) + len(others))
    return {m: pal[i] for i, m in enumerate(known + others)}


def band(ax: Any, x: np.ndarray, mean: np.ndarray, std: np.ndarray, color: Any, label: str, **kw: Any) -> None:
    """A line with markers at ``mean`` and a shaded ``mean ± std`` band (NaN std: no band)."""
    ax.plot(x, mean, color=color, label=label, marker="o", **kw)
    std = np.nan_to_num(std)
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)


def panel_title(d: str, ipc: int, copy: str | None = None, extra: str = "") -> str:
    """``"<data copy>, IPC <ipc><extra>"``."""
    return f"{copy or label(d, DATASETS)}, IPC {ipc}{extra}"


def to_numpy(x: Any) -> np.ndarray:
    """A tensor or array-like as a float64 NumPy array (on the host)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


# ----------------------------------------------------------------------------- images
def draw_images(ax: Any, x: np.ndarray, names: Sequence[str], *, pad: int = 1) -> None:
    """Images ``x [C, n, ch, H, W]`` in ``[0, 1]`` (``ch`` = 1: grey) as one canvas, a row per class
    labelled with ``names``."""
    C, n, ch, H, W = x.shape
    canvas = np.ones((C * (H + pad) + pad, n * (W + pad) + pad, ch))
    for c in range(C):
        for i in range(n):
            top, left = pad + c * (H + pad), pad + i * (W + pad)
            canvas[top:top + H, left:left + W] = x[c, i].transpose(1, 2, 0)
    if ch == 1:
        ax.imshow(canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(canvas)
    ax.set_yticks([pad + c * (H + pad) + H / 2 - 0.5 for c in range(C)], list(names)[:C])
    ax.set_xticks([])
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
