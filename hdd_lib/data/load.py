"""``load(name, root, split=...)``: one registry key to one normalised split on one device.

Every source returns a :class:`~hdd_lib.data.raw.RawSplit`; here it is checked against the
dataset's spec, moved to the device and normalised there.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

import torch

from .imagefolder import CIFAR10_JPEG_REMEDY, IMAGEFOLDER_REMEDY, folder_spec, read_cifar10_jpeg, read_image_folder
from .imageset import ImageSet
from .raw import REDOWNLOAD_REMEDY, RawSplit, check_against_spec
from .specs import SPECS, check_split
from .tinyimagenet import TINY_REMEDY, read_tiny_imagenet
from .torchvision_sources import read_cifar10, read_cifar100, read_fashionmnist, read_mnist, read_svhn

__all__ = ["SOURCES", "available_datasets", "default_root", "load", "read_digits"]


def read_digits(split: str = "train") -> RawSplit:
    """scikit-learn's bundled 8x8 digits (no file, no network): uint8 ``[N, 1, 8, 8]``, values 0..16.

    The split is fixed and stratified: within each class, in ``load_digits`` order, every fifth
    image (class rank 4, 9, 14, ...) is a test image: 1,442 train and 355 test images.
    """
    from sklearn.datasets import load_digits  # heavy import, kept out of ``import hdd_lib``

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    counts = torch.bincount(labels, minlength=10)
    rank = torch.empty_like(labels)
    rank[torch.argsort(labels, stable=True)] = torch.arange(labels.numel()) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    keep = rank % 5 == 4 if split == "test" else rank % 5 != 4
    return RawSplit(images[keep].contiguous(), labels[keep], tuple(str(c) for c in range(10)), max_value=16)


#: The reader behind each fixed key: ``(root, split, *, download, cache_dir) -> RawSplit``.
SOURCES = MappingProxyType({
    "mnist": read_mnist, "fashionmnist": read_fashionmnist, "svhn": read_svhn, "cifar10": read_cifar10,
    "cifar100": read_cifar100, "tinyimagenet": read_tiny_imagenet, "digits": lambda root, split, **_: read_digits(split),
    "cifar10_jpeg": read_cifar10_jpeg,
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
    """One split of a dataset: normalised float32 images on ``device``, labels and a per-class index.

    Parameters
    ----------
    name : str
        A key of :func:`available_datasets`.
    root : path, optional
        The data root, in torchvision's layout (``None``: :func:`default_root`); for
        ``imagefolder`` the tree itself (folder or tar archive), required; ``digits`` ignores it.
    split : {"train", "test"}
        Tiny-ImageNet's ``test`` is its labelled ``val`` split.
    download : bool
        Fetch missing files with torchvision (needs internet); ``False`` never touches the network.
    device : str or torch.device
        Where images and labels go; normalisation happens there.
    cache_dir : path, optional
        Decode cache of ``cifar10_jpeg``, ``tinyimagenet`` and ``imagefolder``
        (``$HDD_CACHE_DIR`` or ``~/.cache/hdd_lib``).

    Raises
    ------
    ValueError
        For an unknown name or split, ``imagefolder`` without a root, or a tree that is not one
        dataset (mixed sizes, fewer than 2 classes, ...).
    DatasetNotFoundError (a FileNotFoundError)
        If the files are absent and not downloaded, naming dataset, root, expected files and remedy.
    DatasetCorruptError (a ValueError)
        If a file is present but fails its checksum or cannot be parsed, naming it and the remedy.
    """
    if not isinstance(name, str) or name not in (*SOURCES, "imagefolder"):
        hint = f" (keys are lower case: {name.lower()!r})" if isinstance(name, str) and name.lower() in SOURCES else ""
        raise ValueError(f"unknown dataset {name!r}{hint}; known: {', '.join(available_datasets())}")
    check_split(split)
    if name == "imagefolder":
        if root is None:
            raise ValueError("'imagefolder' needs root: the folder or tar archive holding train/<class>/ and test/<class>/")
        splits = read_image_folder(root, cache_dir=cache_dir)
        raw, spec, where = splits[split], folder_spec(splits["train"]), root
    else:
        where = Path(root).expanduser() if root is not None else default_root()
        raw, spec = SOURCES[name](where, split, download=download, cache_dir=cache_dir), SPECS[name]
    check_against_spec(raw, spec, where, _REMEDIES.get(name, REDOWNLOAD_REMEDY))
    return ImageSet.from_raw(raw, spec, split=split, device=device)
