"""The Poincaré-disk picture: exact radii, exact 2-D case, containment, symmetry, saturation."""

from __future__ import annotations

import ast
import inspect
import math

import numpy as np
import pytest
import torch

from hdd_lib import geometry as G
from hdd_lib import visual as V


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


def test_visual_does_not_import_matplotlib():
    tree = ast.parse(inspect.getsource(V))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not any(n.startswith("matplotlib") or n.startswith("seaborn") for n in names)


@pytest.mark.parametrize("k", [0.5, 1.0, 2.4])
@pytest.mark.parametrize("how,clamp", [("expmap0", 10.0), ("expmap0", None), ("lift", None)])
def test_disk_radius_is_the_poincare_radius_of_the_hyperbolic_distance(k, how, clamp):
    real, syn = _feats(spread=1.5)
    out = V.poincare_disk(real, syn, k=k, how=how, clamp=clamp)
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
    out = V.poincare_disk(real, syn, k=k, center=False)
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
    out = V.poincare_disk(real, syn, how=how, clamp=clamp, scale=scale)
    for name in ("real", "syn", "real_centroids", "syn_centroids"):
        r = np.linalg.norm(out[name], axis=-1)
        assert np.isfinite(r).all() and (r < 1.0).all(), name
    assert out["real_labels"].shape == (3, 12) and (out["real_labels"][2] == 2).all()
    assert out["syn_labels"].shape == (3, 4)


def test_centroid_of_a_symmetric_set_is_the_origin():
    g = torch.Generator().manual_seed(1)
    half = torch.randn(4, 6, 10, generator=g) * 2
    sym = torch.cat([half, -half], 1)                              # {f, -f} per class
    out = V.poincare_disk(sym, sym[:, :3], k=1.5)
    np.testing.assert_allclose(out["real_centroids"], 0.0, atol=1e-12)
    np.testing.assert_allclose(out["real_centroid_dist0"], 0.0, atol=1e-7)


def test_centroid_distance_is_hdds():
    real, syn = _feats()
    out = V.poincare_disk(real, syn, k=2.4)
    cr = G.centroid(G.lift(real, k=2.4), k=2.4)
    cs = G.centroid(G.lift(syn, k=2.4), k=2.4)
    np.testing.assert_allclose(out["centroid_dist"], G.dist(cr, cs, k=2.4).numpy(), rtol=1e-12)


def test_realistic_convnet_norms_saturate_and_scale_reveals_the_interior():
    g = torch.Generator().manual_seed(0)
    feat = torch.rand(2, 30, 2048, generator=g)
    feat = 23.0 * feat / feat.norm(dim=-1, keepdim=True)         # |f| = 23 as with instance-norm ConvNets
    out = V.poincare_disk(feat, feat[:, :5], k=1.0)
    assert out["saturated"] == 1.0 and out["saturated_real"] == 1.0
    np.testing.assert_allclose(out["real_dist0"], 10.0, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out["real"], axis=-1), math.tanh(5.0), rtol=1e-12)
    assert out["max_disk_radius"] == pytest.approx(math.tanh(5.0))
    scaled = V.poincare_disk(feat, feat[:, :5], k=1.0, scale=0.2)
    assert scaled["saturated"] == 0.0
    expected = 0.2 * feat.double().norm(dim=-1).numpy()               # expmap0, k = 1: distance = |f|
    np.testing.assert_allclose(scaled["real_dist0"], expected, rtol=1e-9)
    assert (np.linalg.norm(scaled["real"], axis=-1) < math.tanh(5.0) - 1e-3).all()


def test_feature_norm_stats():
    feat = torch.tensor([[3.0, 4.0], [0.0, 30.0], [6.0, 8.0]])   # norms 5, 30, 10
    s = V.feature_norm_stats(feat, k=1.0, clamp=10.0)
    np.testing.assert_allclose(s["norms"], [5.0, 30.0, 10.0])
    assert s["threshold"] == 10.0 and s["fraction_saturated"] == pytest.approx(2 / 3)
    assert (s["count"], s["min"], s["max"], s["median"]) == (3, 5.0, 30.0, 10.0)
    norms = np.array([5.0, 30.0, 10.0])
    for key, q in (("q05", 0.05), ("q25", 0.25), ("q75", 0.75), ("q95", 0.95)):
        assert s[key] == pytest.approx(np.quantile(norms, q))
    s4 = V.feature_norm_stats(feat, k=4.0, clamp=10.0)
    assert s4["threshold"] == 20.0 and s4["fraction_saturated"] == pytest.approx(1 / 3)
    assert V.feature_norm_stats(feat, clamp=None)["fraction_saturated"] == 0.0
    assert math.isnan(V.feature_norm_stats(torch.zeros(0, 8))["fraction_saturated"])
    assert math.isnan(V.feature_norm_stats(torch.zeros(0, 8))["q95"])
    with pytest.raises(ValueError):
        V.feature_norm_stats(feat, k=0.0)


def test_edge_cases_and_validation():
    real, _ = _feats()
    out = V.poincare_disk(real, torch.zeros(3, 0, 16))
    assert out["syn"].shape == (3, 0, 2) and np.isnan(out["syn_centroids"]).all()
    assert np.isnan(out["centroid_dist"]).all()
    again = V.poincare_disk(real, torch.zeros(3, 0, 16))
    np.testing.assert_array_equal(out["real"], again["real"])     # deterministic picture
    with pytest.raises(ValueError, match=r"\[C, N, D\]"):
        V.poincare_disk(real[0], real[0])
    with pytest.raises(ValueError, match="same C and D"):
        V.poincare_disk(real, real[:2])


def test_history_series():
    h = [{"iteration": 20, "loss": 1.0, "k_H": 2.0}, {"iteration": 10, "loss": 3.0},
         {"iteration": 30, "convnet": 50.0}, {"iteration": 40, "loss": float("nan")}]
    s = V.history_series(h, ("loss", "k_H", "w_E"))
    assert set(s) == {"loss", "k_H"}
    np.testing.assert_array_equal(s["loss"][0], [10, 20])
    np.testing.assert_array_equal(s["loss"][1], [3.0, 1.0])
    assert V.history_series(None, ("loss",)) == {}


@pytest.mark.parametrize("scale", [None, 0.05])
def test_real_points_only(scale):
    real, syn = _feats(D=32, spread=4.0)
    alone = V.poincare_disk(real, None, k=1.5, scale=scale)
    both = V.poincare_disk(real, syn, k=1.5, scale=scale)
    assert not any(key.startswith("syn") for key in alone) and "centroid_dist" not in alone
    for key in ("real", "real_centroids", "real_dist0", "real_centroid_dist0", "real_labels"):
        np.testing.assert_array_equal(alone[key], both[key])                # the PCA uses real points only
    assert alone["saturated"] == alone["saturated_real"] == both["saturated_real"]
    assert (alone["explained_variance"], alone["scale"]) == (both["explained_variance"], scale)
