"""hdd_lib.geometry against geoopt and closed forms, in float32 and float64, with edge cases."""

from __future__ import annotations

import math

import geoopt
import pytest
import torch
from geoopt.manifolds.lorentz import math as lmath
from hypothesis import given
from hypothesis import strategies as st

from hdd_lib import geometry as G

KS = [0.5, 1.0, 2.4]


def feats(n: int, d: int, norm: float, *, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    """``n`` random ``d``-dim features, each of Euclidean norm ``norm``."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n, d, generator=g, dtype=torch.float64)
    return (f / f.norm(dim=-1, keepdim=True) * norm).to(dtype)


def lorentz(k: float) -> geoopt.Lorentz:
    """geoopt's manifold with a float64 ``k`` (``Lorentz(0.5)`` would hold it in float32)."""
    return geoopt.Lorentz(torch.tensor(k, dtype=torch.float64))


def on_manifold_error(x: torch.Tensor, k: float) -> torch.Tensor:
    """|<x,x>_L + k| relative to the size of the terms (x0^2): the best a float can hold."""
    x = x.double()
    return (lmath.inner(x, x) + k).abs() / x[..., 0].pow(2).clamp_min(k)


# --------------------------------------------------------------------------- lift


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("how", ["expmap0", "lift"])
def test_lift_points_on_manifold(k, how, dtype):
    f = torch.cat([feats(4, 16, r, seed=i) for i, r in enumerate([0.0, 1e-8, 0.3, 3.0, 30.0, 1e4])])
    x = G.lift(f, k=k, how=how, dtype=dtype)
    assert x.dtype == dtype and x.shape == (24, 17)
    assert torch.isfinite(x).all()
    tol = 1e-14 if dtype == torch.float64 else 1e-6
    assert on_manifold_error(x, k).max() < tol
    assert (x[:, 0] > 0).all()  # upper sheet


@pytest.mark.parametrize("k", KS)
def test_expmap0_distance_to_origin_is_clamped_feature_norm(k):
    # d(o, exp_o((0, f))) = |f| (exp is a radial isometry), clamped at 10 sqrt(k).
    norms = torch.tensor([0.0, 1e-6, 0.5, 2.0, 9.0 * math.sqrt(k), 10.0 * math.sqrt(k), 50.0, 1e4])
    f = torch.cat([feats(1, 8, float(r), seed=i) for i, r in enumerate(norms)])
    x = G.lift(f, k=k)
    o = torch.zeros_like(x)
    o[:, 0] = math.sqrt(k)
    expected = torch.clamp(norms.double(), max=10.0 * math.sqrt(k))
    torch.testing.assert_close(G.dist(o, x, k=k), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", KS)
def test_expmap0_matches_geoopt_below_the_clamp(k):
    f = feats(32, 12, 0.9 * 10 * math.sqrt(k), seed=3) * torch.rand(32, 1, dtype=torch.float64)
    ours = G.lift(f, k=k)
    ref = lorentz(k).expmap0(torch.nn.functional.pad(f, (1, 0)))  # project=True: projx
    torch.testing.assert_close(ours, ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("k", KS)
def test_clamp_equals_geoopt_on_rescaled_tangent(k):
    f = feats(8, 12, 40.0, seed=4)
    ref = lorentz(k).expmap0(torch.nn.functional.pad(f / 40.0 * 10 * math.sqrt(k), (1, 0)))
    torch.testing.assert_close(G.lift(f, k=k), ref, rtol=1e-13, atol=1e-9)


def test_unclamped_expmap0_follows_geoopt():
    f = feats(4, 6, 15.0, seed=5)
    ref = lorentz(1.0).expmap0(torch.nn.functional.pad(f, (1, 0)))
    torch.testing.assert_close(G.lift(f, k=1.0, clamp=None), ref, rtol=1e-13, atol=0)


@pytest.mark.parametrize("k", KS)
def test_lift_variant_closed_form(k):
    f = torch.cat([feats(3, 5, r, seed=i) for i, r in enumerate([0.0, 1.0, 1e4])])
    x = G.lift(f, k=k, how="lift")
    torch.testing.assert_close(x[:, 0], torch.sqrt(k + f.pow(2).sum(-1)), rtol=1e-15, atol=0)
    torch.testing.assert_close(x[:, 1:], f, rtol=0, atol=0)


def test_lift_keeps_input_dtype_when_asked():
    f = feats(2, 3, 1.0, dtype=torch.float32)
    assert G.lift(f, dtype=None).dtype == torch.float32
    assert G.lift(f).dtype == torch.float64


# --------------------------------------------------------------------------- dist

def random_points(seed: int, n: int, d: int, k: float, scale: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n, d, generator=g, dtype=torch.float64) * scale
    return G.lift(f, k=k, how="lift")


@given(seed=st.integers(0, 10_000), k=st.sampled_from(KS), scale=st.sampled_from([1e-3, 0.1, 1.0, 5.0]))
def test_dist_metric_axioms(seed, k, scale):
    x, y, z = random_points(seed, 3, 7, k, scale)
    dxy, dyx = G.dist(x, y, k=k), G.dist(y, x, k=k)
    assert dxy >= 0
    torch.testing.assert_close(dxy, dyx, rtol=1e-13, atol=1e-15)
    assert G.dist(x, x, k=k) == 0
    assert G.dist(x, z, k=k) <= dxy + G.dist(y, z, k=k) + 1e-12


@given(seed=st.integers(0, 10_000), k=st.sampled_from(KS), scale=st.sampled_from([0.1, 1.0, 5.0]))
def test_dist_agrees_with_geoopt(seed, k, scale):
    x = random_points(seed, 16, 9, k, scale)
    y = random_points(seed + 1, 16, 9, k, scale)
    ours = G.dist(x, y, k=k)
    ref = lorentz(k).dist(x, y)
    # geoopt's -<x,y>/k form loses ~eps * x0^2 absolutely; compare where that is negligible.
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("k", KS)
def test_dist_from_origin_closed_form(k):
    x = random_points(7, 10, 4, k, 3.0)
    o = torch.zeros_like(x)
    o[:, 0] = math.sqrt(k)
    expected = math.sqrt(k) * torch.acosh(x[:, 0] / math.sqrt(k))
    torch.testing.assert_close(G.dist(o, x, k=k), expected, rtol=1e-10, atol=1e-10)


def test_dist_keeps_precision_for_close_points_far_out():
    # Two points at radius 9, a geodesic step of 1e-9 apart: d = 1e-9 to high relative precision.
    k = 1.0
    u = feats(1, 3, 1.0, seed=9)[0]
    v = torch.tensor([u[1], -u[0], 0.0], dtype=torch.float64)
    v = v / v.norm()
    f1 = 9.0 * u
    f2 = 9.0 * (u * math.cos(1e-9 / math.sinh(9.0)) + v * math.sin(1e-9 / math.sinh(9.0)))
    d = G.dist(G.lift(f1, k=k), G.lift(f2, k=k), k=k)
    assert abs(d.item() - 1e-9) < 1e-12


def test_arcosh1p_matches_high_precision_and_is_zero_at_zero():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    delta = torch.logspace(-14, 6, 60, dtype=torch.float64)
    exact = torch.tensor([float(mpmath.acosh(1 + mpmath.mpf(float(d)))) for d in delta], dtype=torch.float64)
    # the sqrt offset of 1e-30 costs at most sqrt(1e-30) = 1e-15 absolute
    torch.testing.assert_close(G.arcosh1p(delta), exact, rtol=1e-14, atol=1.01e-15)
    assert G.arcosh1p(torch.zeros(1, dtype=torch.float64)).item() == 0.0
    assert G.arcosh1p(torch.tensor([-1e-17], dtype=torch.float64)).item() == 0.0


# --------------------------------------------------------------------------- centroid


@given(seed=st.integers(0, 10_000), k=st.sampled_from(KS), n=st.integers(1, 20),
       scale=st.sampled_from([0.0, 1e-4, 0.5, 2.0, 5.0 / 3]))
def test_centroid_on_manifold(seed, k, n, scale):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(3, n, 6, generator=g, dtype=torch.float64) * scale
    for how in ("expmap0", "lift"):
        c = G.centroid(G.lift(f, k=k, how=how), k=k)
        assert c.shape == (3, 7)
        assert (lmath.inner(c, c) + k).abs().max() < 1e-9


def test_centroid_of_one_point_is_the_point(dtype):
    x = G.lift(feats(5, 4, 2.0), k=2.0).to(dtype).unsqueeze(1)  # [5, 1, 5]
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(G.centroid(x, k=2.0), x[:, 0], rtol=tol, atol=tol)


def test_centroid_of_symmetric_pair_is_the_origin():
    f = feats(1, 5, 3.0)
    x = G.lift(torch.cat([f, -f]), k=1.5)
    c = G.centroid(x, k=1.5, dim=0)
    expected = torch.zeros(6, dtype=torch.float64)
    expected[0] = math.sqrt(1.5)
    torch.testing.assert_close(c, expected, rtol=1e-13, atol=1e-13)


def test_centroid_is_permutation_invariant_and_batched():
    x = G.lift(torch.randn(4, 9, 6, dtype=torch.float64), k=1.0)
    perm = torch.randperm(9)
    torch.testing.assert_close(G.centroid(x, k=1.0), G.centroid(x[:, perm], k=1.0), rtol=1e-13, atol=1e-13)
    per_row = torch.stack([G.centroid(x[i], k=1.0) for i in range(4)])
    torch.testing.assert_close(G.centroid(x, k=1.0), per_row, rtol=0, atol=0)


# --------------------------------------------------------------------------- curvature as a tensor


def test_k_tensor_receives_gradient():
    k = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    f = torch.randn(2, 16, 8, dtype=torch.float64)
    c = G.centroid(G.lift(f, k=k), k=k)
    d = G.dist(c[0], c[1], k=k)
    d.backward()
    assert k.grad is not None and torch.isfinite(k.grad) and k.grad != 0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_nonpositive_k_raises(bad):
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"k must"):
        G.lift(x, k=bad)
    with pytest.raises(ValueError, match=r"k="):
        G.dist(x, x, k=torch.tensor(bad))


def test_bad_mapping_and_clamp_raise():
    with pytest.raises(ValueError, match=r"how='poincare'"):
        G.lift(torch.zeros(2, 3), how="poincare")
    with pytest.raises(ValueError, match=r"clamp=0"):
        G.lift(torch.zeros(2, 3), clamp=0)
    with pytest.raises(ValueError, match=r"shape \(\)"):
        G.lift(torch.tensor(1.0))


# --------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("how", ["expmap0", "lift"])
@pytest.mark.parametrize("norm", [0.0, 1e-8, 1e-3, 1.0, 23.0, 1e2, 1e4])
def test_finite_values_and_gradients(dtype, how, norm):
    f = feats(6, 32, norm, dtype=dtype, seed=11).requires_grad_(True)
    x = G.lift(f, k=1.0, how=how, dtype=dtype)
    c = G.centroid(x.view(2, 3, 33), k=1.0)
    d = G.dist(c[0], c[1], k=1.0) + G.dist(c[0], c[0].detach(), k=1.0)
    d.backward()
    assert torch.isfinite(d) and torch.isfinite(f.grad).all()


def test_gradcheck_lift_centroid_dist():
    f = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    k = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)

    def fn(f, k):
        c = G.centroid(G.lift(f * 3, k=k), k=k)
        return G.dist(c[0], c[1], k=k)

    assert torch.autograd.gradcheck(fn, (f, k))
    assert torch.autograd.gradcheck(lambda f: G.lift(f, k=1.0, how="lift"), (f,))


# --------------------------------------------------------------------------- Poincaré


def test_to_poincare_matches_geoopt_and_handles_3d():
    x = G.lift(torch.randn(2, 5, 3, dtype=torch.float64), k=2.0)
    p = G.to_poincare(x, k=2.0)
    assert p.shape == (2, 5, 3)
    # geoopt maps to the unit ball (x_s / (x0 + sqrt k)); the isometric ball of curvature -1/k
    # has radius sqrt(k), hence the factor. geoopt's version mis-indexes 3-D input: compare in 2-D.
    ref = lmath.lorentz_to_poincare(x.reshape(10, 4), k=torch.tensor(2.0, dtype=torch.float64))
    torch.testing.assert_close(p.reshape(10, 3), math.sqrt(2.0) * ref, rtol=1e-13, atol=1e-13)
    assert (p.norm(dim=-1) < math.sqrt(2.0)).all()
