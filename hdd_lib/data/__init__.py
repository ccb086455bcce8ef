"""Datasets as one normalised tensor per split, on the device, with a per-class index.

::

    from hdd_lib.data import load
    train = load("cifar10", "/data", split="train", device="cuda")   # ImageSet
    g = torch.Generator().manual_seed(0)                              # CPU generator
    real = train.sample(256, generator=g)                             # [10, 256, 3, 32, 32]

Modules, one job each:

- :mod:`~hdd_lib.data.specs`: the :class:`DatasetSpec` table (channels, size, classes, mean, std).
- :mod:`~hdd_lib.data.load`: :func:`load` and the registry of sources.
- :mod:`~hdd_lib.data.imageset`: :class:`ImageSet`, :class:`ClassIndex`, :func:`denormalise`.
- :mod:`~hdd_lib.data.torchvision_sources`: MNIST, Fashion-MNIST, SVHN, CIFAR-10/100.
- :mod:`~hdd_lib.data.tinyimagenet`, :mod:`~hdd_lib.data.imagefolder`, :mod:`~hdd_lib.data.digits`.
- :mod:`~hdd_lib.data.decode`, :mod:`~hdd_lib.data.cache`: JPEG decoding and its disk cache.
- :mod:`~hdd_lib.data.errors`: :class:`DatasetNotFoundError`, :class:`DatasetCorruptError`.
"""

from .cache import default_cache_dir
from .errors import DatasetCorruptError, DatasetNotFoundError
from .imageset import ClassIndex, ImageSet, class_counts, denormalise, normalise
from .load import available_datasets, default_root, load
from .specs import SPECS, SPLITS, DatasetSpec, get_spec

__all__ = [
    "load",
    "available_datasets",
    "default_root",
    "default_cache_dir",
    "DatasetSpec",
    "SPECS",
    "SPLITS",
    "get_spec",
    "ImageSet",
    "ClassIndex",
    "class_counts",
    "normalise",
    "denormalise",
    "DatasetNotFoundError",
    "DatasetCorruptError",
]
