"""MNIST family, SVHN and CIFAR through torchvision, on small files in the real on-disk formats."""

from __future__ import annotations

import gzip
import pickle
from urllib.error import URLError

import numpy as np
import pytest
import torch
from torchvision import datasets as tvd

from hdd_lib.data import DatasetCorruptError, DatasetNotFoundError, get_spec, load

from . import fabricate


def expected_normalised(x_uint8: np.ndarray, name: str) -> torch.Tensor:
    spec = get_spec(name)
    mean = torch.tensor(spec.mean).view(-1, 1, 1)
    std = torch.tensor(spec.std).view(-1, 1, 1)
    return (torch.from_numpy(x_uint8).float() / 255 - mean) / std


# --- SVHN -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_svhn_loads_pixels_and_maps_label_10_to_0(svhn_root, split):
    root, written = svhn_root
    x, digits = written[split]
    data = load("svhn", root, split=split)
    assert data.images.shape == (len(x), 3, 32, 32) and data.images.dtype == torch.float32
    assert data.labels.dtype == torch.int64
    assert torch.equal(data.labels, torch.from_numpy(digits))
    assert (data.labels == 0).any() and data.labels.max() == 9
    torch.testing.assert_close(data.images, expected_normalised(x, "svhn"))


def test_svhn_known_pixel(svhn_root):
    root, written = svhn_root
    x, _ = written["train"]
    v = int(x[3, 1, 5, 7])  # image 3, channel G, row 5, column 7
    data = load("svhn", root)
    assert data.images[3, 1, 5, 7].item() == pytest.approx((v / 255 - 0.4438) / 0.2010, abs=1e-5)


def test_svhn_missing_names_dataset_root_and_file(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load("svhn", tmp_path / "nowhere", split="test")
    msg = str(info.value)
    assert "'svhn'" in msg and str(tmp_path / "nowhere") in msg and "test_32x32.mat" in msg
    assert "download=True" in msg and "HDD_DATA_ROOT" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_svhn_checksum_mismatch_is_corrupt(svhn_root):
    root, _ = svhn_root
    (root / "train_32x32.mat").write_bytes((root / "train_32x32.mat").read_bytes()[:-100])
    with pytest.raises(DatasetCorruptError, match="train_32x32.mat.*MD5"):
        load("svhn", root)


def test_svhn_truncated_with_matching_checksum_is_corrupt(svhn_root, monkeypatch):
    root, _ = svhn_root
    path = root / "train_32x32.mat"
    path.write_bytes(path.read_bytes()[:500])
    table = {**tvd.SVHN.split_list, "train": [tvd.SVHN.split_list["train"][0], path.name, fabricate.md5(path)]}
    monkeypatch.setattr(tvd.SVHN, "split_list", table)
    with pytest.raises(DatasetCorruptError, match="'svhn'.*train_32x32.mat"):
        load("svhn", root)


def test_failed_download_is_a_clear_not_found(tmp_path, monkeypatch):
    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(tvd.SVHN, "download", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed.*no network.*Check the network"):
        load("svhn", tmp_path, download=True)


# --- CIFAR ------------------------------------------------------------------------------------------


def test_fabricated_cifar_pickles_have_the_official_bytes_keys(cifar10_root):
    root, _ = cifar10_root
    with open(root / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        entry = pickle.load(f, encoding="bytes")
    assert {b"data", b"labels", b"batch_label", b"filenames"} <= set(entry)
    assert entry[b"data"].dtype == np.uint8 and entry[b"data"].shape == (10, 3072)


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_loads(cifar10_root, split):
    root, written = cifar10_root
    x, y = written[split]
    data = load("cifar10", root, split=split)
    assert data.images.shape == (len(x), 3, 32, 32)
    assert torch.equal(data.labels, torch.from_numpy(y))
    torch.testing.assert_close(data.images, expected_normalised(x, "cifar10"))
    assert data.spec.class_names == tuple(fabricate.CIFAR10_NAMES)


def test_cifar10_known_pixel(cifar10_root):
    root, written = cifar10_root
    x, _ = written["train"]
    v = int(x[12, 0, 31, 0])
    assert load("cifar10", root).images[12, 0, 31, 0].item() == pytest.approx((v / 255 - 0.4914) / 0.2023, abs=1e-5)


def test_cifar100_fine_labels_and_names_from_meta(cifar100_root):
    root, written = cifar100_root
    x, y = written["train"]
    data = load("cifar100", root)
    assert data.images.shape == (200, 3, 32, 32)
    assert torch.equal(data.labels, torch.from_numpy(y))
    assert data.spec.num_classes == 100 and data.spec.class_names[:2] == ("fine00", "fine01")
    assert torch.equal(data.counts, torch.full((100,), 2))
    torch.testing.assert_close(data.images, expected_normalised(x, "cifar100"))
    assert load("cifar100", root, split="test").images.shape == (100, 3, 32, 32)


def test_cifar100_sampler_draws_distinct_images_of_each_class(cifar100_root):
    root, _ = cifar100_root
    data = load("cifar100", root)
    batch = data.sample(2, generator=torch.Generator().manual_seed(0))
    assert batch.shape == (100, 2, 3, 32, 32)
    for c in (0, 41, 99):
        assert {img.sum().item() for img in batch[c]} == {img.sum().item() for img in data.of_class(c)}


def test_cifar10_missing(tmp_path, cifar10_root):
    with pytest.raises(DatasetNotFoundError, match=r"'cifar10'.*cifar-10-batches-py/data_batch_1"):
        load("cifar10", tmp_path / "elsewhere")
    root, _ = cifar10_root
    (root / "cifar-10-batches-py" / "batches.meta").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"\(missing cifar-10-batches-py/batches.meta\)"):
        load("cifar10", root)


def test_cifar10_corrupt_batch_names_the_file(cifar10_root):
    root, _ = cifar10_root
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DatasetCorruptError, match="data_batch_3.*MD5"):
        load("cifar10", root, split="test")


def test_cifar10_truncated_pickle_is_corrupt_not_unpickling_error(cifar10_root, monkeypatch):
    root, _ = cifar10_root
    path = root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:1000])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", fabricate.md5(path)]])
    with pytest.raises(DatasetCorruptError, match="'cifar10'"):
        load("cifar10", root, split="test")


# --- MNIST family -----------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_mnist_from_gz_only(mnist_root, split):
    root, written = mnist_root
    x, y = written[split]
    data = load("mnist", root, split=split)
    assert data.images.shape == (len(x), 1, 28, 28) and data.images.dtype == torch.float32
    assert torch.equal(data.labels, torch.from_numpy(y))
    torch.testing.assert_close(data.images, expected_normalised(x[:, None], "mnist"))
    v = int(x[0, 14, 9])
    assert data.images[0, 0, 14, 9].item() == pytest.approx((v / 255 - 0.1307) / 0.3081, abs=1e-5)


def test_mnist_from_torchvision_extracted_layout(tmp_path):
    written = fabricate.write_mnist(tmp_path, gz=False, extracted=True)
    data = load("mnist", tmp_path, split="test")
    assert torch.equal(data.labels, torch.from_numpy(written["test"][1]))
    torch.testing.assert_close(data.images, expected_normalised(written["test"][0][:, None], "mnist"))


def test_fashionmnist_uses_its_own_folder_and_table(tmp_path, monkeypatch):
    written = fabricate.write_mnist(tmp_path, "FashionMNIST", seed=1)
    monkeypatch.setattr(tvd.FashionMNIST, "resources", fabricate.mnist_resources(tmp_path, "FashionMNIST"))
    data = load("fashionmnist", tmp_path)
    assert torch.equal(data.labels, torch.from_numpy(written["train"][1]))
    assert data.spec.class_names[0] == "T-shirt/top"
    with pytest.raises(DatasetNotFoundError, match="MNIST/raw/train-images-idx3-ubyte.gz"):
        load("mnist", tmp_path)  # FashionMNIST files are not MNIST's


def test_mnist_missing_names_the_expected_files(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load("mnist", tmp_path)
    msg = str(info.value)
    assert "'mnist'" in msg and str(tmp_path) in msg
    assert "MNIST/raw/train-images-idx3-ubyte.gz" in msg and "MNIST/raw/train-labels-idx1-ubyte.gz" in msg


def test_mnist_gz_checksum_mismatch(mnist_root):
    root, _ = mnist_root
    path = root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + b"\x00" * 8))
    with pytest.raises(DatasetCorruptError, match="train-labels-idx1-ubyte.gz.*MD5"):
        load("mnist", root)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda raw: raw[: len(raw) // 2], "decompress"),  # truncated gzip stream
        (lambda raw: gzip.compress(gzip.decompress(raw)[:-7]), "header promises"),  # truncated payload
        (lambda raw: gzip.compress(b"\x00\x00\x0d\x03" + gzip.decompress(raw)[4:]), "not an IDX"),  # float32 magic
    ],
    ids=["truncated-gzip", "truncated-idx", "bad-magic"],
)
def test_mnist_damaged_gz_with_matching_checksum(mnist_root, monkeypatch, damage, reason):
    root, _ = mnist_root
    path = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    monkeypatch.setattr(tvd.MNIST, "resources", fabricate.mnist_resources(root))
    with pytest.raises(DatasetCorruptError, match=reason):
        load("mnist", root)


def test_mnist_truncated_extracted_file(tmp_path):
    fabricate.write_mnist(tmp_path, gz=False, extracted=True)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetCorruptError, match="'mnist'.*extracted"):
        load("mnist", tmp_path)
