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


def test_stale_temporary_files_are_removed_by_the_next_write(tmp_path):
    import os
    import time

    storage.save_json(tmp_path / "r.json", {"a": 1})
    stale = tmp_path / ".r.json.abc123.tmp"  # left by a writer killed mid-write
    stale.write_bytes(b"half")
    old = time.time() - 2 * storage.STALE_TMP_SECONDS
    os.utime(stale, (old, old))
    fresh = tmp_path / ".r.json.def456.tmp"  # a live writer's: recent, kept
    fresh.write_bytes(b"in progress")
    other = tmp_path / ".q.json.xyz.tmp"  # another target's: kept
    other.write_bytes(b"x")
    os.utime(other, (old, old))
    storage.save_json(tmp_path / "r.json", {"a": 2})
    assert not stale.exists() and fresh.exists() and other.exists()
    assert storage.load_json(tmp_path / "r.json") == {"a": 2}


def test_writable_dir_checks_before_any_work(tmp_path):
    assert storage.writable_dir(tmp_path / "new" / "dir").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"output folder .*f is a file, not a folder"):
        storage.writable_dir(tmp_path / "f")
    with pytest.raises(ValueError, match=r"cannot be written"):
        storage.writable_dir(tmp_path / "f" / "below")


def test_run_lock_excludes_a_second_holder_and_recovers_from_a_dead_one(tmp_path):
    import os
    import subprocess
    import sys

    with storage.RunLock(tmp_path):
        with pytest.raises(storage.RunLockedError, match=rf"in use by pid {os.getpid()} on "):
            with storage.RunLock(tmp_path):
                pass
    # a process that took the lock and was killed: its lock file stays, the OS lock does not
    code = (f"import os, sys; sys.path.insert(0, {str(storage.Path(storage.__file__).parents[1])!r}); "
            f"from hdd_lib.storage import RunLock; RunLock({str(tmp_path)!r}).__enter__(); os._exit(9)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    assert (tmp_path / ".lock").read_text().startswith("pid ")
    with storage.RunLock(tmp_path):  # recovered
        assert (tmp_path / ".lock").read_text() == f"pid {os.getpid()} on {__import__('socket').gethostname()}"
