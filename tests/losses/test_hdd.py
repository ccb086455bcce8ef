"""HDD loss: the batched loss equals SPEC's literal per-class reference; numerics and bad input."""

from __future__ import annotations

import math

import geoopt
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hdd_lib import get_loss
from hdd_lib.losses.hdd import HDDLoss


def reference_hdd(real, syn, *, k=1.0, lam=20.0, how="expmap0", clamp=10.0):
    """SPEC, literally, one class at a time: pad, expmap0 (tangent rescaled to the clamp), projx,
    closed-form centroid, geoopt's geodesic distance, times lambda; summed over classes."""
    manifold = geoopt.Lorentz(torch.tensor(k, dtype=torch.float64))
    total = 0.0
    for c in range(real.shape[0]):
        centroids = []
        for f in (real[c].double(), syn[c].double()):
            if how == "expmap0":
                norm = f.norm(dim=-1, keepdim=True)
                if clamp is not None:
                    f = torch.where(norm > clamp * math.sqrt(k), f / norm * clamp * math.sqrt(k), f)
                u = torch.nn.functional.pad(f, (1, 0))
                x = manifold.projx(manifold.expmap0(u, project=False))
            else:
                x = manifold.projx(torch.nn.functional.pad(f, (1, 0)))
            z = x.mean(dim=0)
            centroids.append(math.sqrt(k) * z / torch.sqrt(manifold.inner(z, z).abs()))
        total = total + lam * manifold.dist(centroids[0], centroids[1])
    return total


def class_features(C, N, M, D, *, scale, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    real = (torch.randn(C, N, D, generator=g, dtype=torch.float64) * scale).relu().to(dtype)
    syn = (torch.randn(C, M, D, generator=g, dtype=torch.float64) * scale).relu().to(dtype)
    return real, syn


SETTINGS = [
    dict(k=1.0, lam=20.0, how="expmap0"),  # DM+HDD
    dict(k=2.4, lam=100.0, how="expmap0"),  # IDM+HDD CIFAR-10
    dict(k=2.0, lam=100.0, how="lift"),  # IDM+HDD CIFAR-100
    dict(k=0.5, lam=500.0, how="lift"),  # IDM+HDD Tiny-ImageNet
]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"k{s['k']}-{s['how']}")
@pytest.mark.parametrize("scale", [0.05, 0.5, 1.0])  # |f| from ~1 (below the clamp) to ~23 (saturated)
def test_batched_equals_literal_reference(setting, scale):
    real, syn = class_features(10, 64, 10, 2048, scale=scale, seed=0)
    ours = get_loss("hdd", **setting)(real, syn)
    ref = reference_hdd(real, syn, **setting)
    assert abs(ours.item() - ref.item()) <= 1e-10 * max(1.0, abs(ref.item()))


@pytest.mark.parametrize("setting", SETTINGS[:2], ids=lambda s: f"k{s['k']}")
def test_gradient_matches_reference(setting):
    real, syn = class_features(4, 32, 5, 64, scale=2.0, seed=1)
    s1, s2 = syn.clone().requires_grad_(True), syn.clone().requires_grad_(True)
    get_loss("hdd", **setting)(real, s1).backward()
    reference_hdd(real, s2, **setting).backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("how", ["expmap0", "lift"])
def test_gradcheck(how):
    real, syn = class_features(2, 4, 3, 5, scale=3.0, seed=2)
    loss = HDDLoss(k=1.3, lam=2.0, how=how)
    assert torch.autograd.gradcheck(lambda s: loss(real, s), (syn.clone().requires_grad_(True),))


def test_per_class_is_lambda_times_distance_not_squared():
    real, syn = class_features(3, 8, 2, 6, scale=1.0, seed=3)
    d1 = HDDLoss(lam=1.0).per_class(real, syn)
    torch.testing.assert_close(HDDLoss(lam=7.0).per_class(real, syn), 7.0 * d1)
    assert d1.shape == (3,)


@pytest.mark.parametrize("k", [0.5, 1.0, 2.4])
def test_clamp_saturation_scaling_invariance(k):
    # For |f| >= 10 sqrt(k) every point lands on the radius-10 sphere: only directions matter.
    real, syn = class_features(3, 16, 4, 32, scale=1.0, seed=4)
    real = real / real.norm(dim=-1, keepdim=True) * 10 * math.sqrt(k) * (1 + torch.rand(3, 16, 1, dtype=torch.float64))
    syn = syn / syn.norm(dim=-1, keepdim=True) * 10 * math.sqrt(k)
    loss = HDDLoss(k=k, lam=1.0)
    base = loss(real, syn)
    assert base > 0
    for a in (1.0 + 1e-6, 3.0, 1e3):
        torch.testing.assert_close(loss(a * real, a * syn), base, rtol=1e-12, atol=0)
    # ...whereas below the clamp scaling changes the loss
    assert abs(loss(0.05 * real, 0.05 * syn) - loss(0.02 * real, 0.02 * syn)) > 1e-3


def test_realistic_instance_norm_feature_norms_saturate_at_k1():
    # SPEC: ConvNet features have |f| ~ 23 for 2048-d, above 10 sqrt(1): the clamp is active.
    real, _ = class_features(1, 8, 1, 2048, scale=1.0, seed=5)
    assert (real.norm(dim=-1) > 10.0).all()


@given(norm=st.sampled_from([0.0, 1e-8, 1e-3, 1.0, 23.0, 1e2, 1e4]), n=st.sampled_from([1, 2, 7]),
       m=st.sampled_from([1, 3]), seed=st.integers(0, 1000), how=st.sampled_from(["expmap0", "lift"]),
       dt=st.sampled_from([torch.float32, torch.float64]))
def test_no_nan_or_inf(norm, n, m, seed, how, dt):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(3, n, 16, generator=g, dtype=torch.float64)
    real = (real / real.norm(dim=-1, keepdim=True).clamp_min(1e-30) * norm).to(dt)
    syn = real[:, :m].clone().requires_grad_(True)  # coincides with real for n == m == 1
    loss = HDDLoss(how=how)(real, syn)
    loss.backward()
    assert loss.dtype == dt
    assert torch.isfinite(loss) and torch.isfinite(syn.grad).all()


def test_coinciding_centroids_give_zero_loss_and_finite_gradient(dtype):
    real, _ = class_features(4, 5, 1, 8, scale=1.0, seed=6, dtype=dtype)
    syn = real.clone().requires_grad_(True)
    loss = HDDLoss()(real, syn)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(syn.grad).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=0.0), r"k must .* k=0.0"),
        (dict(k=-2.0), r"k=-2.0"),
        (dict(lam=-1.0), r"lam=-1.0"),
        (dict(how="poincare"), r"how='poincare'"),
        (dict(clamp=-1.0), r"clamp=-1.0"),
    ],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HDDLoss(**kwargs)


@pytest.mark.parametrize("k", [1e-6, 1.0, 1e6])
@pytest.mark.parametrize("how", ["expmap0", "lift"])
@pytest.mark.parametrize("norm", [0.0, 1e-8, 1.0, 1e4])
def test_finite_at_the_bounds_of_k(k, how, norm, dtype):
    """Every accepted k (the settings reject k outside [1e-6, 1e6], inf clamps, NaN) gives a finite loss
    and finite gradients, for identical and distinct sets, tiny and huge feature norms."""
    g = torch.Generator().manual_seed(0)
    real = torch.randn(3, 5, 16, generator=g, dtype=dtype)
    real = norm * real / real.norm(dim=-1, keepdim=True)
    for syn in (real.clone(), (real.flip(1)[:, :2] + 0.01 * torch.randn(3, 2, 16, generator=g, dtype=dtype))):
        syn = syn.clone().requires_grad_(True)
        loss = get_loss("hdd", k=k, lam=1.0, how=how)(real, syn)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(syn.grad).all(), (k, how, norm)


@pytest.mark.parametrize("kwargs, match", [(dict(k=1e-300), r"k must be >= 1e-06"), (dict(k=1e300), r"k must be <= 1e\+06"),
                                           (dict(clamp=float("inf")), r"clamp must be a finite number"),
                                           (dict(lam=float("nan")), r"lam must be a finite number")])
def test_degenerate_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_loss("hdd", **kwargs)
