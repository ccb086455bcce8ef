"""Fixtures for the data tests: an isolated cache and environment, and fabricated dataset roots."""

from __future__ import annotations

import pytest
from torchvision import datasets as tvd

from . import fabricate


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """Never read the user's $HDD_DATA_ROOT nor write to ~/.cache during tests."""
    monkeypatch.setenv("HDD_CACHE_DIR", str(tmp_path_factory.mktemp("hdd_cache")))
    monkeypatch.delenv("HDD_DATA_ROOT", raising=False)


@pytest.fixture
def svhn_root(tmp_path, monkeypatch):
    """SVHN .mat files, with torchvision's MD5 table pointed at them."""
    written = fabricate.write_svhn(tmp_path)
    table = {
        split: [url, name, fabricate.md5(tmp_path / name)]
        for split, (url, name, _) in tvd.SVHN.split_list.items()
        if split != "extra"
    }
    monkeypatch.setattr(tvd.SVHN, "split_list", {**tvd.SVHN.split_list, **table})
    return tmp_path, written


@pytest.fixture
def cifar10_root(tmp_path, monkeypatch):
    written = fabricate.write_cifar10(tmp_path)
    for attr, value in fabricate.cifar_tables(tmp_path, tvd.CIFAR10).items():
        monkeypatch.setattr(tvd.CIFAR10, attr, value)
    return tmp_path, written


@pytest.fixture
def cifar100_root(tmp_path, monkeypatch):
    written = fabricate.write_cifar100(tmp_path)
    for attr, value in fabricate.cifar_tables(tmp_path, tvd.CIFAR100).items():
        monkeypatch.setattr(tvd.CIFAR100, attr, value)
    return tmp_path, written


@pytest.fixture
def mnist_root(tmp_path, monkeypatch):
    """The four official-named .gz files only (like the read-only shared copy)."""
    written = fabricate.write_mnist(tmp_path)
    monkeypatch.setattr(tvd.MNIST, "resources", fabricate.mnist_resources(tmp_path))
    return tmp_path, written
