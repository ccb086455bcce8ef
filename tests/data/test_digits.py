"""scikit-learn's 8x8 digits: offline, fixed stratified split, constants in the spec table."""

from __future__ import annotations

import pytest
import torch

from hdd_lib.data import get_spec, load
from hdd_lib.data.digits import read_digits


def test_digits_load_offline_with_fixed_split_sizes():
    train, test = load("digits"), load("digits", split="test")
    assert train.images.shape == (1442, 1, 8, 8) and test.images.shape == (355, 1, 8, 8)
    assert train.counts.tolist() == [143, 146, 142, 147, 145, 146, 145, 144, 140, 144]
    assert test.counts.tolist() == [35, 36, 35, 36, 36, 36, 36, 35, 34, 36]
    assert train.spec.class_names == tuple("0123456789")


def test_digits_split_is_deterministic_and_disjoint():
    from sklearn.datasets import load_digits

    a, b = read_digits("train"), read_digits("train")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    test = read_digits("test")
    full = torch.from_numpy(load_digits().images).to(torch.uint8)
    assert a.images.shape[0] + test.images.shape[0] == full.shape[0]
    assert torch.equal(test.images[:3, 0], full[[33, 36, 37]])  # the 5th image of classes 5, 0 and 9


def test_digits_constants_are_the_train_split_statistics():
    raw = read_digits("train")
    x = raw.images.double() / 16
    spec = get_spec("digits")
    assert spec.mean[0] == pytest.approx(x.mean().item(), abs=1e-4)
    assert spec.std[0] == pytest.approx(x.std(unbiased=False).item(), abs=1e-4)
    data = load("digits")
    assert abs(data.images.mean().item()) < 1e-3 and data.images.std().item() == pytest.approx(1, abs=1e-3)
    v = raw.images[10, 0, 3, 4].item()
    assert data.images[10, 0, 3, 4].item() == pytest.approx((v / 16 - 0.3051) / 0.3762, abs=1e-5)


def test_digits_ignores_root():
    assert torch.equal(load("digits", "/no/such/root").labels, load("digits").labels)
