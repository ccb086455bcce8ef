"""Datasets as one normalised tensor per split, on the device, with a per-class index::

    train = load("cifar10", "/data", split="train", device="cuda")   # ImageSet
    real = train.sample(256, generator=torch.Generator().manual_seed(0))   # [10, 256, 3, 32, 32]

Modules: :mod:`~.specs` (the :class:`DatasetSpec` table), :mod:`~.load` (:func:`load`, the
sources, the digits), :mod:`~.imageset` (:class:`ImageSet`, :class:`ClassIndex`), :mod:`~.raw`
(what sources return and raise), :mod:`~.images` (decoding and its disk cache), and the sources
:mod:`~.torchvision_sources`, :mod:`~.imagefolder` (also the CIFAR-10 JPEG copy), :mod:`~.tinyimagenet`.
"""

from .images import default_cache_dir
from .imageset import ClassIndex, ImageSet, class_counts, denormalise, normalise
from .load import available_datasets, default_root, load
from .raw import DatasetCorruptError, DatasetNotFoundError
from .specs import SPECS, SPLITS, DatasetSpec, dataset_label, get_spec

__all__ = ["load", "available_datasets", "default_root", "default_cache_dir", "DatasetSpec", "SPECS", "SPLITS",
           "get_spec", "dataset_label", "ImageSet", "ClassIndex", "class_counts", "normalise", "denormalise",
           "DatasetNotFoundError", "DatasetCorruptError"]  # fmt: skip
