"""Atomic writers and clear errors for damaged files."""

from __future__ import annotations

import pytest
import torch

from hdd_lib import storage


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "x.json"
    storage.save_json(target, {"a": 1})

    def broken(f):
        f.write(b"{\"half\":")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        storage.atomic_write(target, broken)
    assert storage.load_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary file left behind


def test_json_round_trip_with_tensors(tmp_path):
    storage.save_json(tmp_path / "m.json", {"acc": torch.tensor([1.5, 2.0]), "dtype": torch.float64})
    assert storage.load_json(tmp_path / "m.json") == {"acc": [1.5, 2.0], "dtype": "torch.float64"}


def test_corrupt_files_raise_clear_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(storage.CorruptFileError, match="bad.json is not valid JSON"):
        storage.load_json(tmp_path / "bad.json")
    storage.save_torch(tmp_path / "ok.pt", {"x": torch.ones(1000)})
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(storage.CorruptFileError, match="trunc.pt cannot be read"):
        storage.load_torch(tmp_path / "trunc.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        storage.load_torch(tmp_path / "missing.pt")


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    storage.save_json(tmp_path / "p.json", {})
    assert stat.S_IMODE(os.stat(tmp_path / "p.json").st_mode) == storage.NEW_FILE_MODE
    os.chmod(tmp_path / "p.json", 0o640)
    storage.save_json(tmp_path / "p.json", {"again": 1})
    assert stat.S_IMODE(os.stat(tmp_path / "p.json").st_mode) == 0o640
