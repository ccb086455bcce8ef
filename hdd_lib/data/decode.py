"""Image files (bytes) to uint8 ``[C, H, W]`` tensors, and stacks of them to ``[N, C, H, W]``.

PIL decodes (every format it reads; torchvision's own decoders are deprecated since 0.29). Grey
images keep one channel and everything else becomes RGB (alpha dropped, CMYK and palettes converted).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = ["IMAGE_EXTENSIONS", "is_image_file", "natural_key", "decode_bytes", "stack_images", "ImageDecodeError"]

#: File name endings taken as images (torchvision's ``IMG_EXTENSIONS``), compared lower case.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

_PIL_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F", "La"}


class ImageDecodeError(ValueError):
    """PIL could not decode an image file (callers turn it into a DatasetCorruptError naming the dataset)."""


def is_image_file(name: str) -> bool:
    """True for a visible file whose name ends with one of :data:`IMAGE_EXTENSIONS`."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def natural_key(name: str) -> tuple:
    """Sort key that orders ``img2`` before ``img10`` (digit runs compare as numbers)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def decode_bytes(data: bytes, name: str) -> torch.Tensor:
    """Decode one image file's bytes to uint8 ``[C, H, W]``, ``C`` being 1 (grey) or 3 (colour).

    Raises
    ------
    ImageDecodeError
        Naming ``name``, if the bytes are not a readable image (truncated, not an image, ...).
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode = "L" if img.mode in _PIL_GREY_MODES else "RGB"
            arr = np.array(img if img.mode == mode else img.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageDecodeError(f"cannot decode image {name!r}: {err}") from err
    return torch.from_numpy(arr).reshape(arr.shape[0], arr.shape[1], -1).permute(2, 0, 1).contiguous()


def stack_images(images: Sequence[torch.Tensor], names: Sequence[str], *, channels: int | None = None) -> torch.Tensor:
    """Stack ``[C, H, W]`` uint8 images into ``[N, C, H, W]``.

    Parameters
    ----------
    images, names : sequence
        The decoded images and the file each came from (for error messages).
    channels : int, optional
        1 or 3. ``None``: 3 if any image is in colour, else 1. Grey images are repeated to 3
        channels where needed; colour images cannot become grey.

    Raises
    ------
    ValueError
        If the images do not all share one size (naming two files that differ), or a colour
        image meets ``channels=1``.
    """
    if not images:
        return torch.empty(0, channels or 3, 0, 0, dtype=torch.uint8)
    first = tuple(images[0].shape[1:])
    for img, name in zip(images, names):
        if tuple(img.shape[1:]) != first:
            raise ValueError(
                f"all images must share one size: {names[0]!r} is {first[0]}x{first[1]} but {name!r} is "
                f"{img.shape[1]}x{img.shape[2]}; resize them to one size first"
            )
    if channels is None:
        channels = 3 if any(img.shape[0] == 3 for img in images) else 1
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    out = torch.empty(len(images), channels, *first, dtype=torch.uint8)
    for i, (img, name) in enumerate(zip(images, names)):
        if img.shape[0] == 3 and channels == 1:
            raise ValueError(f"image {name!r} is in colour but the dataset is grey (1 channel)")
        out[i] = img  # broadcasts a grey [1, H, W] image over 3 channels
    return out
