"""Tiny-ImageNet from the standard tiny-imagenet-200/ layout, and its download path."""

from __future__ import annotations

import pytest
import torch

from hdd_lib.data import DatasetCorruptError, DatasetNotFoundError, load
from hdd_lib.data import tinyimagenet as tiny_module

from . import fabricate


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    wnids = fabricate.write_tiny_imagenet(root)
    return root, wnids


def test_train_split_labels_by_sorted_wnid_and_grey_becomes_rgb(tiny_root, tmp_path):
    root, wnids = tiny_root
    data = load("tinyimagenet", root, cache_dir=tmp_path)
    assert data.images.shape == (400, 3, 64, 64) and data.images.dtype == torch.float32
    assert data.spec.class_names == tuple(sorted(wnids)) and data.spec.num_classes == 200
    assert torch.equal(data.counts, torch.full((200,), 2))
    grey = data.images[sorted(wnids).index(wnids[0]) * 2]  # the grey JPEG, first of its class
    raw = grey * torch.tensor(data.spec.std).view(3, 1, 1) + torch.tensor(data.spec.mean).view(3, 1, 1)
    torch.testing.assert_close(raw[0], raw[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(raw[0], raw[2], atol=1e-5, rtol=0)


def test_val_is_the_test_split_labelled_from_annotations(tiny_root, tmp_path):
    root, wnids = tiny_root
    test = load("tinyimagenet", root, split="test", cache_dir=tmp_path)
    assert test.images.shape == (200, 3, 64, 64)
    # val_i.JPEG is annotated with reversed(wnids)[i]; files load in natural order val_0, val_1, ..., val_199
    expected = torch.tensor([sorted(wnids).index(w) for w in reversed(wnids)])
    assert torch.equal(test.labels, expected)


def test_missing_names_the_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load("tinyimagenet", tmp_path)
    msg = str(info.value)
    assert "'tinyimagenet'" in msg and str(tmp_path) in msg
    assert "tiny-imagenet-200/wnids.txt" in msg and "tiny-imagenet-200/val/val_annotations.txt" in msg


def test_download_uses_the_official_archive_and_checksum(tmp_path, monkeypatch):
    calls = []

    def fake_download(url, download_root, md5):
        calls.append((url, md5))
        fabricate.write_tiny_imagenet(download_root, per_class=1, grey_first=False)

    monkeypatch.setattr(tiny_module, "download_and_extract_archive", fake_download)
    data = load("tinyimagenet", tmp_path, download=True)
    assert calls == [("http://cs231n.stanford.edu/tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de")]
    assert len(data) == 200
    load("tinyimagenet", tmp_path, download=True)  # present now: no second download
    assert len(calls) == 1


def test_failed_download_is_not_found(tmp_path, monkeypatch):
    def offline(url, download_root, md5):
        raise OSError("network unreachable")

    monkeypatch.setattr(tiny_module, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError, match="download failed: network unreachable"):
        load("tinyimagenet", tmp_path, download=True)


def test_corrupt_jpeg_and_bad_annotation(tmp_path):
    wnids = fabricate.write_tiny_imagenet(tmp_path, per_class=1, grey_first=False)
    folder = tmp_path / "tiny-imagenet-200"
    bad = folder / "train" / wnids[5] / "images" / f"{wnids[5]}_0.JPEG"
    good = bad.read_bytes()
    bad.write_bytes(good[:200])
    with pytest.raises(DatasetCorruptError, match=f"{wnids[5]}_0.JPEG.*Delete the tiny-imagenet-200 folder") as info:
        load("tinyimagenet", tmp_path)
    assert "load again with download=True" in str(info.value)  # works: the folder is gone, so it is fetched again
    bad.write_bytes(good)
    with open(folder / "val" / "val_annotations.txt", "a") as f:
        f.write("val_x.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(DatasetCorruptError, match="val_annotations.txt.*n99999999"):
        load("tinyimagenet", tmp_path)


def test_duplicate_or_missing_wnids_are_corrupt(tmp_path):
    wnids = fabricate.write_tiny_imagenet(tmp_path, per_class=1, grey_first=False)
    listing = tmp_path / "tiny-imagenet-200" / "wnids.txt"
    listing.write_text("\n".join(wnids[:-1] + [wnids[0]]))
    with pytest.raises(DatasetCorruptError, match="wnid twice"):
        load("tinyimagenet", tmp_path)
    listing.write_text("\n".join(wnids[1:]))
    with pytest.raises(DatasetCorruptError, match="names no known wnid"):
        load("tinyimagenet", tmp_path)
