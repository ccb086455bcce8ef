"""The table of datasets (shape, classes, normalisation constants, labels) and what a source hands to
:func:`~hdd_lib.data.load` (a :class:`RawSplit`, checked against the spec here) or raises: :class:`DatasetNotFoundError`
(files absent) or :class:`DatasetCorruptError` (present but unreadable), naming the dataset, place and remedy.

Constants are the usual Dataset-Condensation (DC/DM benchmark) values; ``digits``' are its fixed train split's
(:func:`~hdd_lib.data.load.read_digits`), to four decimals. ``imagefolder`` (any user tree) has no row: its spec is
computed from its files on loading."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import torch

__all__ = ["DatasetSpec", "SPECS", "SPLITS", "get_spec", "check_split", "dataset_label", "RawSplit",
           "DatasetNotFoundError", "DatasetCorruptError", "channel_stats", "check_against_spec"]

#: The splits every dataset offers (Tiny-ImageNet's labelled ``val`` serves as ``test``).
SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is: images ``shape = (channels, *image_size)``, labels ``0 .. num_classes-1``.

    A stored image is ``(x - mean) / std`` per channel, ``x`` in ``[0, 1]``. ``class_names`` are in label order
    (``None`` where the files name them: CIFAR-100, Tiny-ImageNet). ``label`` is how tables and figures name the dataset
    (defaults to ``name``)."""

    name: str
    channels: int
    image_size: tuple[int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"image_size must be (H, W) with H, W >= 1, got {self.image_size}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if len(self.mean) != self.channels or len(self.std) != self.channels or min(self.std) <= 0:
            raise ValueError(f"mean and std need one value per channel ({self.channels}), std positive; got "
                             f"mean={self.mean}, std={self.std}")  # fmt: skip
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names must hold num_classes={self.num_classes} names, got {len(self.class_names)}")
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's shape ``(C, H, W)``."""
        return (self.channels, *self.image_size)


_DIGITS = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHIONMNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_C10 = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), CIFAR10_CLASSES

#: Fixed datasets by registry key (read-only).
SPECS: MappingProxyType[str, DatasetSpec] = MappingProxyType({s.name: s for s in (
    DatasetSpec("mnist", 1, (28, 28), 10, (0.1307,), (0.3081,), _DIGITS, "MNIST"),
    DatasetSpec("fashionmnist", 1, (28, 28), 10, (0.2861,), (0.3530,), FASHIONMNIST_CLASSES, "Fashion-MNIST"),
    DatasetSpec("svhn", 3, (32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), _DIGITS, "SVHN"),
    DatasetSpec("cifar10", 3, (32, 32), 10, *_C10, "CIFAR-10"),
    DatasetSpec("cifar10_jpeg", 3, (32, 32), 10, *_C10, "CIFAR-10 (JPEG copy)"),
    DatasetSpec("cifar100", 3, (32, 32), 100, (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762), None, "CIFAR-100"),
    DatasetSpec("tinyimagenet", 3, (64, 64), 200, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), None, "Tiny-ImageNet"),
    DatasetSpec("digits", 1, (8, 8), 10, (0.3051,), (0.3762,), _DIGITS, "scikit-learn digits (8x8)"),
)})  # fmt: skip


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of a fixed dataset; ``ValueError`` listing the known ones otherwise."""
    if name in SPECS:
        return SPECS[name]
    if name == "imagefolder":
        raise ValueError("'imagefolder' has no fixed spec: it is computed from the files; load it and read .spec")
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(SPECS))}")


def dataset_label(name: str) -> str:
    """How tables name a dataset, e.g. ``"CIFAR-10 (JPEG copy)"``; the key itself where the table has no row."""
    return SPECS[name].label if name in SPECS else name


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`, else ``ValueError``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return split


DOWNLOAD_REMEDY = ("Pass download=True to fetch them (needs internet), or point root (or $HDD_DATA_ROOT) at a folder "
                   "that holds them.")
DOWNLOAD_FAILED_REMEDY = ("Check the network and retry, or copy the files there yourself, or point root (or "
                          "$HDD_DATA_ROOT) at a folder that holds them.")
#: For files that torchvision downloads: deleting the bad one lets the download replace it.
REDOWNLOAD_REMEDY = "Delete it and load again with download=True, or replace it with a good copy."


class DatasetNotFoundError(FileNotFoundError):
    """The files of ``dataset`` (``expected``, relative to ``root``) are absent; ``reason``/``remedy`` refine it."""

    def __init__(self, dataset: str, root: str | os.PathLike, expected: Sequence[str], *, reason: str | None = None,
                 remedy: str | None = None) -> None:  # fmt: skip
        self.dataset, self.root, self.expected = dataset, os.fspath(root), tuple(expected)
        why = f" ({reason})" if reason else ""
        super().__init__(f"dataset {dataset!r} not found under root {self.root!r}: expected "
                         f"{', '.join(self.expected)}{why}. {remedy or DOWNLOAD_REMEDY}")  # fmt: skip

    def __reduce__(self):  # pickling would call __init__ with the message only
        return _rebuild, (type(self), self.args[0])


class DatasetCorruptError(ValueError):
    """``path`` (a file or folder of ``dataset``) is present but unreadable for ``reason``; ``remedy`` fixes it."""

    def __init__(self, dataset: str, path: str | os.PathLike, reason: str, remedy: str = REDOWNLOAD_REMEDY) -> None:
        self.dataset, self.path, self.reason = dataset, os.fspath(path), reason
        super().__init__(f"dataset {dataset!r}: {self.path!r} is corrupt or not in the expected format ({reason}). "
                         + remedy)

    __reduce__ = DatasetNotFoundError.__reduce__


def _rebuild(cls: type, message: str) -> Exception:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    return err


@dataclass(frozen=True, eq=False)
class RawSplit:
    """One split as stored: ``images`` uint8 or uint16 ``[N, C, H, W]``, ``labels`` int64 ``[N]``.

    ``max_value`` is the pixel value meaning 1.0 (default 255 for uint8, 65535 for uint16; 16 for the digits);
    ``class_names`` are those read from the files, in label order, where the files have them."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...] | None = None
    max_value: int | None = None

    def __post_init__(self) -> None:
        if self.max_value is None:
            object.__setattr__(self, "max_value", 255 if self.images.dtype == torch.uint8 else 65535)
        if self.images.dtype not in (torch.uint8, torch.uint16) or self.images.dim() != 4:
            shape = tuple(self.images.shape)
            raise ValueError(f"images must be uint8 or uint16 [N, C, H, W], got {self.images.dtype} {shape}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must be int64 [N={self.images.shape[0]}], "
                             f"got {self.labels.dtype} {tuple(self.labels.shape)}")


def channel_stats(images: torch.Tensor, *, max_value: int = 255) -> tuple[tuple[float, ...], tuple[float, ...]]:
    r"""Exact per-channel mean and population std of integer ``images [N, C, H, W]`` divided by ``max_value``, from a
    histogram ``p_c`` per channel (256 or 65536 bins), with no float copy of the data:

    .. math:: \mu_c = \sum_v p_c(v) \frac{v}{m}, \qquad \sigma_c = \sqrt{\sum_v p_c(v) (v / m)^2 - \mu_c^2}
    """
    if images.numel() == 0:
        raise ValueError("cannot compute channel statistics of an empty image set")
    bins = 256 if images.dtype == torch.uint8 else 65536
    values = torch.arange(bins, dtype=torch.float64) / max_value
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1).long(), minlength=bins).to(torch.float64)
        p = hist / hist.sum()
        mean = float((p * values).sum())
        means.append(mean)
        stds.append(max(float((p * values**2).sum()) - mean**2, 0.0) ** 0.5)
    return tuple(means), tuple(stds)


def check_against_spec(raw: RawSplit, spec: DatasetSpec, path: str | os.PathLike, remedy: str) -> None:
    """:class:`DatasetCorruptError` (with ``remedy``) unless ``raw`` has the spec's image shape, labels and classes."""
    if raw.images.shape[0] == 0:
        raise DatasetCorruptError(spec.name, path, "it holds no images", remedy)
    shape, names = tuple(raw.images.shape[1:]), raw.class_names
    low, high = int(raw.labels.min()), int(raw.labels.max())
    problem = None
    if shape != spec.shape:
        problem = f"images have shape {shape}, expected {spec.shape}"
    elif low < 0 or high >= spec.num_classes:
        problem = f"labels span {low}..{high}, expected 0..{spec.num_classes - 1}"
    elif names is not None and len(names) != spec.num_classes:
        problem = f"the files name {len(names)} classes, expected {spec.num_classes}"
    elif names is not None and spec.class_names is not None and tuple(names) != spec.class_names:
        problem = f"the files name the classes {list(names)}, expected {list(spec.class_names)}"
    if problem:
        raise DatasetCorruptError(spec.name, path, problem, remedy)
