"""The Poincaré-disk figures: real vs synthetic (Figure 6) and features against the clamp (Figure 1)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from hdd_lib.data import DatasetSpec
from hdd_lib.report import figures as F
from hdd_lib.report import poincare
from hdd_lib.visual import feature_norm_stats, poincare_disk

from . import png_size


def test_poincare_plot(tmp_path):
    g = torch.Generator().manual_seed(0)
    disk = poincare_disk(torch.randn(3, 20, 8, generator=g) * 2, torch.randn(3, 4, 8, generator=g), k=1.0)
    assert png_size(F.poincare_plot(disk, class_names=["a", "b", "c"]), tmp_path / "disk.png") > 1000
    no_syn = poincare_disk(torch.randn(2, 5, 8, generator=g), torch.zeros(2, 0, 8), scale=0.1)
    assert png_size(F.poincare_plot(no_syn), tmp_path / "nosyn.png") > 0


@pytest.mark.parametrize("empty", [None, {}, "zero"])
def test_poincare_plot_of_nothing(tmp_path, empty):
    if empty == "zero":
        empty = poincare_disk(torch.zeros(0, 0, 4), torch.zeros(0, 0, 4))
    assert png_size(F.poincare_plot(empty), tmp_path / "empty.png") > 0


def test_poincare_plot_of_real_points_only(tmp_path):
    g = torch.Generator().manual_seed(1)
    disk = poincare_disk(torch.randn(3, 10, 8, generator=g), None, scale=0.2)
    fig = F.poincare_plot(disk, class_names=["a", "b", "c"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["a", "b", "c", "real centroid"]                 # no synthetic entries
    assert png_size(fig, tmp_path / "real.png") > 1000


def _geo(norm: float = 23.0, k: float = 1.0) -> dict:
    """What :func:`hdd_lib.experiments.geometry_summary` returns, for 3 classes of 12 features."""
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 12, 32, generator=g) + 2 * torch.randn(3, 1, 32, generator=g)
    feats = norm * feats / feats.norm(dim=-1, keepdim=True) * (1 + 0.1 * torch.rand(3, 12, 1, generator=g))
    stats = feature_norm_stats(feats, k=k)
    summary = {"dataset": "tiny", "k": k, "feature_dim": 32,
               "norms": {key: v for key, v in stats.items() if key != "norms"}}
    spec = DatasetSpec("tiny", 1, (8, 8), 3, (0.0,), (1.0,), ("a", "b", "c"))
    return {"summary": summary, "features": feats, "stats": stats, "spec": spec}


@pytest.mark.parametrize("k", [1.0, 4.0])
def test_geometry_figure_panels(tmp_path, k):
    geo = _geo(k=k)
    fig = F.geometry_figure(geo, median_fraction=0.5, title="tiny: features")
    hist, raw, scaled = fig.axes
    threshold = 10.0 * math.sqrt(k)
    assert [line.get_xdata()[0] for line in hist.get_lines()] == [threshold]   # the clamp radius
    assert "100 % at or above" in hist.get_legend().get_texts()[1].get_text()
    assert raw.get_title() == "as they are: 100 % at the clamp"
    factor = float(re.search(r"×([0-9.e+-]+)", scaled.get_title()).group(1))
    median = float(geo["features"].norm(dim=-1).median())
    assert factor == pytest.approx(0.5 * threshold / median, rel=1e-2)
    assert "half the clamp radius" in scaled.get_title()
    assert [t.get_text() for t in scaled.get_legend().get_texts()] == ["a", "b", "c", "real centroid"]
    # as they are, every point sits on the clamp circle; scaled, the median point is at half its distance
    # (collections per class: the real points, then their centroid)
    points = np.concatenate([c.get_offsets() for c in raw.collections[0::2]])
    assert len(points) == 36 and np.allclose(np.linalg.norm(points, axis=1), math.tanh(10.0 / 2))
    radii = np.linalg.norm(np.concatenate([c.get_offsets() for c in scaled.collections[0::2]]), axis=1)
    assert np.median(radii) == pytest.approx(math.tanh(5.0 / 2), rel=1e-3)
    assert png_size(fig, tmp_path / "geo.png") > 1000


def test_geometry_figure_unsaturated_and_empty(tmp_path):
    fig = F.geometry_figure(_geo(norm=2.0), median_fraction=0.1)
    assert fig.axes[1].get_title() == "as they are: 0 % at the clamp"
    assert fig.axes[2].get_title().endswith("median |f| = 0.1 × clamp radius")
    radii = np.linalg.norm(np.concatenate([c.get_offsets() for c in fig.axes[2].collections[0::2]]), axis=1)
    assert np.median(radii) == pytest.approx(math.tanh(1.0 / 2), rel=1e-3)        # distance 0.1 x 10
    assert png_size(fig, tmp_path / "small.png") > 1000
    for geo in (None, {}, dict(_geo(), features=torch.zeros(0, 0, 4))):
        fig = F.geometry_figure(geo)
        assert len(fig.axes) == 3 and png_size(fig, tmp_path / "none.png") > 0


def test_norm_histogram_without_a_clamp(tmp_path):
    fig = F.note_figure("x")
    ax = fig.axes[0]
    poincare.draw_norm_histogram(ax, feature_norm_stats(torch.ones(5, 4), clamp=None))
    assert ax.get_lines() == [] and len(ax.patches) > 0
