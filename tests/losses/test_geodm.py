"""Tests for hdd_lib.losses.geodm: factor distances, reductions to DM/HDD, OT term, gradients,
numerical safety, normalisation buffers and validation."""

from __future__ import annotations

import math
import warnings

import ot
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hdd_lib import geometry, sphere
from hdd_lib.losses import available_losses, get_loss
from hdd_lib.losses.geodm import GeoDMConfig, GeoDMLoss
from hdd_lib.losses.geodm import split_dims

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from geoopt import Lorentz, Sphere

F64 = torch.float64
#: Settings under which one factor with all the weight is exactly its own loss.
PLAIN = dict(learn="fixed", normalize=False, lambda_ot=0.0, lambda_reg=0.0)


def _features(c=3, n=12, m=4, d=12, dtype=F64, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    real = scale * torch.randn(c, n, d, generator=g, dtype=dtype) + torch.arange(c, dtype=dtype).view(c, 1, 1)
    syn = scale * torch.randn(c, m, d, generator=g, dtype=dtype)
    return real, syn


def _all_finite(loss, real, syn):
    syn = syn.detach().clone().requires_grad_(True)
    for p in loss.parameters():
        p.grad = None
    value = loss(real, syn)
    value.backward()
    grads = [syn.grad] + [p.grad for p in loss.geometry_parameters() if p.grad is not None]
    return bool(torch.isfinite(value)) and all(bool(torch.isfinite(g).all()) for g in grads), value


# ----------------------------------------------------------------------------- registry & config


def test_registered_and_default_config():
    assert "geodm" in available_losses()
    loss = get_loss("geodm")
    assert isinstance(loss, GeoDMLoss) and loss.config == GeoDMConfig()
    loss2 = GeoDMLoss(GeoDMConfig(factors="EH"), lambda_ot=0.0)
    assert loss2.config.factors == "EH" and loss2.config.lambda_ot == 0.0
    assert GeoDMConfig(dtype=torch.float32).dtype == "float32"
    assert set(GeoDMConfig().to_dict()) >= {"factors", "dims", "weights", "k_H", "k_S", "learn", "lambda_ot"}


@given(d=st.integers(3, 5000), n=st.integers(1, 3))
def test_split_dims_equal_with_remainder_first(d, n):
    dims = split_dims(d, n)
    assert sum(dims) == d and len(dims) == n
    assert max(dims) - min(dims) <= 1 and list(dims) == sorted(dims, reverse=True)


def test_slices_default_and_custom():
    assert GeoDMConfig().split(2048) == (683, 683, 682)
    assert GeoDMConfig(factors="H").split(2048) == (2048,)
    assert GeoDMConfig(dims=(2, 3, 7)).split(12) == (2, 3, 7)
    real, syn = _features(d=12)
    loss = GeoDMLoss(factors="SEH", dims=(2, 3, 7), **PLAIN)
    pts, raw = loss.embed(real)
    assert [raw[f].shape[-1] for f in "SEH"] == [2, 3, 7]
    assert torch.equal(raw["S"], real[..., :2]) and torch.equal(raw["H"], real[..., 5:])
    assert pts["H"].shape[-1] == 8


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(factors=""), "factors"),
        (dict(factors="EX"), "factors"),
        (dict(factors="EE"), "factors"),
        (dict(dims=(1, 2)), "dims"),
        (dict(dims=(0, 2, 2)), "dims"),
        (dict(k_min=0.0), "k_min"),
        (dict(k_min=-1.0), "k_min"),
        (dict(k_min=5.0, k_max=5.0), "k_min"),
        (dict(k_min=5.0, k_max=2.0), "k_max"),
        (dict(k_H=10.0), "k_H"),
        (dict(k_S=0.05), "k_S"),
        (dict(k_H=float("nan")), "k_H"),
        (dict(learn="sometimes"), "learn"),
        (dict(weights=(0.5, 0.5)), "weights"),
        (dict(weights=(0.5, 0.2, 0.2)), "weights"),
        (dict(weights=(1.0, 0.0, 0.0)), "weights"),  # zeros only with learn="fixed"
        (dict(weights=(1.2, -0.2, 0.0), learn="fixed"), "weights"),
        (dict(lam=-1.0), "lam"),
        (dict(lambda_ot=-0.1), "lambda_ot"),
        (dict(lambda_reg=-0.1), "lambda_reg"),
        (dict(lambda_ot=float("inf")), "lambda_ot"),
        (dict(epsilon=0.0), "epsilon"),
        (dict(ot_max_iter=0), "ot_max_iter"),
        (dict(ot_tol=-1.0), "ot_tol"),
        (dict(how="poincare"), "how"),
        (dict(clamp=0.0), "clamp"),
        (dict(dtype="float16"), "dtype"),
        (dict(normalize="yes"), "normalize"),
        (dict(temperature=1.0), "temperature"),
    ],
)
def test_invalid_settings_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GeoDMLoss(**kwargs)


def test_dims_not_summing_to_d_raise_at_call():
    real, syn = _features(d=12)
    with pytest.raises(ValueError, match=r"dims.*D=12"):
        GeoDMLoss(dims=(2, 3, 4))(real, syn)
    with pytest.raises(ValueError, match="D=2"):
        GeoDMLoss()(real[..., :2], syn[..., :2])


# ----------------------------------------------------------------------------- factor geometry


@given(k_h=st.floats(0.2, 9.0), k_s=st.floats(0.2, 9.0), scale=st.sampled_from([0.0, 1e-3, 1.0, 30.0]))
def test_embedded_points_stay_on_their_manifolds(k_h, k_s, scale):
    real, _ = _features(d=9, scale=scale)
    if scale == 0.0:
        real = torch.zeros_like(real)
    loss = GeoDMLoss(k_H=k_h, k_S=k_s, **PLAIN)
    pts, _ = loss.embed(real)
    kh, ks = float(loss.curvature("H")), float(loss.curvature("S"))
    assert math.isclose(kh, k_h, rel_tol=1e-12) and math.isclose(ks, k_s, rel_tol=1e-12)
    x0 = pts["H"][..., 0]
    assert (x0 > 0).all()  # upper sheet
    minkowski = geometry.inner(pts["H"], pts["H"])
    assert torch.allclose(minkowski, torch.full_like(x0, -kh), rtol=0, atol=1e-12 * float(x0.max()) ** 2)
    assert torch.allclose(pts["S"].norm(dim=-1), torch.full(pts["S"].shape[:-1], math.sqrt(ks), dtype=F64))


def test_factor_discrepancies_match_geoopt_and_closed_forms():
    real, syn = _features(d=15, scale=2.0)
    loss = GeoDMLoss(k_H=2.4, k_S=0.7, **PLAIN)
    x, _ = loss.embed(real)
    y, _ = loss.embed(syn)
    disc = loss.discrepancies(x, y)
    kh, ks = loss.curvature("H").item(), loss.curvature("S").item()
    # E: squared distance of the means (closed form)
    assert torch.allclose(disc[0], (real[..., :5].mean(1) - syn[..., :5].mean(1)).pow(2).sum(-1))
    # H: geoopt Lorentz distance between the closed-form Lorentzian centroids
    ch = [geometry.centroid(geometry.lift(f[..., 5:10], k=kh), k=kh) for f in (real, syn)]
    assert torch.allclose(disc[1], Lorentz(k=kh).dist(*ch), atol=1e-5)
    # S: R * arccos(<a, b> / R^2) between renormalised means, and geoopt's unit-sphere distance
    r = math.sqrt(ks)
    cs = [r * f[..., 10:].div(f[..., 10:].norm(dim=-1, keepdim=True)).mean(1) for f in (real, syn)]
    cs = [r * c / c.norm(dim=-1, keepdim=True) for c in cs]
    closed = r * torch.acos(((cs[0] * cs[1]).sum(-1) / ks).clamp(-1, 1))
    assert torch.allclose(disc[2], closed, atol=1e-10)
    assert torch.allclose(disc[2], r * Sphere().dist(cs[0] / r, cs[1] / r), atol=1e-10)


# ----------------------------------------------------------------------------- reductions


def test_reduces_exactly_to_dm():
    real, syn = _features(d=12)
    full = GeoDMLoss(factors="E", **PLAIN)
    assert torch.equal(full.per_class(real, syn), get_loss("dm").per_class(real, syn))
    prod = GeoDMLoss(factors="EHS", weights=(1.0, 0.0, 0.0), **PLAIN)
    assert torch.equal(prod.per_class(real, syn), get_loss("dm").per_class(real[..., :4], syn[..., :4]))
    assert torch.equal(prod(real, syn), get_loss("dm")(real[..., :4], syn[..., :4]))


@pytest.mark.parametrize("how", ["expmap0", "lift"])
@pytest.mark.parametrize("k", [0.5, 1.0, 2.4])
def test_reduces_to_hdd(k, how):
    real, syn = _features(d=12, scale=3.0)
    hdd = get_loss("hdd", k=k, lam=1, how=how)
    full = GeoDMLoss(factors="H", k_H=k, how=how, **PLAIN)
    assert torch.allclose(full.per_class(real, syn), hdd.per_class(real, syn), rtol=0, atol=1e-10)
    prod = GeoDMLoss(factors="EHS", weights=(0.0, 1.0, 0.0), k_H=k, how=how, **PLAIN)
    expected = hdd.per_class(real[..., 4:8], syn[..., 4:8])
    assert torch.allclose(prod.per_class(real, syn), expected, rtol=0, atol=1e-10)


def test_sphere_only_is_centroid_geodesic():
    real, syn = _features(d=6, scale=2.0)
    loss = GeoDMLoss(factors="S", k_S=3.0, **PLAIN)
    k = loss.curvature("S")
    expected = sphere.dist(
        sphere.centroid(sphere.project(real, k=k), k=k), sphere.centroid(sphere.project(syn, k=k), k=k), k=k
    )
    assert torch.allclose(loss.per_class(real, syn), expected, atol=1e-12)


def test_weighted_sum_and_lam():
    real, syn = _features(d=12)
    one_hot = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    parts = [GeoDMLoss(factors="EHS", weights=w, **PLAIN).per_class(real, syn) for w in one_hot]
    mixed = GeoDMLoss(factors="EHS", weights=(0.2, 0.5, 0.3), lam=3.0, **PLAIN).per_class(real, syn)
    assert torch.allclose(mixed, 3.0 * (0.2 * parts[0] + 0.5 * parts[1] + 0.3 * parts[2]), atol=1e-12)


def test_batched_over_classes_equals_class_by_class():
    real, syn = _features(c=4, n=9, m=3, d=12)
    loss = GeoDMLoss(
        normalize=False, lambda_ot=1.0, lambda_reg=0.1, epsilon=0.5, ot_tol=1e-12, ot_max_iter=1000
    )
    together = loss.per_class(real, syn)
    alone = torch.cat([loss.per_class(real[i : i + 1], syn[i : i + 1]) for i in range(4)])
    assert torch.allclose(together, alone, atol=1e-10)


# ----------------------------------------------------------------------------- OT term


def test_ot_term_matches_emd2_for_small_epsilon():
    real, syn = _features(c=2, n=6, m=5, d=4)
    base = dict(factors="E", learn="fixed", normalize=False, lambda_reg=0.0)
    without = GeoDMLoss(lambda_ot=0.0, **base).per_class(real, syn)
    for debias in (False, True):
        with_ot = GeoDMLoss(
            lambda_ot=2.0, epsilon=1e-3, debias=debias, ot_max_iter=5000, ot_tol=1e-12, **base
        )
        ot_part = (with_ot.per_class(real, syn) - without) / 2.0
        cost = (real.unsqueeze(2) - syn.unsqueeze(1)).pow(2).sum(-1)
        a, b = torch.full((6,), 1 / 6, dtype=F64), torch.full((5,), 1 / 5, dtype=F64)
        exact = torch.stack([ot.emd2(a, b, c) for c in cost])
        assert torch.allclose(ot_part, exact, rtol=2e-2)
        assert math.isclose(with_ot.state()["ot"], float(ot_part.mean()), rel_tol=1e-9)


def test_ot_cost_is_weighted_product_of_squared_factor_distances():
    real, syn = _features(c=2, n=5, m=3, d=9, scale=2.0)
    loss = GeoDMLoss(weights=(0.2, 0.5, 0.3), learn="fixed", normalize=False, k_H=2.0, k_S=3.0)
    (x, _), (y, _) = loss.embed(real), loss.embed(syn)
    sq = loss.sq_distances(loss.embed(real), loss.embed(syn))
    kh, ks = loss.curvature("H"), loss.curvature("S")
    e = (real[..., :3].unsqueeze(2) - syn[..., :3].unsqueeze(1)).pow(2).sum(-1)
    h = geometry.dist(x["H"].unsqueeze(2), y["H"].unsqueeze(1), k=kh).pow(2)
    s = sphere.dist(x["S"].unsqueeze(2), y["S"].unsqueeze(1), k=ks).pow(2)
    assert torch.allclose(sq, torch.stack([e, h, s]), atol=1e-8)


@pytest.mark.parametrize("debias", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
def test_ot_term_gradients_reach_syn_curvatures_and_weights(debias, normalize):
    real, syn = _features(c=2, n=7, m=3, d=12, scale=2.0)
    syn.requires_grad_(True)
    loss = GeoDMLoss(debias=debias, normalize=normalize, weights=(0.5, 0.3, 0.2))
    value = loss.transport(loss.embed(real), loss.embed(syn), loss.weights())
    assert value.shape == (2,) and torch.isfinite(value).all()
    value.sum().backward()
    assert syn.grad.abs().sum() > 0
    for p in loss.geometry_parameters():
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_fixed_and_learnable_give_the_same_value():
    real, syn = _features(d=12)
    joint = GeoDMLoss(lambda_reg=0.1)
    fixed = GeoDMLoss(lambda_reg=0.1, learn="fixed", weights=(1 / 3, 1 / 3, 1 / 3))
    assert torch.allclose(joint.per_class(real, syn), fixed.per_class(real, syn), rtol=1e-12)


# ----------------------------------------------------------------------------- gradients & modes


def test_gradients_reach_images_curvatures_and_weights(tiny_data):
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten())
    real_img = tiny_data["real"]  # [3, 8, 1, 8, 8]
    syn_img = tiny_data["syn"].clone().requires_grad_(True)  # [3, 2, 1, 8, 8]
    embed = lambda img: net(img.flatten(0, 1)).unflatten(0, img.shape[:2])  # noqa: E731
    loss = GeoDMLoss(lambda_ot=1.0, lambda_reg=0.1)
    loss(embed(real_img), embed(syn_img).detach())  # first call records the scales
    value = loss(embed(real_img), embed(syn_img))
    value.backward()
    assert torch.isfinite(syn_img.grad).all() and syn_img.grad.abs().sum() > 0
    params = loss.geometry_parameters()
    assert len(params) == 3
    for p in params:
        assert p.requires_grad and p.grad is not None
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_first_normalised_call_gives_weights_no_centroid_gradient():
    real, syn = _features(d=12)
    loss = GeoDMLoss(lambda_ot=0.0)
    loss(real, syn).backward()
    assert loss.weight_logits.grad.abs().max() < 1e-12
    loss.weight_logits.grad = None
    loss(real, syn + 0.5).backward()
    assert loss.weight_logits.grad.abs().max() > 1e-6


@pytest.mark.parametrize("learn", ["joint", "adversarial", "fixed"])
def test_learn_modes(learn):
    loss = GeoDMLoss(learn=learn, weights=(0.5, 0.25, 0.25))
    params = loss.geometry_parameters()
    assert all(p.requires_grad == (learn != "fixed") for p in params)
    assert all(p.dtype == F64 for p in params)
    w = loss.weights()
    assert torch.allclose(w, torch.tensor([0.5, 0.25, 0.25], dtype=F64), atol=1e-15)
    assert loss.config.learn == learn


def test_fixed_exact_weights_and_single_factor_parameters():
    loss = GeoDMLoss(weights=(1, 0, 0), learn="fixed")
    assert torch.equal(loss.weights(), torch.tensor([1.0, 0.0, 0.0], dtype=F64))
    e_only = GeoDMLoss(factors="E")
    assert [p.shape for p in e_only.geometry_parameters()] == [torch.Size([1])]
    assert e_only.state() == {"w_E": 1.0}


def test_state_logs_curvatures_weights_and_last_values():
    real, syn = _features(d=12)
    loss = GeoDMLoss(k_H=2.0, k_S=0.5, lambda_reg=0.1)
    assert set(loss.state()) == {"k_H", "k_S", "w_E", "w_H", "w_S"}
    loss(real, syn)
    st_ = loss.state()
    assert set(st_) == {"k_H", "k_S", "w_E", "w_H", "w_S", "d_E", "d_H", "d_S", "ot", "reg"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in st_.values())
    assert math.isclose(st_["k_H"], 2.0, rel_tol=1e-12) and math.isclose(st_["w_S"], 1 / 3, rel_tol=1e-12)


def test_dtype_preserved_and_float32_finite(dtype):
    real, syn = _features(d=12, dtype=dtype, scale=5.0)
    ok, value = _all_finite(GeoDMLoss(lambda_reg=0.1), real, syn)
    assert ok and value.dtype == dtype and value.dim() == 0 and value >= 0
    loss32 = GeoDMLoss(dtype="float32", lambda_ot=0.0)
    assert loss32.per_class(real, syn).dtype == torch.float32


# ----------------------------------------------------------------------------- numerical safety


@pytest.mark.parametrize("theta", [-60.0, 60.0])
def test_curvatures_at_their_bounds_are_finite(theta, dtype):
    real, syn = _features(d=12, dtype=dtype, scale=20.0)
    loss = GeoDMLoss(lambda_reg=0.1)
    with torch.no_grad():
        for p in loss.theta.values():
            p.fill_(theta)
    bound = loss.config.k_max if theta > 0 else loss.config.k_min
    assert math.isclose(loss.curvature("H").detach().item(), bound, rel_tol=1e-12)
    ok, _ = _all_finite(loss, real, syn)
    assert ok


def test_identical_sets_give_zero_with_finite_gradients(dtype):
    real, _ = _features(d=12, dtype=dtype, scale=3.0)
    for loss in (GeoDMLoss(), GeoDMLoss(normalize=False, debias=True)):
        ok, value = _all_finite(loss, real, real)
        assert ok and value.detach().item() == 0.0


@pytest.mark.parametrize("n,m", [(1, 1), (1, 3), (5, 1)])
def test_one_sample_batches(n, m, dtype):
    real, syn = _features(n=n, m=m, d=12, dtype=dtype)
    ok, value = _all_finite(GeoDMLoss(lambda_reg=0.1), real, syn)
    assert ok and value >= 0


def test_zero_features_are_finite(dtype):
    real = torch.zeros(2, 4, 12, dtype=dtype)
    syn = torch.zeros(2, 3, 12, dtype=dtype)
    ok, value = _all_finite(GeoDMLoss(lambda_reg=0.1), real, syn)
    assert ok
    ok, _ = _all_finite(GeoDMLoss(), real, torch.randn(2, 3, 12, dtype=dtype))
    assert ok


def test_huge_features_are_finite():
    real, syn = _features(d=12, scale=1e4)
    ok, _ = _all_finite(GeoDMLoss(lambda_reg=0.1, how="expmap0"), real, syn)
    assert ok


# ----------------------------------------------------------------------------- normalisation buffers


def test_normalisation_scales_recorded_once_and_restored():
    real, syn = _features(d=12)
    loss = GeoDMLoss()
    loss.per_class(real, syn)
    scales = loss.scales.clone()
    assert (scales > 0).all() and (loss.ot_scales > 0).all()
    x, _ = loss.embed(real)
    y, _ = loss.embed(syn)
    assert torch.allclose(scales, loss.discrepancies(x, y).mean(1))
    loss.per_class(real, syn + 1.0)
    assert torch.equal(loss.scales, scales)  # not re-recorded
    sd = loss.state_dict()
    assert {"scales", "ot_scales", "fixed_weights", "weight_logits", "theta.H", "theta.S"} <= set(sd)
    resumed = GeoDMLoss()
    resumed.load_state_dict(sd)
    assert torch.equal(resumed.scales, scales)
    assert torch.equal(resumed.per_class(real, syn + 1.0), loss.per_class(real, syn + 1.0))
    resumed.reset_scales()
    assert (resumed.scales == 0).all()


def test_normalised_centroid_terms_start_at_one():
    real, syn = _features(d=12)
    loss = GeoDMLoss(lambda_ot=0.0)
    assert torch.allclose(loss.per_class(real, syn).mean(), torch.tensor(1.0, dtype=F64))


def test_zero_first_discrepancy_is_not_recorded():
    real, syn = _features(d=12)
    loss = GeoDMLoss(lambda_ot=1.0)
    assert loss(real, real).detach().item() == 0.0
    assert (loss.scales == 0).all() and (loss.ot_scales > 0).all()  # real points differ among themselves
    loss(real, syn)
    assert (loss.scales > 0).all() and (loss.ot_scales > 0).all()
    assert torch.allclose(loss.per_class(real, syn).new_tensor(loss.state()["d_E"]), loss.scales[0])


def test_normalize_false_keeps_buffers_empty():
    real, syn = _features(d=12)
    loss = GeoDMLoss(normalize=False)
    loss(real, syn)
    assert (loss.scales == 0).all() and (loss.ot_scales == 0).all()
