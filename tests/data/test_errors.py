"""The dataset errors: what their messages name, their types, and that they survive pickling."""

from __future__ import annotations

import pickle

from hdd_lib.data import DatasetCorruptError, DatasetNotFoundError


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
    assert isinstance(err, RuntimeError)


def test_errors_pickle_with_their_message():  # e.g. raised inside a DataLoader worker
    for err in (DatasetNotFoundError("mnist", "/r", ["a", "b"]), DatasetCorruptError("mnist", "/r/a", "bad")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)
