"""SyntheticSet: expansion, subsets, and its file format."""

from __future__ import annotations

import sys

import pytest
import torch

from hdd_lib.storage import CorruptFileError, save_torch
from hdd_lib.synset import SyntheticSet


def test_expanded_plain_and_idm():
    x = torch.randn(3, 2, 1, 8, 8)
    images, labels = SyntheticSet(x).expanded()
    assert torch.equal(images, x.flatten(0, 1)) and labels.tolist() == [0, 0, 1, 1, 2, 2]
    images, labels = SyntheticSet(x, factor=2).expanded()
    assert images.shape == (24, 1, 8, 8) and labels.tolist() == [0] * 8 + [1] * 8 + [2] * 8


def test_subset_selects_expanded_images():
    x = torch.arange(3 * 4, dtype=torch.float32).view(3, 4, 1, 1, 1).expand(3, 4, 1, 2, 2).clone()
    sub = SyntheticSet(x).subset(torch.tensor([[3, 0], [1, 2], [0, 0]]))
    assert sub.images[:, :, 0, 0, 0].tolist() == [[3, 0], [5, 6], [8, 8]]


def test_save_load_round_trip(tmp_path):
    syn = SyntheticSet(torch.randn(2, 3, 3, 4, 4), factor=2, meta={"config": {"ipc": 3}, "note": "x"})
    syn.save(tmp_path / "s.pt")
    back = SyntheticSet.load(tmp_path / "s.pt")
    assert torch.equal(back.images, syn.images) and back.factor == 2 and back.meta == syn.meta


def test_equal_sets_save_to_equal_bytes_whatever_their_strings_came_from(tmp_path):
    """A resumed run's history comes back from its checkpoint as new string objects: pickle memoises by
    identity, so the file differed from an uninterrupted run's though its content was equal."""
    loaded = "".join(["lo", "ss"])  # equal to the literal "loss", but another object
    assert loaded == "loss" and loaded is not sys.intern("loss")
    images = torch.zeros(2, 1, 1, 4, 4)
    fresh = SyntheticSet(images, meta={"config": {"loss": "dm"}, "history": [{"iteration": 0, "loss": 1.0}]})
    resumed = SyntheticSet(images, meta={"config": {"loss": "dm"}, "history": [{"iteration": 0, loaded: 1.0}]})
    fresh.save(tmp_path / "fresh.pt")
    resumed.save(tmp_path / "resumed.pt")
    assert (tmp_path / "fresh.pt").read_bytes() == (tmp_path / "resumed.pt").read_bytes()
    assert SyntheticSet.load(tmp_path / "resumed.pt").meta == resumed.meta


def test_wrong_files_raise(tmp_path):
    save_torch(tmp_path / "other.pt", {"weights": torch.ones(2)})
    with pytest.raises(CorruptFileError, match="not a synthetic set"):
        SyntheticSet.load(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CorruptFileError, match="junk.pt"):
        SyntheticSet.load(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match=r"\[C, ipc, ch, H, W\].*\(3, 1, 8, 8\)"):
        SyntheticSet(torch.zeros(3, 1, 8, 8))
