"""Tiny-ImageNet (200 classes, 64x64) from its standard folder, which torchvision has no class for.

``tiny-imagenet-200/wnids.txt`` (one WordNet id per line), ``train/<wnid>/images/*.JPEG`` (500 per class),
``val/images/*.JPEG`` labelled by ``val/val_annotations.txt`` (``file\\twnid\\t...``): the labelled ``val`` serves as
``test``. Labels follow the sorted wnids (the ``class_names``); grey JPEGs become RGB. ``download=True`` fetches and
verifies the official archive; decoding is cached."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .images import ImageDecodeError, cached, decode_bytes, is_image_file, natural_key, stack_images
from .specs import DOWNLOAD_FAILED_REMEDY, DatasetCorruptError, DatasetNotFoundError, RawSplit

__all__ = ["TINY_URL", "TINY_MD5", "TINY_FOLDER", "read_tiny_imagenet"]

TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
TINY_FOLDER = "tiny-imagenet-200"
#: An existing folder is never downloaded again: the whole folder must go.
TINY_REMEDY = f"Delete the {TINY_FOLDER} folder and load again with download=True, or extract {TINY_FOLDER}.zip again."
_FILES = ("wnids.txt", "train/<wnid>/images/*.JPEG", "val/val_annotations.txt", "val/images/*.JPEG")
_EXPECTED = tuple(f"{TINY_FOLDER}/{p}" for p in _FILES)


def download_and_extract_archive(url: str, download_root: str, md5: str) -> None:
    """torchvision's fetch-verify-extract, imported on first use (torchvision is slow to import)."""
    from torchvision.datasets.utils import download_and_extract_archive as fetch
    fetch(url, download_root=download_root, md5=md5)


def read_tiny_imagenet(root: Path, split: str, *, download: bool = False, cache_dir=None) -> RawSplit:
    """One split under ``root``: uint8 ``[N, 3, 64, 64]``, labels by sorted wnid."""
    folder = root / TINY_FOLDER
    if not _present(folder):
        if not download:
            raise DatasetNotFoundError("tinyimagenet", root, _EXPECTED)
        try:
            download_and_extract_archive(TINY_URL, download_root=os.fspath(root), md5=TINY_MD5)
        except Exception as err:  # URLError, HTTP errors, checksum mismatch, disk full, ...
            failed = DatasetNotFoundError("tinyimagenet", root, _EXPECTED, reason=f"download failed: {err}",
                                          remedy=DOWNLOAD_FAILED_REMEDY)  # fmt: skip
            raise failed from err
        if not _present(folder):
            reason = "the downloaded archive lacks them"
            raise DatasetNotFoundError("tinyimagenet", root, _EXPECTED, reason=reason, remedy=DOWNLOAD_FAILED_REMEDY)
    value = cached("tinyimagenet", folder, lambda: _decode(folder), cache_dir=cache_dir)
    return RawSplit(value[f"{split}_images"], value[f"{split}_labels"], tuple(value["classes"]))


def _present(folder: Path) -> bool:
    return (all((folder / p).is_file() for p in ("wnids.txt", "val/val_annotations.txt"))
            and all((folder / p).is_dir() for p in ("train", "val/images")))


def _corrupt(path: Path, reason: str) -> DatasetCorruptError:
    return DatasetCorruptError("tinyimagenet", path, reason, TINY_REMEDY)


def _read_lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise _corrupt(path, f"cannot read it as text: {err}") from err


def _decode(folder: Path) -> dict:
    wnids = sorted(_read_lines(folder / "wnids.txt"))
    if len(set(wnids)) != len(wnids):
        raise _corrupt(folder / "wnids.txt", "it lists a wnid twice")
    label = {w: i for i, w in enumerate(wnids)}
    splits: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}
    for w in wnids:
        images = folder / "train" / w / "images"
        names = sorted((n for n in os.listdir(images) if is_image_file(n)), key=natural_key) if images.is_dir() else []
        splits["train"] += [(images / n, label[w]) for n in names]
    annotations = folder / "val" / "val_annotations.txt"
    for i, line in enumerate(_read_lines(annotations)):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in label:
            raise _corrupt(annotations, f"line {i + 1} names no known wnid: {line!r}")
        splits["test"].append((folder / "val" / "images" / fields[0], label[fields[1]]))
    splits["test"].sort(key=lambda item: natural_key(item[0].name))
    value: dict = {"classes": wnids}
    for split, items in splits.items():
        images = []
        for path, _ in tqdm(items, unit="img", desc=f"decoding tinyimagenet {split}", mininterval=1.0):
            try:
                images.append(decode_bytes(path.read_bytes(), str(path)))
            except (ImageDecodeError, OSError) as err:
                raise _corrupt(path, str(err)) from err
        try:
            value[f"{split}_images"] = stack_images(images, [str(p) for p, _ in items], channels=3)
        except ValueError as err:
            raise _corrupt(folder, str(err)) from err
        value[f"{split}_labels"] = torch.tensor([y for _, y in items], dtype=torch.int64)
    return value
