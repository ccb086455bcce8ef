"""``load(name, root, split=...)``: a registry key to one split, checked against its spec, normalised on its device."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

import torch

from .imagefolder import CIFAR10_JPEG_REMEDY, IMAGEFOLDER_REMEDY, folder_spec, read_cifar10_jpeg, read_image_folder
from .imageset import ImageSet
from .specs import REDOWNLOAD_REMEDY, SPECS, RawSplit, check_against_spec, check_split
from .tinyimagenet import TINY_REMEDY, read_tiny_imagenet
from .torchvision_sources import read_cifar10, read_cifar100, read_fashionmnist, read_mnist, read_svhn

__all__ = ["SOURCES", "available_datasets", "default_root", "load", "read_digits"]


def read_digits(split: str = "train") -> RawSplit:
    """scikit-learn's bundled 8x8 digits (no file, no network): uint8 ``[N, 1, 8, 8]``, values 0..16.

    The split is fixed and stratified: within each class, in ``load_digits`` order, every fifth image (class rank 4, 9,
    14, ...) is a test image: 1,442 train and 355 test images."""
    from sklearn.datasets import load_digits  # heavy import, kept out of ``import hdd_lib``
    bunch = load_digits()
    images = torch.from_numpy(bunch.images).to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    counts = torch.bincount(labels, minlength=10)
    rank = torch.empty_like(labels)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank[torch.argsort(labels, stable=True)] = torch.arange(labels.numel()) - starts
    keep = rank % 5 == 4 if split == "test" else rank % 5 != 4
    return RawSplit(images[keep].contiguous(), labels[keep], tuple(str(c) for c in range(10)), max_value=16)


#: The reader behind each fixed key: ``(root, split, *, download, cache_dir) -> RawSplit``.
SOURCES = MappingProxyType({
    "mnist": read_mnist, "fashionmnist": read_fashionmnist, "svhn": read_svhn, "cifar10": read_cifar10,
    "cifar100": read_cifar100, "tinyimagenet": read_tiny_imagenet, "cifar10_jpeg": read_cifar10_jpeg,
    "digits": lambda root, split, **_: read_digits(split),
})  # fmt: skip
_REMEDIES = {"tinyimagenet": TINY_REMEDY, "cifar10_jpeg": CIFAR10_JPEG_REMEDY, "imagefolder": IMAGEFOLDER_REMEDY}


def available_datasets() -> list[str]:
    """Keys accepted by :func:`load`, sorted."""
    return sorted([*SOURCES, "imagefolder"])


def default_root() -> Path:
    """``$HDD_DATA_ROOT`` if set, else ``./data``."""
    return Path(os.environ.get("HDD_DATA_ROOT") or "data").expanduser()


def load(name: str, root: str | os.PathLike | None = None, *, split: str = "train", download: bool = False,
         device: str | torch.device = "cpu", cache_dir: str | os.PathLike | None = None) -> ImageSet:  # fmt: skip
    """One split of a dataset: normalised float32 images on ``device``, labels and a per-class index; ``root``: the data
    root in torchvision's layout (``None``: :func:`default_root`), the tree itself for ``imagefolder``, ignored by
    ``digits``. ``download=False`` never touches the network; ``cache_dir`` holds decoded JPEG/PNG trees. ``ValueError``
    for a bad name, split or tree, else :class:`DatasetNotFoundError` (files absent) or :class:`DatasetCorruptError`
    (bad checksum or format), each one line naming dataset, place and remedy."""
    if not isinstance(name, str) or name not in (*SOURCES, "imagefolder"):
        hint = f" (keys are lower case: {name.lower()!r})" if isinstance(name, str) and name.lower() in SOURCES else ""
        raise ValueError(f"unknown dataset {name!r}{hint}; known: {', '.join(available_datasets())}")
    check_split(split)
    if name == "imagefolder":
        if root is None:
            raise ValueError("'imagefolder' needs root: the folder or tar archive with train/<class>/, test/<class>/")
        splits = read_image_folder(root, cache_dir=cache_dir)
        raw, spec, where = splits[split], folder_spec(splits["train"]), root
    else:
        where = Path(root).expanduser() if root is not None else default_root()
        raw, spec = SOURCES[name](where, split, download=download, cache_dir=cache_dir), SPECS[name]
    check_against_spec(raw, spec, where, _REMEDIES.get(name, REDOWNLOAD_REMEDY))
    return ImageSet.from_raw(raw, spec, split=split, device=device)
