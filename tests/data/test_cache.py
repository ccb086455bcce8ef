"""The decode cache: keyed by path, size and mtime; atomic; robust to damage and read-only folders."""

from __future__ import annotations

import os

import pytest
import torch

from hdd_lib.data.cache import cached, default_cache_dir, fingerprint


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HDD_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("HDD_CACHE_DIR")
    assert default_cache_dir().parts[-2:] == (".cache", "hdd_lib")


def test_fingerprint_tracks_size_mtime_and_folder_contents(tmp_path):
    f = tmp_path / "a.tar.gz"
    f.write_bytes(b"abc")
    first = fingerprint(f)
    os.utime(f, ns=(10, 10))
    assert fingerprint(f) != first
    d = tmp_path / "tree"
    (d / "x").mkdir(parents=True)
    (d / "x" / "1.png").write_bytes(b"1")
    before = fingerprint(d)
    (d / "x" / "2.png").write_bytes(b"2")
    assert fingerprint(d) != before


def test_built_once_then_read_back(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"data")
    calls = []

    def build():
        calls.append(1)
        return {"images": torch.arange(6, dtype=torch.uint8), "classes": ["a", "b"]}

    a = cached("thing", src, build, cache_dir=tmp_path / "cache")
    b = cached("thing", src, build, cache_dir=tmp_path / "cache")
    assert len(calls) == 1 and torch.equal(a["images"], b["images"]) and b["classes"] == ["a", "b"]
    assert [p.name.startswith("thing-") for p in (tmp_path / "cache").iterdir()] == [True]  # no temp file left


def test_damaged_entry_is_rebuilt_with_a_warning(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"data")
    cached("thing", src, lambda: {"v": torch.ones(1)}, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("thing-*.pt")
    entry.write_bytes(b"torn write")
    with pytest.warns(UserWarning, match="unreadable cache entry"):
        value = cached("thing", src, lambda: {"v": torch.zeros(1)}, cache_dir=tmp_path)
    assert value["v"].item() == 0
    assert cached("thing", src, lambda: {"v": torch.ones(1)}, cache_dir=tmp_path)["v"].item() == 0  # rewritten


def test_failed_build_leaves_nothing_behind(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(b"data")

    def broken():
        raise RuntimeError("decode failed")

    with pytest.raises(RuntimeError, match="decode failed"):
        cached("thing", src, broken, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
