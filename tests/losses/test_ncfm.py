"""NCFM loss: the characteristic-function discrepancy against a per-class, per-frequency loop."""

from __future__ import annotations

import cmath
import math

import pytest
import torch
import torch.nn.functional as F

from hdd_lib import get_loss
from hdd_lib.config import ConfigError


def features(C=3, N=7, M=3, D=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(C, N, D, generator=g).to(dtype), torch.randn(C, M, D, generator=g).to(dtype)


def direct(real, syn, t, *, alpha=0.5, beta=0.5, scale=300.0):
    """The paper's formula, one class and one frequency at a time, with complex numbers."""
    out = []
    for c in range(real.shape[0]):
        r, s = F.normalize(real[c], dim=-1), F.normalize(syn[c], dim=-1)
        terms = []
        for tj in t.tolist():
            phi = [sum(cmath.exp(1j * sum(a * b for a, b in zip(tj, f))) for f in x.tolist()) / len(x) for x in (r, s)]
            amp = (abs(phi[0]) - abs(phi[1])) ** 2
            phase = 2 * (abs(phi[0]) * abs(phi[1]) - phi[0].real * phi[1].real - phi[0].imag * phi[1].imag)
            terms.append(math.sqrt(alpha * amp + beta * max(phase, 0.0)))
        out.append(scale * sum(terms) / len(terms))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.5), (1.0, 0.0), (0.2, 0.9)])
def test_ncfm_equals_the_direct_formula(alpha, beta):
    real, syn = features()
    loss = get_loss("ncfm", num_freqs=16, alpha=alpha, beta=beta)
    t = loss.frequencies(real.shape[-1], syn)
    # sqrt(x + 1e-12) - 1e-6 differs from sqrt(x) by at most 1e-6 per frequency, times scale 300
    torch.testing.assert_close(loss.per_class(real, syn), direct(real, syn, t, alpha=alpha, beta=beta), rtol=0, atol=4e-4)


def test_frequencies_are_standard_normal_fixed_until_resampled():
    loss = get_loss("ncfm")
    like = torch.zeros(1, dtype=torch.float64)
    t = loss.frequencies(64, like)
    assert t.shape == (4096, 64) and abs(t.mean().item()) < 0.01 and abs(t.std().item() - 1) < 0.01
    assert torch.equal(loss.frequencies(64, like), t)  # deterministic between resamples (per_class twice)
    loss.resample(torch.Generator().manual_seed(1))
    t1 = loss.frequencies(64, like)
    assert not torch.equal(t1, t)
    other = get_loss("ncfm")
    other.resample(torch.Generator().manual_seed(1))
    assert torch.equal(other.frequencies(64, like), t1)  # the run's generator decides


def test_identical_sets_give_exactly_zero_one_sample_is_finite(dtype):
    real, _ = features(dtype=dtype)
    syn = real.clone().requires_grad_(True)
    loss = get_loss("ncfm", num_freqs=64)
    value = loss(real, syn)
    assert value.item() == 0.0
    value.backward()
    assert torch.isfinite(syn.grad).all()
    one = real[:, :1].clone().requires_grad_(True)  # |Phi| = 1 for a single sample
    value = loss(real, one)
    value.backward()
    assert value.item() > 0 and torch.isfinite(one.grad).all() and one.grad.abs().sum() > 0


def test_scale_invariance_of_normalised_features_and_the_scale_setting():
    real, syn = features()
    base = get_loss("ncfm", num_freqs=32)
    torch.testing.assert_close(base(real * 7.0, syn * 0.1), base(real, syn))
    torch.testing.assert_close(get_loss("ncfm", num_freqs=32, scale=1.0)(real, syn) * 300, base(real, syn))


def test_learned_sampler_is_ascended_and_scales_the_frequencies():
    real, syn = features()
    loss = get_loss("ncfm", num_freqs=8, sampler="learned")
    (p,) = loss.learned_parameters()
    assert loss.ascent and p.shape == (8,)
    with torch.no_grad():
        p.fill_(math.log(2.0))
    z = get_loss("ncfm", num_freqs=8).frequencies(5, syn)
    torch.testing.assert_close(loss.frequencies(5, syn), 2 * z)
    loss(real, syn).backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert get_loss("ncfm").learned_parameters() == []
    with pytest.raises(ConfigError, match="sampler"):
        get_loss("ncfm", sampler="network")
