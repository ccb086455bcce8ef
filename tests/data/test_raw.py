"""What sources return and raise: the errors (messages, types, pickling), RawSplit, channel statistics."""

from __future__ import annotations

import pickle

import pytest
import torch

from hdd_lib.data import DatasetCorruptError, DatasetNotFoundError
from hdd_lib.data.specs import RawSplit, channel_stats


def test_not_found_names_dataset_root_files_and_remedy():
    err = DatasetNotFoundError("svhn", "/data", ["train_32x32.mat"], reason="missing train_32x32.mat")
    msg = str(err)
    assert msg.startswith("dataset 'svhn' not found under root '/data': expected train_32x32.mat (missing")
    assert "download=True" in msg and "$HDD_DATA_ROOT" in msg
    assert isinstance(err, FileNotFoundError) and err.expected == ("train_32x32.mat",)
    assert "use this instead" in str(DatasetNotFoundError("x", "/r", ["f"], remedy="use this instead"))


def test_corrupt_names_file_and_reason():
    err = DatasetCorruptError("cifar10", "/data/cifar-10-batches-py/test_batch", "truncated")
    assert "'cifar10'" in str(err) and "test_batch" in str(err) and "(truncated)" in str(err)
    assert isinstance(err, ValueError) and "download=True" in str(err)  # the CLI prints ValueErrors in one line
    assert str(DatasetCorruptError("x", "/p", "bad", "Copy it again.")).endswith("(bad). Copy it again.")


def test_errors_pickle_with_their_message():  # e.g. raised inside a DataLoader worker
    for err in (DatasetNotFoundError("mnist", "/r", ["a", "b"]), DatasetCorruptError("mnist", "/r/a", "bad")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)


def test_raw_split_max_value_follows_the_dtype():
    labels = torch.zeros(2, dtype=torch.int64)
    assert RawSplit(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), labels).max_value == 255
    assert RawSplit(torch.zeros(2, 1, 2, 2, dtype=torch.uint16), labels).max_value == 65535
    assert RawSplit(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), labels, max_value=16).max_value == 16
    with pytest.raises(ValueError, match="uint8 or uint16"):
        RawSplit(torch.zeros(2, 1, 2, 2), labels)
    with pytest.raises(ValueError, match="labels must be int64"):
        RawSplit(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), labels[:1])


@pytest.mark.parametrize("dtype, m", [(torch.uint8, 255), (torch.uint16, 65535)])
def test_channel_stats_are_the_exact_moments(dtype, m):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, m + 1, (7, 2, 3, 5), generator=g, dtype=torch.int64).to(dtype)
    mean, std = channel_stats(images, max_value=m)
    x = images.to(torch.float64) / m
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), x.mean(dim=(0, 2, 3)), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64), x.std(dim=(0, 2, 3), unbiased=False), rtol=0, atol=1e-12)
