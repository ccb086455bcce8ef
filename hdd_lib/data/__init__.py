"""Datasets as one normalised tensor per split, on the device, with a per-class index::

    train = load("cifar10", "/data", split="train", device="cuda")   # ImageSet
    real = train.sample(256, generator=torch.Generator().manual_seed(0))   # [10, 256, 3, 32, 32]

Modules: ``specs`` (the table; what sources return and raise), ``load``, ``imageset``, ``images`` (decoding,
disk cache), sources ``torchvision_sources``, ``imagefolder``, ``tinyimagenet``."""

from .images import default_cache_dir
from .imageset import ClassIndex, ImageSet, class_counts, denormalise, normalise
from .load import available_datasets, default_root, load
from .specs import SPECS, SPLITS, DatasetCorruptError, DatasetNotFoundError, DatasetSpec, dataset_label, get_spec

__all__ = ["load", "available_datasets", "default_root", "default_cache_dir", "DatasetSpec", "SPECS", "SPLITS",
           "get_spec", "dataset_label", "ImageSet", "ClassIndex", "class_counts", "normalise", "denormalise",
           "DatasetNotFoundError", "DatasetCorruptError"]  # fmt: skip
