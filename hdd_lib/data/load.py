"""``load(name, root, split=...)``: one registry key to one normalised split on one device.

Every source returns a :class:`~hdd_lib.data.raw.RawSplit` (uint8 images, int64 labels); here it
is checked against the dataset's spec, moved to the device and normalised there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import torch

from .digits import read_digits
from .imagefolder import folder_spec, read_cifar10_jpeg, read_image_folder
from .imageset import ImageSet
from .raw import RawSplit, check_against_spec
from .specs import SPECS, check_split
from .tinyimagenet import read_tiny_imagenet
from .torchvision_sources import read_cifar10, read_cifar100, read_fashionmnist, read_mnist, read_svhn

__all__ = ["SOURCES", "available_datasets", "default_root", "load"]

Source = Callable[..., RawSplit]  # (root: Path, split: str, *, download: bool, cache_dir) -> RawSplit


def _read_digits(root: Path, split: str, *, download: bool = False, cache_dir=None) -> RawSplit:
    return read_digits(split)  # bundled with scikit-learn: no root, nothing to download


#: The source behind each fixed registry key (``"imagefolder"`` is handled by :func:`load` itself).
SOURCES: MappingProxyType[str, Source] = MappingProxyType(
    {
        "mnist": read_mnist,
        "fashionmnist": read_fashionmnist,
        "svhn": read_svhn,
        "cifar10": read_cifar10,
        "cifar100": read_cifar100,
        "tinyimagenet": read_tiny_imagenet,
        "digits": _read_digits,
        "cifar10_jpeg": read_cifar10_jpeg,
    }
)


def available_datasets() -> list[str]:
    """Registry keys accepted by :func:`load`, sorted."""
    return sorted([*SOURCES, "imagefolder"])


def default_root() -> Path:
    """The data root used when none is given: ``$HDD_DATA_ROOT`` if set, else ``./data``."""
    return Path(os.environ.get("HDD_DATA_ROOT") or "data").expanduser()


def load(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    split: str = "train",
    download: bool = False,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike | None = None,
) -> ImageSet:
    """Load one split of a dataset as normalised float32 images on ``device``, with a per-class index.

    Parameters
    ----------
    name : str
        A key of :func:`available_datasets`: ``mnist``, ``fashionmnist``, ``svhn``, ``cifar10``,
        ``cifar100``, ``tinyimagenet``, ``digits``, ``cifar10_jpeg`` or ``imagefolder``.
    root : path, optional
        The data root holding the files in torchvision's layout; ``None`` means
        ``$HDD_DATA_ROOT`` or ``./data``. For ``imagefolder`` it is the tree itself (a folder
        or a tar archive with ``train/<class>/...`` and ``test/<class>/...``) and is required.
        ``digits`` ignores it.
    split : {"train", "test"}
        Tiny-ImageNet's ``test`` is its labelled ``val`` split.
    download : bool
        Fetch missing files with torchvision (needs internet). ``False`` never touches the network.
    device : str or torch.device
        Where the images and labels go; normalisation happens there.
    cache_dir : path, optional
        Decode cache for JPEG sources (``cifar10_jpeg``, ``tinyimagenet``, ``imagefolder``);
        default ``$HDD_CACHE_DIR`` or ``~/.cache/hdd_lib``.

    Returns
    -------
    ImageSet
        ``images`` float32 ``[N, C, H, W]``, ``labels`` int64 ``[N]``, ``spec``, ``index``.

    Raises
    ------
    ValueError
        For an unknown name or split, or ``imagefolder`` without a root.
    DatasetNotFoundError
        If the files are absent (naming dataset, root and expected files) and not downloaded.
    DatasetCorruptError
        If a file is present but fails its checksum or cannot be parsed.
    """
    if not isinstance(name, str) or name not in (*SOURCES, "imagefolder"):
        hint = f" (keys are lower case: {name.lower()!r})" if isinstance(name, str) and name.lower() in SOURCES else ""
        raise ValueError(f"unknown dataset {name!r}{hint}; known: {', '.join(available_datasets())}")
    check_split(split)
    if name == "imagefolder":
        if root is None:
            raise ValueError(
                "'imagefolder' needs root: the folder or tar archive holding train/<class>/ and test/<class>/"
            )
        splits = read_image_folder(root, cache_dir=cache_dir)
        raw, spec, where = splits[split], folder_spec(splits["train"]), root
    else:
        where = Path(root).expanduser() if root is not None else default_root()
        raw, spec = SOURCES[name](where, split, download=download, cache_dir=cache_dir), SPECS[name]
    check_against_spec(raw, spec, where)
    return ImageSet.from_raw(raw, spec, split=split, device=device)
