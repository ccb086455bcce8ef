"""The Poincaré disk: its math (exact radii, exact 2-D case, containment, symmetry, saturation), one run's
picture (Figure 6) and the clamp figure (Figure 1)."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch

from hdd_lib import geometry as G
from hdd_lib.data import DatasetSpec, get_spec
from hdd_lib.params import Paths
from hdd_lib.report import figures as F
from hdd_lib.report import poincare
from hdd_lib.synset import SyntheticSet

from . import png_size


def _feats(C=3, N=12, M=4, D=16, spread=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    offsets = torch.randn(C, 1, D, generator=g)
    real = spread * (torch.randn(C, N, D, generator=g) + offsets)
    syn = spread * (torch.randn(C, M, D, generator=g) + offsets)
    return real, syn


def _unit_disk_dist(p: np.ndarray, q: np.ndarray, k: float) -> np.ndarray:
    r"""Geodesic distance between unit-disk points of the ball model with curvature -1/k."""
    num = 2.0 * ((p - q) ** 2).sum(-1)
    den = (1.0 - (p**2).sum(-1)) * (1.0 - (q**2).sum(-1))
    return math.sqrt(k) * np.arccosh(1.0 + num / den)


@pytest.mark.parametrize("k", [0.5, 1.0, 2.4])
@pytest.mark.parametrize("how,clamp", [("expmap0", 10.0), ("expmap0", None), ("lift", None)])
def test_disk_radius_is_the_poincare_radius_of_the_hyperbolic_distance(k, how, clamp):
    real, syn = _feats(spread=1.5)
    out = G.poincare_disk(real, syn, k=k, how=how, clamp=clamp)
    o = torch.zeros(G.lift(real, k=k).shape[-1], dtype=torch.float64)
    o[0] = math.sqrt(k)
    for name, feat in (("real", real), ("syn", syn)):
        x = G.lift(feat, k=k, how=how, clamp=clamp)
        d = G.dist(o.expand_as(x), x, k=k).numpy()
        np.testing.assert_allclose(out[f"{name}_dist0"], d, rtol=1e-9, atol=1e-9)
        rho = np.linalg.norm(out[name], axis=-1)
        np.testing.assert_allclose(rho, np.tanh(d / (2 * math.sqrt(k))), rtol=1e-9, atol=1e-12)
        # the same radius as geometry.to_poincare (ball of radius sqrt(k)), rescaled to the unit disk
        ball = G.to_poincare(x, k=k).norm(dim=-1).numpy()
        np.testing.assert_allclose(math.sqrt(k) * rho, ball, rtol=1e-9, atol=1e-12)
    for name, pts in (("real", real), ("syn", syn)):
        c = G.centroid(G.lift(pts, k=k, how=how, clamp=clamp), k=k)
        d = G.dist(o.expand_as(c), c, k=k).numpy()
        np.testing.assert_allclose(np.linalg.norm(out[f"{name}_centroids"], axis=-1),
                                   np.tanh(d / (2 * math.sqrt(k))), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("k", [0.5, 1.0, 2.0])
def test_two_dimensional_features_are_drawn_isometrically(k):
    real, syn = _feats(D=2, spread=1.0, seed=3)
    out = G.poincare_disk(real, syn, k=k, center=False)
    x = G.lift(torch.cat([real, syn], 1), k=k)
    ball = G.to_poincare(x, k=k).reshape(-1, 2).numpy() / math.sqrt(k)
    disk = np.concatenate([out["real"], out["syn"]], 1).reshape(-1, 2)
    # an orthogonal map of to_poincare: the same Gram matrix
    np.testing.assert_allclose(disk @ disk.T, ball @ ball.T, atol=1e-10)
    # hence the same hyperbolic distances between all points
    flat = x.reshape(-1, x.shape[-1])
    lorentz = G.pairwise_dist(flat, flat, k=k).numpy()
    poincare = _unit_disk_dist(disk[:, None], disk[None], k)
    np.testing.assert_allclose(poincare, lorentz, atol=1e-6)
    assert out["explained_variance"] == pytest.approx(1.0)
    assert out["plane_fraction"] == pytest.approx(1.0)


@pytest.mark.parametrize("how,clamp,scale", [("expmap0", 10.0, None), ("expmap0", 10.0, 1e3), ("lift", None, None),
                                             ("expmap0", 10.0, 1e-6)])
def test_all_points_inside_the_disk(how, clamp, scale):
    real, syn = _feats(D=64, spread=5.0)
    out = G.poincare_disk(real, syn, how=how, clamp=clamp, scale=scale)
    for name in ("real", "syn", "real_centroids", "syn_centroids"):
        r = np.linalg.norm(out[name], axis=-1)
        assert np.isfinite(r).all() and (r < 1.0).all(), name
    assert out["real_labels"].shape == (3, 12) and (out["real_labels"][2] == 2).all()
    assert out["syn_labels"].shape == (3, 4)


def test_centroid_of_a_symmetric_set_is_the_origin():
    g = torch.Generator().manual_seed(1)
    half = torch.randn(4, 6, 10, generator=g) * 2
    sym = torch.cat([half, -half], 1)                              # {f, -f} per class
    out = G.poincare_disk(sym, sym[:, :3], k=1.5)
    np.testing.assert_allclose(out["real_centroids"], 0.0, atol=1e-12)
    np.testing.assert_allclose(out["real_centroid_dist0"], 0.0, atol=1e-7)


def test_centroid_distance_is_hdds():
    real, syn = _feats()
    out = G.poincare_disk(real, syn, k=2.4)
    cr = G.centroid(G.lift(real, k=2.4), k=2.4)
    cs = G.centroid(G.lift(syn, k=2.4), k=2.4)
    np.testing.assert_allclose(out["centroid_dist"], G.dist(cr, cs, k=2.4).numpy(), rtol=1e-12)


def test_realistic_convnet_norms_saturate_and_scale_reveals_the_interior():
    g = torch.Generator().manual_seed(0)
    feat = torch.rand(2, 30, 2048, generator=g)
    feat = 23.0 * feat / feat.norm(dim=-1, keepdim=True)         # |f| = 23 as with instance-norm ConvNets
    out = G.poincare_disk(feat, feat[:, :5], k=1.0)
    assert out["saturated"] == 1.0 and out["saturated_real"] == 1.0
    np.testing.assert_allclose(out["real_dist0"], 10.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out["real"], axis=-1), math.tanh(5.0), rtol=1e-12)
    assert out["max_disk_radius"] == pytest.approx(math.tanh(5.0))
    scaled = G.poincare_disk(feat, feat[:, :5], k=1.0, scale=0.2)
    assert scaled["saturated"] == 0.0
    expected = 0.2 * feat.double().norm(dim=-1).numpy()               # expmap0, k = 1: distance = |f|
    np.testing.assert_allclose(scaled["real_dist0"], expected, rtol=1e-9)
    assert (np.linalg.norm(scaled["real"], axis=-1) < math.tanh(5.0) - 1e-3).all()


def test_feature_norm_stats():
    feat = torch.tensor([[3.0, 4.0], [0.0, 30.0], [6.0, 8.0]])   # norms 5, 30, 10
    s = G.feature_norm_stats(feat, k=1.0, clamp=10.0)
    np.testing.assert_allclose(s["norms"], [5.0, 30.0, 10.0])
    assert s["threshold"] == 10.0 and s["fraction_saturated"] == pytest.approx(2 / 3)
    assert (s["count"], s["min"], s["max"], s["median"]) == (3, 5.0, 30.0, 10.0)
    norms = np.array([5.0, 30.0, 10.0])
    for key, q in (("q05", 0.05), ("q25", 0.25), ("q75", 0.75), ("q95", 0.95)):
        assert s[key] == pytest.approx(np.quantile(norms, q))
    s4 = G.feature_norm_stats(feat, k=4.0, clamp=10.0)
    assert s4["threshold"] == 20.0 and s4["fraction_saturated"] == pytest.approx(1 / 3)
    assert G.feature_norm_stats(feat, clamp=None)["fraction_saturated"] == 0.0
    assert math.isnan(G.feature_norm_stats(torch.zeros(0, 8))["fraction_saturated"])
    assert math.isnan(G.feature_norm_stats(torch.zeros(0, 8))["q95"])
    with pytest.raises(ValueError):
        G.feature_norm_stats(feat, k=0.0)


def test_edge_cases_and_validation():
    real, _ = _feats()
    out = G.poincare_disk(real, torch.zeros(3, 0, 16))
    assert out["syn"].shape == (3, 0, 2) and np.isnan(out["syn_centroids"]).all()
    assert np.isnan(out["centroid_dist"]).all()
    again = G.poincare_disk(real, torch.zeros(3, 0, 16))
    np.testing.assert_array_equal(out["real"], again["real"])     # deterministic picture
    with pytest.raises(ValueError, match=r"\[C, N, D\]"):
        G.poincare_disk(real[0], real[0])
    with pytest.raises(ValueError, match="same C and D"):
        G.poincare_disk(real, real[:2])


@pytest.mark.parametrize("scale", [None, 0.05])
def test_real_points_only(scale):
    real, syn = _feats(D=32, spread=4.0)
    alone = G.poincare_disk(real, None, k=1.5, scale=scale)
    both = G.poincare_disk(real, syn, k=1.5, scale=scale)
    assert not any(key.startswith("syn") for key in alone) and "centroid_dist" not in alone
    for key in ("real", "real_centroids", "real_dist0", "real_centroid_dist0", "real_labels"):
        np.testing.assert_array_equal(alone[key], both[key])                # the PCA uses real points only
    assert alone["saturated"] == alone["saturated_real"] == both["saturated_real"]
    assert (alone["explained_variance"], alone["scale"]) == (both["explained_variance"], scale)


# ----------------------------------------------------------------------------- figures
def test_poincare_plot(tmp_path):
    g = torch.Generator().manual_seed(0)
    disk = G.poincare_disk(torch.randn(3, 20, 8, generator=g) * 2, torch.randn(3, 4, 8, generator=g), k=1.0,
                           scale=0.432834)
    fig = F.poincare_plot(disk, class_names=["a", "b", "c"])
    assert fig.axes[0].get_title() == "Poincaré disk: k=1, expmap0, clamp=10.0, features ×0.433"   # 3 digits
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["a", "b", "c", "synthetic", "real centroid", "synthetic centroid"]
    assert png_size(fig, tmp_path / "disk.png") > 1000
    no_syn = G.poincare_disk(torch.randn(2, 5, 8, generator=g), torch.zeros(2, 0, 8), scale=0.1)
    assert png_size(F.poincare_plot(no_syn), tmp_path / "nosyn.png") > 1000


def test_poincare_plot_of_real_points_only(tmp_path):
    g = torch.Generator().manual_seed(1)
    disk = G.poincare_disk(torch.randn(3, 10, 8, generator=g), None, scale=0.2)
    fig = F.poincare_plot(disk, class_names=["a", "b", "c"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["a", "b", "c", "real centroid"]                 # no synthetic entries
    assert png_size(fig, tmp_path / "real.png") > 1000


def test_poincare_for_run_embeds_the_runs_set_with_its_hdd_settings(tmp_path):
    paths = Paths(tmp_path, tmp_path / "results")
    spec = get_spec("digits")
    config = {"model": {"name": "convnet", "width": 8}, "loss": {"name": "hdd", "k": 2.0, "how": "expmap0", "clamp": 10.0}}
    syn = SyntheticSet(torch.randn(10, 3, 1, 8, 8, generator=torch.Generator().manual_seed(0)),
                       meta={"dataset": dataclasses.asdict(spec), "config": config})
    syn.save(paths.synset("digits-ipc3-dm_hdd-s1"))
    run = {"dataset": "digits", "ipc": 3, "method": "dm_hdd", "seed": 1}
    disk = poincare.poincare_for_run(paths, run, batch=8, median_fraction=0.2)
    assert disk["run_id"] == "digits-ipc3-dm_hdd-s1" and disk["class_names"] == list(spec.class_names)
    assert disk["real"].shape == (10, 8, 2) and disk["syn"].shape == (10, 3, 2) and disk["k"] == 2.0
    # scaled so that the (lower) median real point lies at distance 0.2 x clamp x sqrt(k) from the origin
    assert np.sort(disk["real_dist0"].ravel())[(80 - 1) // 2] == pytest.approx(0.2 * 10.0 * math.sqrt(2.0), rel=1e-6)
    again = poincare.poincare_for_run(paths, run, batch=8, median_fraction=0.2)
    np.testing.assert_array_equal(disk["syn"], again["syn"])            # the same picture every time


def _geo(norm: float = 23.0, k: float = 1.0) -> dict:
    """What :func:`hdd_lib.experiments.geometry_summary` returns, for 3 classes of 12 features."""
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 12, 32, generator=g) + 2 * torch.randn(3, 1, 32, generator=g)
    feats = norm * feats / feats.norm(dim=-1, keepdim=True) * (1 + 0.1 * torch.rand(3, 12, 1, generator=g))
    stats = G.feature_norm_stats(feats, k=k)
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


def test_geometry_figure_unsaturated(tmp_path):
    fig = F.geometry_figure(_geo(norm=2.0), median_fraction=0.1)
    assert fig.axes[1].get_title() == "as they are: 0 % at the clamp"
    assert fig.axes[2].get_title().endswith("median |f| = 0.1 × clamp radius")
    radii = np.linalg.norm(np.concatenate([c.get_offsets() for c in fig.axes[2].collections[0::2]]), axis=1)
    assert np.median(radii) == pytest.approx(math.tanh(1.0 / 2), rel=1e-3)        # distance 0.1 x 10
    assert png_size(fig, tmp_path / "small.png") > 1000


def test_norm_histogram_without_a_clamp(tmp_path):
    _, (ax,) = F.grid(1)
    poincare.draw_norm_histogram(ax, G.feature_norm_stats(torch.ones(5, 4), clamp=None))
    assert ax.get_lines() == [] and len(ax.patches) > 0
