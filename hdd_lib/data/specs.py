"""The table of datasets: shape, classes, normalisation constants and the label tables print.

Constants are the usual Dataset-Condensation (DC/DM benchmark) values; ``digits``' are its fixed train split's
(:func:`~hdd_lib.data.load.read_digits`), to four decimals. ``imagefolder`` (any user tree) has no row: its spec is
computed from its files on loading."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["DatasetSpec", "SPECS", "SPLITS", "get_spec", "check_split", "dataset_label"]

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
