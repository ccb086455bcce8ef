"""load(): name and split validation, the default root, devices; the embedded scikit-learn digits."""

from __future__ import annotations

import pytest
import torch

from hdd_lib.data import DatasetNotFoundError, default_root, get_spec, load
from hdd_lib.data.load import read_digits

from . import fabricate


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown dataset 'imagenet'; known: cifar10, cifar100, .*imagefolder"):
        load("imagenet")


def test_upper_case_name_gets_a_hint():
    with pytest.raises(ValueError, match=r"keys are lower case: 'cifar10'"):
        load("CIFAR10")


def test_bad_split():
    with pytest.raises(ValueError, match=r"unknown split 'val'; known: train, test"):
        load("digits", split="val")


def test_default_root_is_env_then_data(monkeypatch, tmp_path):
    assert default_root().as_posix() == "data"
    monkeypatch.setenv("HDD_DATA_ROOT", str(tmp_path))
    assert default_root() == tmp_path
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
        load("svhn")


def test_root_none_reads_hdd_data_root(monkeypatch, tmp_path):
    fabricate.write_mnist(tmp_path, gz=False, extracted=True)
    monkeypatch.setenv("HDD_DATA_ROOT", str(tmp_path))
    assert len(load("mnist", split="test")) == 20


def test_default_download_never_touches_the_network(tmp_path, monkeypatch):
    from torchvision.datasets import cifar, mnist, svhn

    from hdd_lib.data import tinyimagenet

    def no_network(*args, **kwargs):
        raise AssertionError("download attempted")

    for module in (cifar, mnist, tinyimagenet):
        monkeypatch.setattr(module, "download_and_extract_archive", no_network)
    monkeypatch.setattr(svhn, "download_url", no_network)
    for name in ("mnist", "fashionmnist", "svhn", "cifar10", "cifar100", "tinyimagenet", "cifar10_jpeg"):
        with pytest.raises(DatasetNotFoundError, match=f"'{name}'"):
            load(name, tmp_path)


def test_device_argument():
    data = load("digits", device=torch.device("cpu"))
    assert data.images.device.type == "cpu" and data.labels.device.type == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_load_to_gpu_normalises_there():
    cpu, gpu = load("digits"), load("digits", device="cuda")
    assert gpu.images.is_cuda and gpu.labels.is_cuda
    torch.testing.assert_close(gpu.images.cpu(), cpu.images)
    batch = gpu.sample(5, generator=torch.Generator().manual_seed(0))
    assert batch.is_cuda and batch.shape == (10, 5, 1, 8, 8)


# --- scikit-learn digits: offline, fixed stratified split, constants in the spec table ---------------


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
