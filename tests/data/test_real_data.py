"""The real datasets at hand (../shared/datasets or $HDD_DATA_ROOT), skipped with a reason when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hdd_lib.data import get_spec, load

_CANDIDATES = [os.environ.get("HDD_DATA_ROOT"), Path(__file__).resolve().parents[3] / "shared" / "datasets"]


def _root_with(relpath: str) -> Path:
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / relpath).exists():
            return Path(candidate)
    pytest.skip(f"no {relpath} under $HDD_DATA_ROOT or ../shared/datasets (real data not available here)")


@pytest.fixture(scope="module", params=["mnist", "fashionmnist"])
def mnist_like(request):
    name = request.param
    root = _root_with(f"{'MNIST' if name == 'mnist' else 'FashionMNIST'}/raw/train-images-idx3-ubyte.gz")
    return name, load(name, root), load(name, root, split="test")


def test_mnist_family_sizes_classes_and_normalisation(mnist_like):
    name, train, test = mnist_like
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.counts.sum() == 60000 and (train.counts > 5000).all()
    assert test.counts.sum() == 10000 and train.spec.class_names == get_spec(name).class_names
    assert abs(train.images.mean().item()) < 0.01  # the table's mean is the train mean
    assert train.images.std().item() == pytest.approx(1.0, abs=0.01)
    batch = train.sample(8, generator=torch.Generator().manual_seed(0))
    assert batch.shape == (10, 8, 1, 28, 28)


@pytest.mark.slow
def test_cifar10_jpeg_copy(tmp_path):
    root = _root_with("CIFAR10-JPEG/cifar10-jpeg.tar.gz")
    train = load("cifar10_jpeg", root, cache_dir=tmp_path)
    test = load("cifar10_jpeg", root, split="test", cache_dir=tmp_path)  # from the cache
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert train.counts.tolist() == [5000] * 10 and test.counts.tolist() == [1000] * 10
    assert train.spec.class_names[0] == "airplane" and train.spec.class_names[-1] == "truck"
    assert train.images.mean(dim=(0, 2, 3)).abs().max() < 0.01  # JPEG copy: means match the official ones
