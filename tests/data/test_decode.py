"""Image bytes to tensors: modes, sizes, natural order, and clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from hdd_lib.data.decode import ImageDecodeError, decode_bytes, is_image_file, natural_key, stack_images


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
