"""Tests for ``hdd_lib.augment``: Siamese sharing, SPEC parameter ranges, per-op agreement with
straightforward per-image references, determinism, gradients and strategy parsing."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from hdd_lib.augment import FAMILIES, DSAConfig, apply, augment, parse_strategy, sample, siamese

DEFAULT = DSAConfig()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Per-image references, written from the op definitions (loops, slicing, one affine_grid each)
# ---------------------------------------------------------------------------------------------


def ref_color(img, b, s, c):
    img = img + b
    m = img.mean(dim=0, keepdim=True)
    img = (img - m) * s + m
    m = img.mean()
    return (img - m) * c + m


def ref_crop(img, dh, dw):
    """y[i, j] = x[i + dh, j + dw], zero where i + dh or j + dw falls outside, by slicing."""
    _, h, w = img.shape
    out = torch.zeros_like(img)
    i0, i1 = max(0, -dh), min(h, h - dh)
    j0, j1 = max(0, -dw), min(w, w - dw)
    if i0 < i1 and j0 < j1:
        out[:, i0:i1, j0:j1] = img[:, i0 + dh : i1 + dh, j0 + dw : j1 + dw]
    return out


def ref_cutout(img, ch, cw, kh, kw):
    """The reference's index set: clamp(arange(k) + centre - k // 2, 0, side - 1) per axis."""
    _, h, w = img.shape
    rows = (torch.arange(kh) + ch - kh // 2).clamp(0, h - 1)
    cols = (torch.arange(kw) + cw - kw // 2).clamp(0, w - 1)
    out = img.clone()
    out[:, rows[:, None], cols[None, :]] = 0
    return out


def ref_affine(img, theta):
    grid = F.affine_grid(theta[None].to(img.dtype), [1, *img.shape], align_corners=True)
    return F.grid_sample(img[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]


def ref_apply(x, params):
    """Loop over groups and images, dispatching on each group's family name."""
    out = torch.empty_like(x)
    kh, kw = params.cutout_size
    for g in range(x.shape[0]):
        name = params.families[int(params.family[g])]
        for n in range(x.shape[1]):
            p = 0 if params.per_group == 1 else n
            img = x[g, n]
            if name == "color":
                b, s, c = (float(t[g, p]) for t in (params.brightness, params.saturation, params.contrast))
                img = ref_color(img, b, s, c)
            elif name == "crop":
                img = ref_crop(img, int(params.shift[g, p, 0]), int(params.shift[g, p, 1]))
            elif name == "cutout":
                img = ref_cutout(img, int(params.cutout[g, p, 0]), int(params.cutout[g, p, 1]), kh, kw)
            elif name == "flip":
                img = torch.flip(img, dims=[-1]) if bool(params.flip[g, p]) else img
            elif name == "scale":
                sh, sw = float(params.scale[g, p, 0]), float(params.scale[g, p, 1])
                img = ref_affine(img, torch.tensor([[sw, 0.0, 0.0], [0.0, sh, 0.0]], dtype=torch.float64))
            elif name == "rotate":
                a = float(params.rotate[g, p])
                theta = [[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]]
                img = ref_affine(img, torch.tensor(theta, dtype=torch.float64))
            out[g, n] = img
    return out


def tol(dtype):
    return {"atol": 1e-6, "rtol": 1e-6} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-12}


# ---------------------------------------------------------------------------------------------
# (a) Siamese: one transform per class, shared by its real and synthetic images
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [*FAMILIES, DEFAULT.strategy])
def test_siamese_same_transform_within_a_class(strategy):
    G, C, H, W = 12, 3, 16, 16
    base = torch.randn(G, 1, C, H, W, generator=gen(1))
    real, syn = base.expand(G, 5, C, H, W).clone(), base.expand(G, 3, C, H, W).clone()
    out_real, out_syn = siamese(real, syn, DSAConfig(strategy=strategy), generator=gen(2))
    assert out_real.shape == real.shape and out_syn.shape == syn.shape
    both = torch.cat([out_real, out_syn], dim=1)  # every image of a class started identical
    torch.testing.assert_close(both, both[:, :1].expand_as(both), atol=0, rtol=0)


def test_siamese_equals_one_shared_draw_applied_to_both():
    real, syn = torch.randn(6, 4, 3, 8, 8, generator=gen(1)), torch.randn(6, 2, 3, 8, 8, generator=gen(2))
    out_real, out_syn = siamese(real, syn, DEFAULT, generator=gen(3))
    params = sample(DEFAULT, 6, generator=gen(3), image_size=(8, 8))
    assert params.per_group == 1
    torch.testing.assert_close(out_real, apply(real, params), atol=0, rtol=0)
    torch.testing.assert_close(out_syn, apply(syn, params), atol=0, rtol=0)


def test_siamese_different_classes_get_different_transforms():
    G = 64
    params = sample(DEFAULT, G, generator=gen(0), image_size=(32, 32))
    assert params.family.unique().numel() == len(FAMILIES)
    for t in (params.brightness, params.saturation, params.contrast, params.rotate, params.scale[..., 0]):
        assert t.unique().numel() == G
    # the same image in every class comes out transformed differently in most classes
    img = torch.randn(1, 1, 3, 32, 32, generator=gen(1)).expand(G, 2, 3, 32, 32)
    out, _ = siamese(img, img[:, :1], DEFAULT, generator=gen(0))
    assert torch.unique(out[:, 0].reshape(G, -1), dim=0).shape[0] > G // 2


# ---------------------------------------------------------------------------------------------
# (b) parameter ranges (SPEC "Common protocol")
# ---------------------------------------------------------------------------------------------


def test_parameter_ranges_match_spec():
    G = 20_000
    p = sample(DEFAULT, G, generator=gen(0), image_size=(32, 32))
    assert p.families == FAMILIES and p.family.shape == (G,) and p.per_group == 1
    freq = torch.bincount(p.family, minlength=6).double() / G
    torch.testing.assert_close(freq, torch.full((6,), 1 / 6, dtype=torch.float64), atol=0.015, rtol=0)
    assert 1 / 1.2 <= p.scale.min() and p.scale.max() <= 1.2
    assert p.scale.min() < 1 / 1.2 + 0.01 and p.scale.max() > 1.2 - 0.01
    deg = p.rotate * 180 / math.pi
    assert -15 <= deg.min() and deg.max() <= 15 and deg.min() < -14.9 and deg.max() > 14.9
    assert p.shift.dtype == torch.long and set(p.shift.unique().tolist()) == set(range(-4, 5))
    assert p.cutout_size == (16, 16)
    assert p.cutout.dtype == torch.long and set(p.cutout.unique().tolist()) == set(range(0, 33))
    assert -0.5 <= p.brightness.min() and p.brightness.max() < 0.5
    assert 0 <= p.saturation.min() and p.saturation.max() < 2
    assert 0.5 <= p.contrast.min() and p.contrast.max() < 1.5
    for t, mid in ((p.brightness, 0.0), (p.saturation, 1.0), (p.contrast, 1.0)):
        assert abs(float(t.mean()) - mid) < 0.02
    assert p.flip.dtype == torch.bool and abs(float(p.flip.double().mean()) - 0.5) < 0.015


@pytest.mark.parametrize(
    ("size", "shift", "cut"), [((28, 28), (4, 4), (14, 14)), ((24, 40), (3, 5), (12, 20)), ((7, 9), (1, 1), (4, 5))]
)
def test_sizes_follow_image_size_per_axis(size, shift, cut):
    p = sample(DEFAULT, 4000, generator=gen(0), image_size=size)
    assert p.cutout_size == cut
    for axis in range(2):
        assert set(p.shift[..., axis].unique().tolist()) == set(range(-shift[axis], shift[axis] + 1))
        odd = cut[axis] % 2
        assert set(p.cutout[..., axis].unique().tolist()) == set(range(0, size[axis] + 1 - odd))


def test_strategy_subsets_and_per_group_shapes():
    p = sample(DSAConfig(strategy="flip_scale"), 500, per_group=7, generator=gen(0), image_size=(8, 8))
    assert p.families == ("flip", "scale") and set(p.family.tolist()) == {0, 1}
    assert p.per_group == 7 and p.brightness.shape == (500, 7) and p.shift.shape == (500, 7, 2)
    assert parse_strategy("crop_crop_color") == ("crop", "crop", "color")


# ---------------------------------------------------------------------------------------------
# (c) every op equals its per-image reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_image", [False, True], ids=["per_group", "per_image"])
@pytest.mark.parametrize("strategy", [*FAMILIES, DEFAULT.strategy])
def test_ops_match_per_image_reference(strategy, per_image, dtype):
    G, N, C, H, W = 8, 3, 3, 12, 12
    x = torch.randn(G, N, C, H, W, generator=gen(5), dtype=dtype)
    params = sample(DSAConfig(strategy=strategy), G, per_group=N if per_image else 1, generator=gen(6), image_size=(H, W))
    out = apply(x, params)
    assert out.dtype == dtype and out.shape == x.shape
    torch.testing.assert_close(out, ref_apply(x, params), **tol(dtype))


@given(
    h=st.integers(2, 11),
    w=st.integers(2, 11),
    c=st.sampled_from([1, 3]),
    per_image=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_ops_match_reference_on_odd_and_non_square_sizes(h, w, c, per_image, seed):
    G, N = 12, 2
    x = torch.randn(G, N, c, h, w, generator=gen(seed), dtype=torch.float64)
    params = sample(DEFAULT, G, per_group=N if per_image else 1, generator=gen(seed + 1), image_size=(h, w))
    torch.testing.assert_close(apply(x, params), ref_apply(x, params), **tol(torch.float64))


def test_crop_and_cutout_spot_checks():
    x = torch.arange(1.0, 65.0).view(1, 1, 1, 8, 8)
    p = sample(DSAConfig(strategy="crop"), 1, generator=gen(0), image_size=(8, 8))
    p0 = dataclasses.replace(p, shift=torch.zeros_like(p.shift))
    torch.testing.assert_close(apply(x, p0), x, atol=0, rtol=0)  # no shift is the identity
    p1 = dataclasses.replace(p, shift=torch.tensor([[[1, -2]]]))  # y[i, j] = x[i + 1, j - 2]
    y = apply(x, p1)[0, 0, 0]
    assert y[0, 2] == x[0, 0, 0, 1, 0] and y[7].abs().sum() == 0 and y[:, :2].abs().sum() == 0
    c = sample(DSAConfig(strategy="cutout"), 1, generator=gen(0), image_size=(8, 8))
    c = dataclasses.replace(c, cutout=torch.tensor([[[4, 4]]]))  # 4x4 square at rows/cols 2..5
    y = apply(torch.ones(1, 1, 2, 8, 8), c)
    assert (y == 0).sum() == 2 * 16 and (y[..., 2:6, 2:6] == 0).all()


# ---------------------------------------------------------------------------------------------
# (d) evaluation: one family per batch, parameters per image
# ---------------------------------------------------------------------------------------------


def test_augment_shares_the_family_and_draws_per_image_parameters():
    B = 16
    x = torch.randn(1, 3, 16, 16, generator=gen(0)).expand(B, 3, 16, 16).contiguous()
    for seed in range(6):
        out = augment(x, DEFAULT, generator=gen(seed))
        params = sample(DEFAULT, 1, per_group=B, generator=gen(seed), image_size=(16, 16))
        assert params.family.shape == (1,) and params.per_group == B
        torch.testing.assert_close(out, apply(x[None], params)[0], atol=0, rtol=0)
    for strategy in ("color", "scale", "rotate"):  # continuous parameters: every image differs
        out = augment(x, DSAConfig(strategy=strategy), generator=gen(0))
        assert torch.unique(out.reshape(B, -1), dim=0).shape[0] == B
    out = augment(x, DSAConfig(strategy="crop"), generator=gen(0))
    assert torch.unique(out.reshape(B, -1), dim=0).shape[0] > 1


# ---------------------------------------------------------------------------------------------
# (e) determinism, (f) gradients, (g) "none" and bad input
# ---------------------------------------------------------------------------------------------


def test_same_seed_same_output_and_no_global_rng():
    real, syn = torch.randn(10, 6, 3, 8, 8, generator=gen(1)), torch.randn(10, 2, 3, 8, 8, generator=gen(2))
    torch.manual_seed(0)
    a = siamese(real, syn, DEFAULT, generator=gen(7))
    torch.manual_seed(1)  # the global RNG plays no part
    b = siamese(real, syn, DEFAULT, generator=gen(7))
    c = siamese(real, syn, DEFAULT, generator=gen(8))
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, atol=0, rtol=0)
    assert not torch.equal(a[0], c[0])
    x = real[:, 0]
    torch.testing.assert_close(augment(x, DEFAULT, generator=gen(3)), augment(x, DEFAULT, generator=gen(3)))
    state = torch.random.get_rng_state()
    augment(x, DEFAULT, generator=gen(4))
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("strategy", FAMILIES)
def test_gradients_are_finite_and_nonzero(strategy):
    cfg = DSAConfig(strategy=strategy)
    real = torch.randn(4, 5, 3, 8, 8, generator=gen(0))
    syn = torch.randn(4, 2, 3, 8, 8, generator=gen(1), requires_grad=True)
    _, out = siamese(real, syn, cfg, generator=gen(2))
    (out * torch.randn(out.shape, generator=gen(3))).sum().backward()
    assert torch.isfinite(syn.grad).all() and syn.grad.abs().sum() > 0
    x = torch.randn(6, 3, 8, 8, generator=gen(4), requires_grad=True)
    (augment(x, cfg, generator=gen(5)) ** 2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("per_image", [False, True], ids=["per_group", "per_image"])
def test_gradcheck_mixed_families(per_image):
    x = torch.randn(6, 2, 3, 16, 16, generator=gen(0), dtype=torch.float64, requires_grad=True)
    params = sample(DEFAULT, 6, per_group=2 if per_image else 1, generator=gen(0), image_size=(16, 16))
    assert len(set(params.family.tolist())) > 1  # exercises the gather / scatter path
    assert torch.autograd.gradcheck(lambda t: apply(t, params), (x,), fast_mode=True)


def test_none_is_identity():
    x = torch.randn(4, 3, 8, 8, generator=gen(0))
    for strategy in ("none", "None", ""):
        cfg = DSAConfig(strategy=strategy)
        assert cfg.families == ()
        assert torch.equal(augment(x, cfg, generator=gen(1)), x)
        r, s = siamese(x[None], x[None, :1], cfg, generator=gen(1))
        assert torch.equal(r[0], x) and torch.equal(s[0], x[:1])


def test_unknown_family_raises_naming_it():
    with pytest.raises(ValueError, match="blur"):
        DSAConfig(strategy="color_blur")
    with pytest.raises(ValueError, match="Crop"):
        parse_strategy("Crop_flip")
    with pytest.raises(ValueError, match="unknown"):
        parse_strategy("color__flip")


def test_bad_shapes_and_generators_raise():
    p = sample(DEFAULT, 3, per_group=4, generator=gen(0), image_size=(8, 8))
    with pytest.raises(ValueError, match="groups"):
        apply(torch.zeros(2, 4, 1, 8, 8), p)
    with pytest.raises(ValueError, match="per_group"):
        apply(torch.zeros(3, 5, 1, 8, 8), p)
    with pytest.raises(ValueError, match="8x9"):
        apply(torch.zeros(3, 4, 1, 8, 9), p)
    with pytest.raises(ValueError, match="5 dims"):
        apply(torch.zeros(4, 1, 8, 8), p)
    with pytest.raises(ValueError, match="same G"):
        siamese(torch.zeros(3, 4, 1, 8, 8), torch.zeros(2, 1, 1, 8, 8), DEFAULT, generator=gen(0))
    with pytest.raises(ValueError, match="4 dims"):
        augment(torch.zeros(1, 4, 1, 8, 8), DEFAULT, generator=gen(0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.family = torch.zeros(3)  # type: ignore[misc]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_seed_same_transform_on_cuda():
    real, syn = torch.randn(10, 32, 3, 32, 32, generator=gen(0)), torch.randn(10, 4, 3, 32, 32, generator=gen(1))
    cpu = siamese(real, syn, DEFAULT, generator=gen(2))
    gpu = siamese(real.cuda(), syn.cuda(), DEFAULT, generator=gen(2))
    for u, v in zip(cpu, gpu):
        torch.testing.assert_close(v.cpu(), u, atol=1e-5, rtol=1e-5)
    x = real[:, 0]
    torch.testing.assert_close(
        augment(x.cuda(), DEFAULT, generator=gen(3)).cpu(), augment(x, DEFAULT, generator=gen(3)), atol=1e-5, rtol=1e-5
    )


def test_cutmix_pastes_one_clipped_box_per_group_and_reports_the_kept_area():
    from hdd_lib.augment import cutmix

    x = torch.arange(6.0).view(1, 6, 1, 1, 1).expand(400, 6, 1, 8, 8).contiguous()  # image i is all i
    mixed, perm, keep = cutmix(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert mixed.shape == x.shape and perm.shape == (400, 6) and keep.shape == (400,)
    assert sorted(perm[0].tolist()) == list(range(6))
    pasted = mixed != x  # where a group took its permuted images (never where perm[i] == i)
    for g in range(400):
        box = (mixed[g, :, 0] == perm[g].view(-1, 1, 1).float())  # [6, 8, 8]: pixels equal to the pasted image
        region = box[(perm[g] != torch.arange(6)).nonzero().flatten()]
        if len(region):
            assert (region == region[0]).all()  # the same box for every image of the group
            assert abs(keep[g].item() - (1 - region[0].float().mean().item())) < 1e-6
            rows, cols = region[0].any(1).nonzero().flatten(), region[0].any(0).nonzero().flatten()
            if len(rows):  # one rectangle: every pixel between its extreme rows and columns is pasted
                assert region[0][rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()
    boxed = (keep < 1).float().mean().item()
    assert 0.35 < boxed < 0.6 and keep.min() >= 0  # p = 0.5 (a box of side 0 can also occur)
    assert torch.equal(cutmix(x, 0.0, generator=torch.Generator().manual_seed(0))[0], x)
    assert (cutmix(x, 1.0, generator=torch.Generator().manual_seed(1))[2] < 1).float().mean() > 0.9
    assert pasted.any()
