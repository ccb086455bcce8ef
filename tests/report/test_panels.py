"""The shared drawing blocks: panel grids, stable colours, the image canvas, the style decorator."""

from __future__ import annotations

import matplotlib
import numpy as np

from hdd_lib.report import panels


def test_grid_hides_the_unused_panels():
    fig, axes = panels.grid(4, ncols=3)
    assert len(axes) == 4 and len(fig.axes) == 6
    assert [ax.get_visible() for ax in fig.axes] == [True] * 4 + [False] * 2
    _, (only,) = panels.grid(0)                              # at least one panel
    assert only.get_visible()


def test_method_colours_do_not_depend_on_which_methods_are_present():
    both = panels.method_colors(["dm_hdd", "dm"])
    assert panels.method_colors(["dm_hdd"])["dm_hdd"] == both["dm_hdd"]
    assert len(set(panels.method_colors(["x", "dm"]).values())) > 1


def test_draw_images_lays_out_one_row_per_class():
    _, (ax,) = panels.grid(1)
    x = np.stack([np.full((3, 1, 4, 4), v) for v in (0.0, 0.5)])          # [C=2, n=3, 1, 4, 4]
    panels.draw_images(ax, x, ["zero", "half"])
    canvas = ax.get_images()[0].get_array()
    assert canvas.shape == (2 * 5 + 1, 3 * 5 + 1)
    assert np.all(canvas[1:5, 1:5] == 0.0) and np.all(canvas[6:10, 1:5] == 0.5) and canvas[0, 0] == 1.0
    assert [t.get_text() for t in ax.get_yticklabels()] == ["zero", "half"]


def test_styled_applies_the_style_only_inside():
    before = matplotlib.rcParams["axes.spines.top"]

    @panels.styled
    def make():
        fig, _ = panels.grid(1)
        assert matplotlib.rcParams["axes.spines.top"] is False               # hdd.mplstyle
        return fig

    fig = make()
    assert matplotlib.rcParams["axes.spines.top"] == before
    assert not fig.axes[0].spines["top"].get_visible()
