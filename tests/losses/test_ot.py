"""Tests for hdd_lib.losses.ot (entropic OT / Sinkhorn divergence on POT) and the pairwise hyperbolic
distance it is fed with (hdd_lib.geometry.pairwise_dist)."""

from __future__ import annotations

import warnings

import ot
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hdd_lib import geometry
from hdd_lib.losses import ot as hot

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from geoopt import Lorentz


def _sqeuclid(x, y):
    return (x.unsqueeze(-2) - y.unsqueeze(-3)).pow(2).sum(-1)


# ----------------------------------------------------------------------------- pairwise hyperbolic


@given(k=st.floats(0.1, 10.0), scale=st.sampled_from([1e-3, 1.0, 5.0]), seed=st.integers(0, 2**16))
def test_pairwise_lorentz_matches_dist_and_geoopt(k, scale, seed):
    g = torch.Generator().manual_seed(seed)
    x = geometry.lift(scale * torch.randn(2, 5, 6, generator=g), k=k)
    y = geometry.lift(scale * torch.randn(2, 4, 6, generator=g), k=k)
    pw = geometry.pairwise_dist(x, y, k=k)
    assert pw.shape == (2, 5, 4)
    ref = geometry.dist(x.unsqueeze(-2), y.unsqueeze(-3), k=k)
    ref_geoopt = Lorentz(k=k).dist(x.unsqueeze(-2), y.unsqueeze(-3))
    assert torch.allclose(pw, ref, atol=1e-6, rtol=1e-9)
    if scale >= 1.0:  # geoopt's arcosh carries an eps (~1e-6 absolute error; coarse for close points)
        assert torch.allclose(pw, ref_geoopt, atol=1e-5)


def test_pairwise_lorentz_self_distances_zero_and_grad_finite():
    k = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    f = (3.0 * torch.randn(2, 5, 6, dtype=torch.float64)).requires_grad_(True)
    x = geometry.lift(f, k=k)
    d = geometry.pairwise_dist(x, x, k=k)
    assert d.diagonal(dim1=-2, dim2=-1).abs().max() < 1e-3  # cancellation at |f| ~ 7, see docstring
    d.pow(2).sum().backward()
    assert torch.isfinite(f.grad).all() and torch.isfinite(k.grad).all() and k.grad != 0


# ----------------------------------------------------------------------------- solver


def test_batched_and_looped_solvers_agree():
    cost = torch.rand(3, 6, 4, dtype=torch.float64)
    a = hot.sinkhorn_plans(cost, reg=0.1, max_iter=500, tol=1e-12, batched=True)
    b = hot.sinkhorn_plans(cost, reg=0.1, max_iter=500, tol=1e-12, batched=False)
    assert torch.allclose(a, b, atol=1e-10)
    assert torch.allclose(a.sum(-1), torch.full((3, 6), 1 / 6, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(a.sum(-2), torch.full((3, 4), 1 / 4, dtype=torch.float64), atol=1e-9)


@pytest.mark.parametrize("debias", [False, True])
@pytest.mark.parametrize("n,m", [(6, 5), (4, 4), (1, 3)])
def test_small_epsilon_approaches_emd2(debias, n, m):
    g = torch.Generator().manual_seed(n * 10 + m)
    x = torch.randn(2, n, 3, generator=g, dtype=torch.float64)
    y = torch.randn(2, m, 3, generator=g, dtype=torch.float64) + 0.5
    cxy = _sqeuclid(x, y)
    selfs = (_sqeuclid(x, x), _sqeuclid(y, y)) if debias else (None, None)
    v = hot.sinkhorn_divergence(cxy, *selfs, epsilon=1e-3, max_iter=5000, tol=1e-12)
    a, b = torch.full((n,), 1 / n, dtype=torch.float64), torch.full((m,), 1 / m, dtype=torch.float64)
    exact = torch.stack([ot.emd2(a, b, c) for c in cxy])
    assert torch.allclose(v, exact, rtol=2e-2, atol=1e-3 * float(cxy.mean()))


def test_envelope_gradient_is_the_plan():
    cost = torch.rand(2, 5, 3, dtype=torch.float64, requires_grad=True)
    reg = torch.full((2,), 0.2, dtype=torch.float64)
    v = hot.entropic_ot(cost, reg=reg, max_iter=1000, tol=1e-12)
    v.sum().backward()
    plan = hot.sinkhorn_plans(cost / 0.2, reg=1.0, max_iter=1000, tol=1e-12)
    assert torch.allclose(cost.grad, plan, atol=1e-12)
    # and matches a finite difference of the value (envelope theorem)
    h = 1e-6
    bump = torch.zeros_like(cost)
    bump[0, 1, 2] = h
    with torch.no_grad():
        fd = (hot.entropic_ot(cost + bump, reg=reg, max_iter=1000, tol=1e-13)
              - hot.entropic_ot(cost - bump, reg=reg, max_iter=1000, tol=1e-13))[0] / (2 * h)
    assert abs(float(fd) - float(cost.grad[0, 1, 2])) < 1e-6


def test_entropic_value_nonnegative_and_divergence_zero_for_identical(dtype):
    x = torch.randn(3, 5, 4, dtype=dtype)
    c = _sqeuclid(x, x)
    v = hot.sinkhorn_divergence(c, epsilon=0.05)
    assert (v >= 0).all()
    s = hot.sinkhorn_divergence(c, c, c, epsilon=0.05)
    assert torch.equal(s, torch.zeros(3, dtype=dtype))
    y = torch.randn(3, 5, 4, dtype=dtype) + 1.0
    s2 = hot.sinkhorn_divergence(_sqeuclid(x, y), c, _sqeuclid(y, y), epsilon=0.05)
    assert (s2 > 0).all() and s2.dtype == dtype


def test_zero_cost_is_finite():
    c = torch.zeros(2, 3, 4, dtype=torch.float64, requires_grad=True)
    zeros = lambda *shape: torch.zeros(*shape, dtype=torch.float64)  # noqa: E731
    v = hot.sinkhorn_divergence(c, zeros(2, 3, 3), zeros(2, 4, 4), epsilon=0.1)
    assert torch.allclose(v.detach(), torch.zeros(2, dtype=torch.float64), atol=1e-20)
    v.sum().backward()
    assert torch.isfinite(c.grad).all()


def test_invalid_arguments():
    c = torch.rand(1, 2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="epsilon"):
        hot.sinkhorn_divergence(c, epsilon=0.0)
    with pytest.raises(ValueError, match="cost_xx"):
        hot.sinkhorn_divergence(c, c, epsilon=0.1)
