"""DM loss: squared distance of class means, batched over classes."""

from __future__ import annotations

import torch

from hdd_lib import get_loss


def test_dm_equals_per_class_loop(dtype):
    g = torch.Generator().manual_seed(0)
    real = torch.randn(5, 12, 7, generator=g).to(dtype)
    syn = torch.randn(5, 3, 7, generator=g).to(dtype).requires_grad_(True)
    ref = sum(torch.sum((real[c].mean(0) - syn[c].mean(0)) ** 2) for c in range(5))
    ours = get_loss("dm")(real, syn)
    assert ours.dtype == dtype
    torch.testing.assert_close(ours, ref)
    (g_ours,) = torch.autograd.grad(ours, syn)
    (g_ref,) = torch.autograd.grad(ref, syn)
    torch.testing.assert_close(g_ours, g_ref)


def test_dm_per_class_shape_and_translation():
    real = torch.zeros(3, 4, 2)
    syn = torch.ones(3, 1, 2)
    assert get_loss("dm").per_class(real, syn).tolist() == [2.0, 2.0, 2.0]
