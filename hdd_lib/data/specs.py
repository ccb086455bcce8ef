"""The table of datasets: what each one is (channels, size, classes, normalisation constants).

Constants are the usual Dataset-Condensation (DC/DM benchmark) values; ``digits`` is computed here
from its fixed train split (see :mod:`hdd_lib.data.digits`) and stated as literals.

=============  ==  =======  ===  =========================  =========================
name           C   H x W    K    mean                       std
=============  ==  =======  ===  =========================  =========================
mnist          1   28x28    10   0.1307                     0.3081
fashionmnist   1   28x28    10   0.2861                     0.3530
svhn           3   32x32    10   0.4377, 0.4438, 0.4728     0.1980, 0.2010, 0.1970
cifar10        3   32x32    10   0.4914, 0.4822, 0.4465     0.2023, 0.1994, 0.2010
cifar10_jpeg   3   32x32    10   (CIFAR-10's, official)     (CIFAR-10's, official)
cifar100       3   32x32    100  0.5071, 0.4866, 0.4409     0.2673, 0.2564, 0.2762
tinyimagenet   3   64x64    200  0.485, 0.456, 0.406        0.229, 0.224, 0.225
digits         1   8x8      10   0.3051                     0.3762
=============  ==  =======  ===  =========================  =========================

``imagefolder`` (any user tree) has no row: its spec is computed from its files on loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["DatasetSpec", "SPECS", "SPLITS", "get_spec", "check_split"]

#: The splits every dataset offers (Tiny-ImageNet's labelled ``val`` serves as ``test``).
SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is: shape, classes and the constants that normalise it.

    Attributes
    ----------
    name : str
        Registry key, lower case.
    channels : int
        Image channels ``C`` (1 or 3).
    image_size : tuple of int
        ``(H, W)``.
    num_classes : int
        Number of classes ``K``; labels are ``0 .. K-1``.
    mean, std : tuple of float
        Per-channel constants: a stored image is ``(x - mean) / std`` with ``x`` in ``[0, 1]``.
    class_names : tuple of str or None
        Names in label order; ``None`` where they are read from the files (CIFAR-100, Tiny-ImageNet).
    """

    name: str
    channels: int
    image_size: tuple[int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"image_size must be (H, W) with H, W >= 1, got {self.image_size}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(
                f"mean and std need one value per channel ({self.channels}), got mean={self.mean} std={self.std}"
            )
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names must hold num_classes={self.num_classes} names, got {len(self.class_names)}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's shape ``(C, H, W)``."""
        return (self.channels, *self.image_size)


_DIGITS = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHIONMNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_CIFAR10_MEAN, _CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)

#: Fixed datasets by registry key (read-only).
SPECS: MappingProxyType[str, DatasetSpec] = MappingProxyType(
    {
        s.name: s
        for s in (
            DatasetSpec("mnist", 1, (28, 28), 10, (0.1307,), (0.3081,), _DIGITS),
            DatasetSpec("fashionmnist", 1, (28, 28), 10, (0.2861,), (0.3530,), FASHIONMNIST_CLASSES),
            DatasetSpec("svhn", 3, (32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), _DIGITS),
            DatasetSpec("cifar10", 3, (32, 32), 10, _CIFAR10_MEAN, _CIFAR10_STD, CIFAR10_CLASSES),
            DatasetSpec("cifar10_jpeg", 3, (32, 32), 10, _CIFAR10_MEAN, _CIFAR10_STD, CIFAR10_CLASSES),
            DatasetSpec("cifar100", 3, (32, 32), 100, (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
            DatasetSpec("tinyimagenet", 3, (64, 64), 200, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
            DatasetSpec("digits", 1, (8, 8), 10, (0.3051,), (0.3762,), _DIGITS),
        )
    }
)


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of a fixed dataset.

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones (``imagefolder`` included, with a hint).
    """
    if name in SPECS:
        return SPECS[name]
    if name == "imagefolder":
        raise ValueError("'imagefolder' has no fixed spec: it is computed from the files; load it and read .spec")
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(SPECS))}")


def check_split(split: str) -> str:
    """Return ``split`` if it is one of :data:`SPLITS`, else raise ``ValueError``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return split
