"""ImageFolder trees (folder and .tar.gz), the CIFAR-10 JPEG copy's wiring, and the decode cache."""

from __future__ import annotations

import os
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from hdd_lib.data import DatasetCorruptError, DatasetNotFoundError, load
from hdd_lib.data import imagefolder as imagefolder_module
from hdd_lib.data.imagefolder import CIFAR10_JPEG_FILE, read_image_folder

from . import fabricate

CLASSES = ["zebra", "ant", "moth"]  # sorted: ant, moth, zebra


def stacked(written, split):
    """The written images in loading order (class, then file) as ``[N, C, H, W]`` uint8, with labels."""
    classes = sorted(CLASSES)
    items = sorted(written[split], key=lambda r: (r[0], int(r[1].split(".")[0])))
    x = np.stack([r[2] for r in items]).transpose(0, 3, 1, 2)
    return torch.from_numpy(x), torch.tensor([classes.index(r[0]) for r in items])


@pytest.fixture
def tree(tmp_path):
    written = fabricate.write_tree(tmp_path / "tree", CLASSES, per_class=(12, 2))
    return tmp_path / "tree", written


@pytest.mark.parametrize("as_tar", [False, True], ids=["folder", "tar.gz"])
def test_generic_folder_loads_with_spec_from_files(tree, tmp_path, as_tar):
    path, written = tree
    if as_tar:
        path = fabricate.tar_folder(path, tmp_path / "tree.tar.gz", arcname="mydata")  # under one top folder
    data = load("imagefolder", path)
    x, y = stacked(written, "train")
    spec = data.spec
    assert spec.channels == 3 and spec.image_size == (6, 5) and spec.num_classes == 3
    assert spec.class_names == ("ant", "moth", "zebra")
    x01 = x.double() / 255
    np.testing.assert_allclose(spec.mean, x01.mean(dim=(0, 2, 3)), atol=1e-9)
    np.testing.assert_allclose(spec.std, x01.std(dim=(0, 2, 3), unbiased=False), atol=1e-9)
    assert torch.equal(data.labels, y)
    v = x[13, 2, 4, 1].item()
    assert data.images[13, 2, 4, 1].item() == pytest.approx((v / 255 - spec.mean[2]) / spec.std[2], abs=1e-5)
    assert data.images.mean(dim=(0, 2, 3)).abs().max() < 1e-5  # normalised with its own statistics
    test = load("imagefolder", path, split="test")
    assert test.spec == spec and torch.equal(test.labels, stacked(written, "test")[1])


def test_files_sort_naturally_within_a_class(tree):
    path, written = tree
    data = load("imagefolder", path)
    x, _ = stacked(written, "train")  # 0.png, 1.png, ..., 10.png, 11.png
    torch.testing.assert_close(data.of_class(0), data.images[:12])
    raw = read_image_folder(path)["train"]
    assert torch.equal(raw.images, x)


def test_grey_tree_has_one_channel(tmp_path):
    fabricate.write_tree(tmp_path, ["a", "b"], channels=1)
    data = load("imagefolder", tmp_path)
    assert data.spec.channels == 1 and data.images.shape[1] == 1


@pytest.mark.parametrize("fmt, as_tar", [("PNG", False), ("TIFF", False), ("PNG", True)], ids=["png", "tiff", "png-tar.gz"])
def test_16_bit_trees_are_scaled_by_65535_not_clipped(tmp_path, fmt, as_tar):
    written = fabricate.write_tree(tmp_path / "t16", CLASSES, per_class=(4, 2), fmt=fmt, bits=16)
    path = fabricate.tar_folder(tmp_path / "t16", tmp_path / "t16.tar.gz") if as_tar else tmp_path / "t16"
    raw = read_image_folder(path, cache_dir=tmp_path / "cache")["train"]
    x, y = stacked(written, "train")  # uint16 [N, 1, 6, 5]
    assert raw.images.dtype == torch.uint16 and raw.max_value == 65535
    assert torch.equal(raw.images.to(torch.int32), x.to(torch.int32)) and torch.equal(raw.labels, y)
    data = load("imagefolder", path, cache_dir=tmp_path / "cache")
    x01 = x.double() / 65535
    assert x01.mean() == pytest.approx(0.5, abs=0.05)  # a uniform 16-bit image is mid-grey, not white
    np.testing.assert_allclose(data.spec.mean, x01.mean(dim=(0, 2, 3)), atol=1e-9)
    np.testing.assert_allclose(data.spec.std, x01.std(dim=(0, 2, 3), unbiased=False), atol=1e-9)
    v = int(x[5, 0, 3, 2])
    expected = (v / 65535 - data.spec.mean[0]) / data.spec.std[0]
    assert data.images[5, 0, 3, 2].item() == pytest.approx(expected, abs=1e-5)


def test_a_tree_mixing_8_and_16_bit_images_keeps_both_scales(tmp_path):
    written = fabricate.write_tree(tmp_path, ["a", "b"], per_class=(2, 1), channels=1)
    (tmp_path / "train" / "b" / "0.png").write_bytes(fabricate.encode(np.full((6, 5, 1), 65535, dtype=np.uint16)))
    raw = read_image_folder(tmp_path)["test"]
    assert raw.images.dtype == torch.uint16  # every split on one scale
    eight_bit = written["test"][0][2]  # test/a/0.png
    assert torch.equal(raw.images[0, 0].to(torch.int32), torch.from_numpy(eight_bit[..., 0].astype(np.int32) * 257))


def test_a_float_image_is_a_clear_refusal(tmp_path):
    fabricate.write_tree(tmp_path, ["a", "b"])
    Image.fromarray(np.ones((6, 5), dtype=np.float32)).save(tmp_path / "train" / "a" / "9.tif")
    with pytest.raises(DatasetCorruptError, match=r"9\.tif.*floating-point.*8- or 16-bit"):
        load("imagefolder", tmp_path)


def test_one_class_is_refused_naming_the_folder(tmp_path):
    fabricate.write_tree(tmp_path / "one", ["only"])
    with pytest.raises(ValueError, match=r"'imagefolder' at '.*one' has 1 class \['only'\]; .*at least 2") as info:
        load("imagefolder", tmp_path / "one")
    assert "\n" not in str(info.value)


def test_mixed_sizes_are_a_clear_error(tmp_path):
    fabricate.write_tree(tmp_path, ["a", "b"], size=(6, 5))
    fabricate.write_tree(tmp_path, ["c"], size=(7, 5), seed=1)
    with pytest.raises(ValueError, match=r"share one size.*6x5.*7x5"):
        load("imagefolder", tmp_path)


def test_missing_split_and_missing_tree(tmp_path):
    fabricate.write_tree(tmp_path / "t", ["a"], per_class=(2, 0))
    with pytest.raises(DatasetNotFoundError, match=r"test/<class>/<image>"):
        load("imagefolder", tmp_path / "t")
    with pytest.raises(DatasetNotFoundError, match="no such folder or archive"):
        load("imagefolder", tmp_path / "absent.tar.gz")
    with pytest.raises(ValueError, match="needs root"):
        load("imagefolder")


def test_unknown_test_class_and_several_tops(tmp_path):
    fabricate.write_tree(tmp_path / "u", ["a"], per_class=(2, 0))
    fabricate.write_tree(tmp_path / "u", ["b"], per_class=(0, 2))
    with pytest.raises(ValueError, match=r"test classes \['b'\]"):
        load("imagefolder", tmp_path / "u")
    fabricate.write_tree(tmp_path / "two", ["a"], top="x")
    fabricate.write_tree(tmp_path / "two", ["a"], top="y")
    with pytest.raises(ValueError, match="several top folders"):
        load("imagefolder", tmp_path / "two")


def test_corrupt_image_names_the_file_and_a_remedy_that_works(tree):
    path, _ = tree
    (path / "train" / "moth" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(DatasetCorruptError, match=r"moth/3\.png.*Replace or delete the damaged file") as info:
        load("imagefolder", path)
    assert "download=True" not in str(info.value) and isinstance(info.value, ValueError)


def test_truncated_archive_is_corrupt(tree, tmp_path):
    path, _ = tree
    archive = fabricate.tar_folder(path, tmp_path / "t.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetCorruptError, match="t.tar.gz"):
        load("imagefolder", archive)
    archive.write_bytes(b"not a tar archive at all")
    with pytest.raises(DatasetCorruptError, match="not a readable tar archive"):
        load("imagefolder", archive)


def test_decoded_tree_is_cached_and_refreshed_when_the_archive_changes(tree, tmp_path, monkeypatch):
    path, _ = tree
    archive = fabricate.tar_folder(path, tmp_path / "t.tar.gz")
    cache = tmp_path / "cache"
    first = load("imagefolder", archive, cache_dir=cache)
    assert len(list(cache.glob("imagefolder-*.pt"))) == 1 and not list(cache.glob(".*tmp"))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(imagefolder_module, "_decode_tree", no_decoding)
    again = load("imagefolder", archive, split="test", cache_dir=cache)  # the other split: cached too
    assert torch.equal(load("imagefolder", archive, cache_dir=cache).images, first.images)
    assert again.split == "test"
    os.utime(archive, ns=(1, 1))  # a changed archive is decoded afresh
    with pytest.raises(AssertionError, match="decoded again"):
        load("imagefolder", archive, cache_dir=cache)


def test_read_only_cache_still_loads_with_a_warning(tree, tmp_path):
    path, _ = tree
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="could not write the decode cache"):
        data = load("imagefolder", path, cache_dir=blocker / "sub")
    assert len(data) == 36


# --- cifar10_jpeg -----------------------------------------------------------------------------------


def write_cifar10_jpeg(root, per_class=(2, 1)):
    shuffled = fabricate.CIFAR10_NAMES[::-1]  # the folder order on disk must not matter
    written = fabricate.write_tree(root / "stage", shuffled, per_class=per_class, size=(32, 32), fmt="JPEG")
    target = root / CIFAR10_JPEG_FILE
    target.parent.mkdir(parents=True)
    fabricate.tar_folder(root / "stage", target)
    return written


def test_cifar10_jpeg_is_found_under_the_root_with_cifar10_order_and_constants(tmp_path):
    write_cifar10_jpeg(tmp_path)
    data = load("cifar10_jpeg", tmp_path)
    assert data.images.shape == (20, 3, 32, 32)
    assert data.spec.class_names == tuple(fabricate.CIFAR10_NAMES)
    assert data.spec.mean == (0.4914, 0.4822, 0.4465) and data.spec.std == (0.2023, 0.1994, 0.2010)
    assert torch.equal(data.counts, torch.full((10,), 2))
    assert data.labels[data.index.of_class(0)].eq(0).all()
    raw = read_image_folder(tmp_path / CIFAR10_JPEG_FILE)["train"]  # sorted folder order: airplane, automobile, ...
    torch.testing.assert_close(data.of_class(9), load("cifar10_jpeg", tmp_path).images[raw.labels == 9])
    assert len(load("cifar10_jpeg", tmp_path, split="test")) == 10


def test_cifar10_jpeg_missing_says_it_cannot_be_downloaded(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load("cifar10_jpeg", tmp_path, download=True)
    msg = str(info.value)
    assert "CIFAR10-JPEG/cifar10-jpeg.tar.gz" in msg and str(tmp_path) in msg and "cannot be downloaded" in msg


def test_cifar10_jpeg_wrong_classes_is_corrupt(tmp_path):
    fabricate.write_tree(tmp_path / "stage", ["cat", "dog"], size=(32, 32))
    (tmp_path / "CIFAR10-JPEG").mkdir()
    with tarfile.open(tmp_path / CIFAR10_JPEG_FILE, "w:gz") as tf:
        tf.add(tmp_path / "stage", arcname=".")
    with pytest.raises(DatasetCorruptError, match="class folders.*Copy CIFAR10-JPEG/cifar10-jpeg.tar.gz again") as info:
        load("cifar10_jpeg", tmp_path)
    assert "download=True" not in str(info.value)


def test_cifar10_jpeg_damaged_archive_says_to_copy_it_again(tmp_path):
    write_cifar10_jpeg(tmp_path)
    archive = tmp_path / CIFAR10_JPEG_FILE
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DatasetCorruptError, match=r"cifar10-jpeg\.tar\.gz.*SHA256SUMS.*cannot be downloaded") as info:
        load("cifar10_jpeg", tmp_path)
    assert "download=True" not in str(info.value)
