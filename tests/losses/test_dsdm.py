"""DSDM loss: mean + covariance (Gram form) + EMA prototype, against per-class loops with D x D covariances."""

from __future__ import annotations

import pytest
import torch

from hdd_lib import get_loss
from hdd_lib.losses.dsdm import covariance_gap


def features(C=3, N=9, M=4, D=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(C, N, D, generator=g).to(dtype) * 2 + 1, torch.randn(C, M, D, generator=g).to(dtype)


def cov(x):
    return torch.cov(x.T) if x.shape[0] > 1 else torch.zeros(x.shape[1], x.shape[1], dtype=x.dtype)


def direct(real, syn, proto=None, *, w=(1.0, 50.0, 0.2)):
    d = real.shape[-1]
    out = []
    for c in range(real.shape[0]):
        r, s = real[c], syn[c]
        v = w[0] * ((r.mean(0) - s.mean(0)) ** 2).sum() + w[1] * ((cov(s) - cov(r)) ** 2).sum() / d
        if proto is not None:
            v = v + w[2] * ((s.mean(0) - proto[c]) ** 2).sum() / d
        out.append(v)
    return torch.stack(out)


@pytest.mark.parametrize("shape", [(3, 9, 4, 6), (2, 5, 1, 7), (2, 1, 3, 4), (4, 30, 12, 3)])
def test_covariance_gap_equals_d_by_d_covariances(shape):
    real, syn = features(*shape)
    ref = torch.stack([((cov(syn[c]) - cov(real[c])) ** 2).sum() for c in range(shape[0])])
    torch.testing.assert_close(covariance_gap(real, syn), ref)


def test_dsdm_equals_the_direct_formula_before_and_after_the_prototype_starts():
    real, syn = features()
    loss = get_loss("dsdm", proto_start=2)
    torch.testing.assert_close(loss.per_class(real, syn), direct(real, syn))  # call 0 sets h = mu_s
    proto = syn.mean(1)
    for call in range(1, 6):
        syn_n = syn + 0.1 * call
        expected = direct(real, syn_n, proto if call > 2 else None)
        torch.testing.assert_close(loss.per_class(real, syn_n), expected)
        proto = 0.99 * proto + 0.01 * syn_n.mean(1)
    torch.testing.assert_close(loss.prototype, proto)
    assert int(loss.calls) == 6


def test_identical_sets_zero_single_sample_finite(dtype):
    real, _ = features(dtype=dtype)
    syn = real.clone().requires_grad_(True)
    value = get_loss("dsdm")(real, syn)
    assert value.item() == 0.0
    one = real[:, :1].clone().requires_grad_(True)  # one synthetic sample: covariance 0, not NaN
    value = get_loss("dsdm")(real, one)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(one.grad).all() and one.grad.abs().sum() > 0


def test_mean_weight_zero_leaves_covariance_only_and_gradients_match_autograd_of_the_loop():
    real, syn = features()
    syn.requires_grad_(True)
    ours = get_loss("dsdm", mean_weight=0.0)(real, syn)
    ref = direct(real, syn, w=(0.0, 50.0, 0.2)).sum()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, syn)[0], torch.autograd.grad(ref, syn)[0])


def test_prototype_state_resumes_exactly_through_state_dict():
    real, syn = features()
    a = get_loss("dsdm", proto_start=1)
    for k in range(3):
        a(real, syn + k)
    b = get_loss("dsdm", proto_start=1)
    b.load_state_dict(a.state_dict())
    assert int(b.calls) == 3 and torch.equal(b.prototype, a.prototype)
    torch.testing.assert_close(b.per_class(real, syn * 2), a.per_class(real, syn * 2), rtol=0, atol=0)
