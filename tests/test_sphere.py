"""Tests for hdd_lib.sphere: points on the sphere, distances against geoopt and closed forms."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hdd_lib import sphere

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from geoopt import Sphere, SphereExact


def _points(shape, k, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return sphere.project(torch.randn(*shape, generator=g, dtype=dtype), k=k, dtype=dtype)


@given(
    k=st.floats(0.1, 10.0),
    scale=st.sampled_from([0.0, 1e-8, 1.0, 1e4]),
    seed=st.integers(0, 2**16),
)
def test_project_on_sphere(k, scale, seed):
    g = torch.Generator().manual_seed(seed)
    feat = scale * torch.randn(3, 4, 7, generator=g, dtype=torch.float64)
    x = sphere.project(feat, k=k)
    assert x.shape == feat.shape
    assert torch.allclose(x.norm(dim=-1), torch.full((3, 4), math.sqrt(k), dtype=torch.float64), rtol=1e-12)
    # geoopt agrees that x / R is on the unit sphere
    assert SphereExact().check_point_on_manifold(x / math.sqrt(k), atol=1e-10)


def test_project_zero_feature_is_pole_with_finite_grad(dtype):
    feat = torch.zeros(2, 5, dtype=dtype, requires_grad=True)
    x = sphere.project(feat, k=4.0, dtype=None)
    assert torch.equal(x[:, 0], torch.full((2,), 2.0, dtype=dtype))
    assert torch.equal(x[:, 1:], torch.zeros(2, 4, dtype=dtype))
    x.sum().backward()
    assert torch.isfinite(feat.grad).all()


def test_project_keeps_direction_and_casts(dtype):
    feat = torch.randn(4, 6, dtype=dtype)
    x = sphere.project(feat, k=2.0, dtype=torch.float64)
    assert x.dtype == torch.float64
    assert torch.allclose(x, math.sqrt(2.0) * feat.double() / feat.double().norm(dim=-1, keepdim=True))


@given(k=st.floats(0.1, 10.0), seed=st.integers(0, 2**16))
def test_dist_matches_geoopt_and_arccos(k, seed):
    x = _points((5, 8), k, seed=seed)
    y = _points((5, 8), k, seed=seed + 1)
    r = math.sqrt(k)
    d = sphere.dist(x, y, k=k)
    expected_geoopt = r * Sphere().dist(x / r, y / r)
    closed = r * torch.acos(((x * y).sum(-1) / k).clamp(-1, 1))
    assert torch.allclose(d, expected_geoopt, atol=1e-10)
    assert torch.allclose(d, closed, atol=1e-10)


def test_dist_identity_symmetry_antipodes(dtype):
    x = _points((6, 5), 3.0, dtype=dtype)
    y = _points((6, 5), 3.0, dtype=dtype, seed=7)
    assert torch.equal(sphere.dist(x, x, k=3.0), torch.zeros(6, dtype=dtype))
    assert torch.allclose(sphere.dist(x, y, k=3.0), sphere.dist(y, x, k=3.0))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    half_circle = torch.full((6,), math.pi * math.sqrt(3.0), dtype=dtype)
    assert torch.allclose(sphere.dist(x, -x, k=3.0), half_circle, atol=tol)


def test_dist_gradient_finite_at_coincidence(dtype):
    k = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    x = _points((4, 3), 2.0, dtype=dtype).requires_grad_(True)
    d = sphere.dist(x, x.detach().clone(), k=k)
    d.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(k.grad).all()


def test_dist_gradcheck():
    x = _points((3, 4), 1.5).requires_grad_(True)
    y = _points((3, 4), 1.5, seed=3).requires_grad_(True)
    k = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, kk: sphere.dist(a, b, k=kk), (x, y, k))
    assert torch.autograd.gradcheck(lambda a, b, kk: sphere.pairwise_dist(a, b, k=kk), (x, y, k))


@pytest.mark.parametrize("k", [0.1, 1.0, 10.0])
def test_pairwise_matches_elementwise_batched(k):
    x = _points((3, 5, 8), k)
    y = _points((3, 4, 8), k, seed=1)
    pw = sphere.pairwise_dist(x, y, k=k)
    assert pw.shape == (3, 5, 4)
    ref = sphere.dist(x.unsqueeze(-2), y.unsqueeze(-3), k=k)
    assert torch.allclose(pw, ref, atol=1e-7 * math.sqrt(k))
    diag = sphere.pairwise_dist(x, x, k=k).diagonal(dim1=-2, dim2=-1)
    assert diag.abs().max() < 1e-6 * math.sqrt(k)


def test_pairwise_grad_finite_for_identical_sets(dtype):
    x = _points((2, 4, 3), 1.0, dtype=dtype).requires_grad_(True)
    sphere.pairwise_dist(x, x, k=1.0).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_centroid_on_sphere_and_direction_of_mean(dtype):
    x = _points((3, 10, 6), 5.0, dtype=dtype)
    c = sphere.centroid(x, k=5.0)
    assert c.shape == (3, 6)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(c.norm(dim=-1), torch.full((3,), math.sqrt(5.0), dtype=dtype), atol=tol)
    m = x.mean(dim=-2)
    assert torch.allclose(c, math.sqrt(5.0) * m / m.norm(dim=-1, keepdim=True), atol=tol)


def test_centroid_of_antipodal_pair_is_finite():
    x = _points((1, 4), 1.0)
    pts = torch.cat([x, -x]).requires_grad_(True)
    c = sphere.centroid(pts, k=1.0)
    assert torch.isfinite(c).all() and torch.allclose(c.norm(), torch.tensor(1.0, dtype=torch.float64))
    c.sum().backward()
    assert torch.isfinite(pts.grad).all()


def test_invalid_curvature_and_shape():
    with pytest.raises(ValueError, match="k="):
        sphere.project(torch.ones(3), k=0.0)
    with pytest.raises(ValueError, match="shape"):
        sphere.project(torch.tensor(1.0), k=1.0)
