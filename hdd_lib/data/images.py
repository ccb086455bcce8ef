"""Image files to integer ``[C, H, W]`` tensors (PIL), and a disk cache so that a tree is decoded once.

Grey stays one channel, all else becomes RGB (alpha dropped), uint8; 16-bit grey stays uint16 (``x / 65535``); float
and 32-bit images are refused. Cache entries (in ``$HDD_CACHE_DIR``, default ``~/.cache/hdd_lib``) are keyed by the
source's paths, sizes and mtimes; unreadable ones are decoded again, an unwritable cache only warns."""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..storage import save_torch

__all__ = ["IMAGE_EXTENSIONS", "ImageDecodeError", "is_image_file", "natural_key", "decode_bytes", "stack_images",
           "CACHE_VERSION", "default_cache_dir", "fingerprint", "cached"]  # fmt: skip

#: File name endings taken as images (torchvision's ``IMG_EXTENSIONS``), compared lower case.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: Bumped whenever entries or decoding change (2: 16-bit images are no longer clipped).
CACHE_VERSION = 2


class ImageDecodeError(ValueError):
    """PIL could not decode an image file, or it has no fixed value range (callers name the dataset)."""


def is_image_file(name: str) -> bool:
    """True for a visible file whose name ends with one of :data:`IMAGE_EXTENSIONS`."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def natural_key(name: str) -> tuple:
    """Sort key that orders ``img2`` before ``img10`` (digit runs compare as numbers)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _pixels(img: Image.Image, name: str) -> np.ndarray:
    if img.mode.startswith("I;16") or (img.mode == "I" and img.format in ("PNG", "PPM")):  # 16-bit grey
        return np.asarray(img).astype(np.uint16)  # I;16B (big-endian) to native order too
    if img.mode in ("I", "F"):
        kind = "floating-point" if img.mode == "F" else "32-bit or signed integer"
        raise ImageDecodeError(f"cannot decode image {name!r}: {kind} pixels (PIL mode {img.mode}) have no fixed "
                               "range; save it as an 8- or 16-bit image")  # fmt: skip
    mode = "L" if img.mode in ("1", "L", "LA", "La") else "RGB"
    return np.array(img if img.mode == mode else img.convert(mode), dtype=np.uint8)


def decode_bytes(data: bytes, name: str) -> torch.Tensor:
    """One image file's bytes to ``[C, H, W]`` (``C`` 1 or 3); ``ImageDecodeError`` naming ``name`` if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            arr = _pixels(img, name)
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageDecodeError(f"cannot decode image {name!r}: {err}") from err
    return torch.from_numpy(arr).reshape(arr.shape[0], arr.shape[1], -1).permute(2, 0, 1).contiguous()


def stack_images(images: Sequence[torch.Tensor], names: Sequence[str], *, channels: int | None = None,
                 dtype: torch.dtype | None = None) -> torch.Tensor:  # fmt: skip
    """Stack ``[C, H, W]`` images (from files ``names``) into ``[N, channels, H, W]`` of ``dtype``; ``None``: 3 channels
    if any image has them (grey is repeated), uint16 if any image is (uint8 becomes ``x * 257``: the same ``x / 255``).
    ``ValueError`` naming files of two sizes, or colour for 1 channel."""
    dtype = dtype or (torch.uint16 if any(img.dtype == torch.uint16 for img in images) else torch.uint8)
    if not images:
        return torch.empty(0, channels or 3, 0, 0, dtype=dtype)
    first = tuple(images[0].shape[1:])
    for img, name in zip(images, names):
        if tuple(img.shape[1:]) != first:
            raise ValueError(f"all images must share one size: {names[0]!r} is {first[0]}x{first[1]} but {name!r} "
                             f"is {img.shape[1]}x{img.shape[2]}; resize them to one size first")
    if channels is None:
        channels = 3 if any(img.shape[0] == 3 for img in images) else 1
    out = torch.empty(len(images), channels, *first, dtype=dtype)
    for i, (img, name) in enumerate(zip(images, names)):
        if img.shape[0] == 3 and channels == 1:
            raise ValueError(f"image {name!r} is in colour but the dataset is grey (1 channel)")
        out[i] = img.to(torch.int32) * 257 if img.dtype == torch.uint8 and dtype == torch.uint16 else img
    return out


def default_cache_dir() -> Path:
    """``$HDD_CACHE_DIR`` if set, else ``~/.cache/hdd_lib``."""
    env = os.environ.get("HDD_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hdd_lib"


def fingerprint(path: str | os.PathLike) -> str:
    """Hex digest of ``path``'s current content, cheaply: paths, sizes and mtimes, no bytes read."""
    path = Path(path).resolve()
    h = hashlib.sha256(f"v{CACHE_VERSION}|{path}".encode())
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                file = os.path.join(dirpath, name)
                st = os.stat(file)
                h.update(f"|{os.path.relpath(file, path)}|{st.st_size}|{st.st_mtime_ns}".encode())
    else:
        st = path.stat()
        h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def cached(kind: str, source: str | os.PathLike, build: Callable[[], dict[str, Any]], *,
           cache_dir: str | os.PathLike | None = None) -> dict[str, Any]:  # fmt: skip
    """``build()`` (tensors, lists, strings), or its copy in ``<cache_dir>/<kind>-<fingerprint(source)>.pt``."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = folder / f"{kind}-{fingerprint(source)[:32]}.pt"
    if entry.is_file():
        try:
            return torch.load(entry, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged entry is rebuilt, never fatal
            warnings.warn(f"ignoring unreadable cache entry {str(entry)!r} ({err}); decoding again", stacklevel=2)
    value = build()
    try:
        save_torch(entry, value)
    except OSError as err:
        warnings.warn(f"could not write the decode cache in {str(folder)!r} ({err}); set $HDD_CACHE_DIR to a "
                      "writable folder to avoid decoding again next time", stacklevel=2)  # fmt: skip
    return value
