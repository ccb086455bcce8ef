"""Image bytes to tensors (modes, 16-bit, sizes, natural order, clear errors) and the decode cache."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from hdd_lib.data.images import (
    ImageDecodeError,
    cached,
    decode_bytes,
    default_cache_dir,
    fingerprint,
    is_image_file,
    natural_key,
    stack_images,
)


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def test_rgb_png_is_exact_chw():
    arr = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    out = decode_bytes(png(arr), "x.png")
    assert out.dtype == torch.uint8 and out.shape == (3, 4, 5)
    assert torch.equal(out, torch.from_numpy(arr).permute(2, 0, 1))


@pytest.mark.parametrize(
    "mode, channels",
    [("L", 1), ("LA", 1), ("RGBA", 3), ("P", 3), ("CMYK", 3)],
)
def test_modes_become_grey_or_rgb(mode, channels):
    img = Image.new(mode, (3, 2))
    buf = io.BytesIO()
    img.save(buf, format="JPEG" if mode == "CMYK" else "PNG")
    assert decode_bytes(buf.getvalue(), "x").shape == (channels, 2, 3)


def test_garbage_and_truncated_bytes_name_the_file():
    with pytest.raises(ImageDecodeError, match="'a/b.jpg'"):
        decode_bytes(b"definitely not an image", "a/b.jpg")
    good = png(np.zeros((16, 16, 3), dtype=np.uint8))
    with pytest.raises(ImageDecodeError, match="c.png"):
        decode_bytes(good[: len(good) // 2], "c.png")


def test_stack_broadcasts_grey_and_checks_sizes():
    grey, rgb = torch.full((1, 2, 2), 7, dtype=torch.uint8), torch.zeros(3, 2, 2, dtype=torch.uint8)
    out = stack_images([grey, rgb], ["g", "c"])
    assert out.shape == (2, 3, 2, 2) and (out[0] == 7).all()
    assert stack_images([grey, grey], ["g", "h"]).shape == (2, 1, 2, 2)
    with pytest.raises(ValueError, match="'c' is in colour"):
        stack_images([grey, rgb], ["g", "c"], channels=1)
    with pytest.raises(ValueError, match=r"share one size: 'g' is 2x2 but 'w' is 2x3"):
        stack_images([grey, torch.zeros(1, 2, 3, dtype=torch.uint8)], ["g", "w"])


def test_image_names_and_natural_order():
    assert is_image_file("train/cat/001.JPEG") and is_image_file("a.png")
    assert not is_image_file("train/cat/.001.jpg") and not is_image_file("README.txt")
    names = ["img10.png", "img2.png", "img1.png"]
    assert sorted(names, key=natural_key) == ["img1.png", "img2.png", "img10.png"]


# --- 16-bit and float images ------------------------------------------------------------------------

GREY16 = np.array([[0, 1, 255, 256], [1000, 32768, 65534, 65535]], dtype=np.uint16)


def encoded(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, dtype", [("PNG", "<u2"), ("TIFF", "<u2"), ("TIFF", ">u2")], ids=["png", "tiff", "tiff-be"])
def test_16_bit_grey_keeps_its_values(fmt, dtype):
    data = encoded(GREY16.astype(dtype), fmt)
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode.startswith("I;16")
    out = decode_bytes(data, "x")
    assert out.dtype == torch.uint16 and out.shape == (1, 2, 4)
    assert out[0].to(torch.int32).tolist() == GREY16.astype(np.int32).tolist()  # not clipped to 255


def test_16_bit_pgm_is_scaled_to_its_maxval_by_pil():
    data = b"P5\n2 1\n1000\n" + np.array([[250, 1000]], dtype=">u2").tobytes()  # PIL mode I, 0..65535
    assert decode_bytes(data, "x.pgm")[0].to(torch.int32).tolist() == [[16384, 65535]]


@pytest.mark.parametrize(
    "array, why",
    [(np.array([[0.5, 2.0]], dtype=np.float32), "floating-point pixels"), (np.array([[1, 70000]], dtype=np.int32), "32-bit")],
    ids=["float", "int32"],
)
def test_images_without_a_fixed_range_are_refused(array, why):
    with pytest.raises(ImageDecodeError, match=f"'a/f.tif'.*{why}.*8- or 16-bit"):
        decode_bytes(encoded(array, "TIFF"), "a/f.tif")


def test_stack_widens_8_bit_images_when_one_is_16_bit():
    wide = torch.tensor([[[65535, 1000]]], dtype=torch.uint16)
    narrow = torch.tensor([[[255, 2]]], dtype=torch.uint8)
    out = stack_images([wide, narrow], ["w", "n"])
    assert out.dtype == torch.uint16 and out.to(torch.int32)[:, 0, 0].tolist() == [[65535, 1000], [65535, 514]]
    assert stack_images([narrow], ["n"]).dtype == torch.uint8
    assert stack_images([narrow], ["n"], dtype=torch.uint16).to(torch.int32).flatten().tolist() == [65535, 514]


# --- the decode cache -------------------------------------------------------------------------------


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
