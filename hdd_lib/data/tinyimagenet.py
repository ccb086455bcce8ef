"""Tiny-ImageNet (200 classes, 64x64) from its standard ``tiny-imagenet-200/`` folder.

torchvision has no class for it, so the layout is read here::

    <root>/tiny-imagenet-200/wnids.txt                      one WordNet id per line
    <root>/tiny-imagenet-200/train/<wnid>/images/*.JPEG      500 per class
    <root>/tiny-imagenet-200/val/images/*.JPEG               10,000, labelled by
    <root>/tiny-imagenet-200/val/val_annotations.txt         "<file>\\t<wnid>\\t<box>"

The labelled ``val`` split serves as ``test`` (the official test split has no labels). Labels
follow the **sorted** wnids, as torchvision's ``ImageFolder`` on ``train/`` would number them;
``class_names`` are the wnids. Grey JPEGs (a few hundred) are repeated to three channels. With
``download=True`` the official archive is fetched and verified with torchvision's
``download_and_extract_archive``. Decoding 110,000 JPEGs takes a while: the result is cached.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .cache import cached
from .decode import ImageDecodeError, decode_bytes, is_image_file, natural_key, stack_images
from .errors import DOWNLOAD_FAILED_REMEDY, DatasetCorruptError, DatasetNotFoundError
from .raw import RawSplit

__all__ = ["TINY_URL", "TINY_MD5", "TINY_FOLDER", "read_tiny_imagenet"]

TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
TINY_FOLDER = "tiny-imagenet-200"
_EXPECTED = tuple(
    f"{TINY_FOLDER}/{p}"
    for p in ("wnids.txt", "train/<wnid>/images/*.JPEG", "val/val_annotations.txt", "val/images/*.JPEG")
)


def download_and_extract_archive(url: str, download_root: str, md5: str) -> None:
    """torchvision's fetch-verify-extract, imported on first use (torchvision is slow to import)."""
    from torchvision.datasets.utils import download_and_extract_archive as fetch

    fetch(url, download_root=download_root, md5=md5)


def read_tiny_imagenet(
    root: Path, split: str, *, download: bool = False, cache_dir: str | os.PathLike | None = None
) -> RawSplit:
    """One split of Tiny-ImageNet under ``root``: uint8 ``[N, 3, 64, 64]``, labels by sorted wnid.

    Raises
    ------
    DatasetNotFoundError
        If the folder is absent and ``download`` is false, or the download fails.
    DatasetCorruptError
        If ``wnids.txt``, the annotations or an image cannot be read.
    """
    folder = root / TINY_FOLDER
    if not _present(folder):
        if not download:
            raise DatasetNotFoundError("tinyimagenet", root, _EXPECTED)
        try:
            download_and_extract_archive(TINY_URL, download_root=os.fspath(root), md5=TINY_MD5)
        except Exception as err:  # URLError, HTTP errors, checksum mismatch, disk full, ...
            reason, remedy = f"download failed: {err}", DOWNLOAD_FAILED_REMEDY
            raise DatasetNotFoundError("tinyimagenet", root, _EXPECTED, reason=reason, remedy=remedy) from err
        if not _present(folder):
            reason = "the downloaded archive lacks them"
            raise DatasetNotFoundError("tinyimagenet", root, _EXPECTED, reason=reason, remedy=DOWNLOAD_FAILED_REMEDY)
    value = cached("tinyimagenet", folder, lambda: _decode(folder), cache_dir=cache_dir)
    return RawSplit(value[f"{split}_images"], value[f"{split}_labels"], tuple(value["classes"]))


def _present(folder: Path) -> bool:
    return (
        (folder / "wnids.txt").is_file()
        and (folder / "train").is_dir()
        and (folder / "val" / "val_annotations.txt").is_file()
        and (folder / "val" / "images").is_dir()
    )


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetCorruptError("tinyimagenet", path, f"cannot read it as text: {err}") from err


def _listing(folder: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    wnids = sorted(_read_lines(folder / "wnids.txt"))
    if len(set(wnids)) != len(wnids):
        raise DatasetCorruptError("tinyimagenet", folder / "wnids.txt", "it lists a wnid twice")
    label = {w: i for i, w in enumerate(wnids)}
    train = []
    for w in wnids:
        images = folder / "train" / w / "images"
        names = sorted((n for n in os.listdir(images) if is_image_file(n)), key=natural_key) if images.is_dir() else []
        train += [(images / n, label[w]) for n in names]
    annotations = folder / "val" / "val_annotations.txt"
    test = []
    for i, line in enumerate(_read_lines(annotations)):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in label:
            raise DatasetCorruptError("tinyimagenet", annotations, f"line {i + 1} names no known wnid: {line!r}")
        test.append((folder / "val" / "images" / fields[0], label[fields[1]]))
    test.sort(key=lambda item: natural_key(item[0].name))
    return wnids, {"train": train, "test": test}


def _decode(folder: Path) -> dict:
    wnids, splits = _listing(folder)
    value: dict = {"classes": wnids}
    for split, items in splits.items():
        images = []
        for path, _ in tqdm(items, unit="img", desc=f"decoding tinyimagenet {split}", mininterval=1.0):
            try:
                images.append(decode_bytes(path.read_bytes(), str(path)))
            except (ImageDecodeError, OSError) as err:
                raise DatasetCorruptError("tinyimagenet", path, str(err)) from err
        names = [str(p) for p, _ in items]
        try:
            value[f"{split}_images"] = stack_images(images, names, channels=3)
        except ValueError as err:
            raise DatasetCorruptError("tinyimagenet", folder, str(err)) from err
        value[f"{split}_labels"] = torch.tensor([y for _, y in items], dtype=torch.int64)
    return value
