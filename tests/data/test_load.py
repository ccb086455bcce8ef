"""load(): name and split validation, the default root, devices."""

from __future__ import annotations

import pytest
import torch

from hdd_lib.data import DatasetNotFoundError, default_root, load

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
