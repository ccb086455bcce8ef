"""Contract every registered matching loss honours (like geoopt's test_manifold_basic)."""

from __future__ import annotations

import pytest
import torch

from hdd_lib import available_losses, get_loss


@pytest.fixture(params=available_losses())
def loss(request):
    return get_loss(request.param)


def features(dtype, C=3, N=6, M=2, D=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(C, N, D, generator=g).to(dtype) * 2, torch.randn(C, M, D, generator=g).to(dtype)


def test_scalar_nonnegative_dtype_and_finite_gradients(loss, dtype):
    real, syn = features(dtype)
    syn.requires_grad_(True)
    value = loss(real, syn)
    assert value.shape == () and value.dtype == dtype
    assert torch.isfinite(value) and value.item() >= 0
    value.backward()
    assert torch.isfinite(syn.grad).all() and syn.grad.abs().sum() > 0


def test_zero_when_real_equals_syn(loss, dtype):
    real, _ = features(dtype)
    syn = real.clone().requires_grad_(True)
    value = loss(real, syn)
    assert abs(value.item()) < (1e-6 if dtype == torch.float32 else 1e-10)
    value.backward()
    assert torch.isfinite(syn.grad).all()


def test_sum_of_per_class(loss):
    real, syn = features(torch.float64)
    torch.testing.assert_close(loss(real, syn), loss.per_class(real, syn).sum())
    assert loss.per_class(real, syn).shape == (3,)


def test_classes_are_independent(loss):
    # the loss of class c depends on class c's features only (no mixing across classes)
    real, syn = features(torch.float64)
    base = loss.per_class(real, syn)
    syn2 = syn.clone()
    syn2[1] += 1.0
    changed = loss.per_class(real, syn2)
    torch.testing.assert_close(changed[[0, 2]], base[[0, 2]])
    assert changed[1] != base[1]


@pytest.mark.parametrize(
    "real_shape, syn_shape, match",
    [
        ((3, 4), (3, 2, 4), r"real must have shape \[C, N, D\].*\(3, 4\)"),
        ((3, 4, 5), (3, 2, 5, 1), r"syn must have shape .*\(3, 2, 5, 1\)"),
        ((3, 4, 5), (2, 2, 5), r"same number of classes.*C=3.*C=2"),
        ((3, 4, 5), (3, 2, 6), r"feature size.*D=5.*D=6"),
        ((3, 0, 5), (3, 2, 5), r"non-empty.*\(3, 0, 5\)"),
    ],
)
def test_bad_shapes_raise(loss, real_shape, syn_shape, match):
    with pytest.raises(ValueError, match=match):
        loss(torch.zeros(real_shape), torch.zeros(syn_shape))


def test_unknown_loss_name():
    with pytest.raises(ValueError, match=r"unknown loss 'mmd'; known: .*hdd"):
        get_loss("mmd")
