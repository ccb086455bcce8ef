"""MNIST, Fashion-MNIST, SVHN, CIFAR-10 and CIFAR-100 through torchvision's dataset classes.

torchvision finds, verifies (MD5) and downloads the files in its layouts under the root (``MNIST/raw/``,
``FashionMNIST/raw/``, ``cifar-10-batches-py/``, ``cifar-100-python/``, SVHN's ``{train,test}_32x32.mat``); we convert
its arrays in one go and turn its failures into :class:`DatasetNotFoundError` (naming the absent files) or
:class:`DatasetCorruptError` (naming the file that fails its MD5 or cannot be parsed). A root holding only the four
official MNIST ``*-ubyte.gz`` files (a read-only copy, which torchvision cannot extract) is read directly, after the
same MD5 check."""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch

# torchvision is imported where a reader runs, not with hdd_lib: it costs ~2.5 s per process
# (it loads torch._dynamo), which every pipeline stage would pay for nothing on the embedded digits.
from .specs import DOWNLOAD_FAILED_REMEDY, DatasetCorruptError, DatasetNotFoundError, RawSplit

__all__ = ["read_mnist", "read_fashionmnist", "read_svhn", "read_cifar10", "read_cifar100"]


def read_svhn(root: Path, split: str, *, download: bool = False, cache_dir=None) -> RawSplit:
    """SVHN: uint8 ``[N, 3, 32, 32]`` from ``<root>/{train,test}_32x32.mat``; label 10 (digit 0) becomes 0."""
    tvd = _tvd()
    _, filename, md5 = tvd.SVHN.split_list[split]
    build = lambda dl: tvd.SVHN(os.fspath(root), split=split, download=dl)  # noqa: E731
    ds = _construct("svhn", root, [(filename, md5)], build, download)
    images = torch.from_numpy(np.ascontiguousarray(ds.data, dtype=np.uint8))  # torchvision made it [N, 3, H, W]
    return RawSplit(images, torch.from_numpy(np.asarray(ds.labels, dtype=np.int64)))


def _tvd():
    from torchvision import datasets
    return datasets


def _verify(dataset: str, path: Path, md5: str) -> None:
    """:class:`DatasetCorruptError` unless ``path`` matches torchvision's checksum ``md5``."""
    from torchvision.datasets.utils import check_integrity
    if not check_integrity(os.fspath(path), md5):
        raise DatasetCorruptError(dataset, path, f"its MD5 does not match torchvision's checksum {md5}")


def _read_cifar(dataset: str, root: Path, split: str, *, download: bool = False, cache_dir=None) -> RawSplit:
    """CIFAR-10 / CIFAR-100 (fine labels): uint8 ``[N, 3, 32, 32]``, class names from the files."""
    cls = _tvd().CIFAR10 if dataset == "cifar10" else _tvd().CIFAR100
    checks = [(f"{cls.base_folder}/{name}", md5) for name, md5 in cls.train_list + cls.test_list]
    checks.append((f"{cls.base_folder}/{cls.meta['filename']}", cls.meta["md5"]))
    build = lambda dl: cls(os.fspath(root), train=split == "train", download=dl)  # noqa: E731
    ds = _construct(dataset, root, checks, build, download)
    images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))  # torchvision keeps HWC
    labels = torch.from_numpy(np.asarray(ds.targets, dtype=np.int64))
    return RawSplit(images, labels, tuple(ds.classes))


def _construct(dataset: str, root: Path, checks: Sequence[tuple[str, str]], build: Callable[[bool], object],
               download: bool):  # fmt: skip
    """``build(download)`` (a torchvision constructor) with its failures translated; ``checks``: (file, md5)."""
    expected = [name for name, _ in checks]
    missing = [name for name in expected if not (root / name).is_file()]
    if missing and not download:
        reason = f"missing {', '.join(missing)}" if len(missing) < len(expected) else None
        raise DatasetNotFoundError(dataset, root, expected, reason=reason)
    try:
        return build(download)
    except Exception as err:  # torchvision raises RuntimeError, URLError, pickle/scipy/numpy errors, ...
        if missing:
            reason, remedy = f"download failed: {err}", DOWNLOAD_FAILED_REMEDY
            raise DatasetNotFoundError(dataset, root, expected, reason=reason, remedy=remedy) from err
        for name, md5 in checks:
            _verify(dataset, root / name, md5)
        raise DatasetCorruptError(dataset, root / expected[0], f"{type(err).__name__}: {err}") from err


def _read_mnist_family(dataset: str, root: Path, split: str, *, download: bool = False, cache_dir=None) -> RawSplit:
    """MNIST / Fashion-MNIST: uint8 ``[N, 1, 28, 28]`` from ``<root>/{MNIST,FashionMNIST}/raw/``."""
    cls = _tvd().MNIST if dataset == "mnist" else _tvd().FashionMNIST
    raw_dir = root / cls.__name__ / "raw"
    gz_names = [f"{'train' if split == 'train' else 't10k'}-{kind}-ubyte.gz" for kind in ("images-idx3", "labels-idx1")]
    extracted = all((raw_dir / os.path.splitext(name)[0]).is_file() for name, _ in cls.resources)
    if not extracted and all((raw_dir / name).is_file() for name in gz_names):  # the official files, read in place
        for name in gz_names:
            _verify(dataset, raw_dir / name, dict(cls.resources)[name])
        images, labels = (_read_idx_gz(dataset, raw_dir / name, ndim=n) for name, n in zip(gz_names, (3, 1)))
        if images.shape[0] != labels.shape[0]:
            raise DatasetCorruptError(dataset, raw_dir, f"{images.shape[0]} images but {labels.shape[0]} labels")
        return RawSplit(images.unsqueeze(1).contiguous(), labels.to(torch.int64))
    build = lambda dl: cls(os.fspath(root), train=split == "train", download=dl)  # noqa: E731
    if extracted:  # torchvision's own layout after a download: it reads the extracted files
        try:
            ds = build(False)
        except Exception as err:
            raise DatasetCorruptError(dataset, raw_dir, f"cannot read the extracted files: {err!r}") from err
    elif download:
        ds = _construct(dataset, root, [(f"{cls.__name__}/raw/{n}", md5) for n, md5 in cls.resources], build, True)
    else:
        expected = [f"{cls.__name__}/raw/{name}" for name in gz_names]
        reason = "neither these .gz files nor their extracted copies are there"
        raise DatasetNotFoundError(dataset, root, expected, reason=reason)
    return RawSplit(ds.data.to(torch.uint8).unsqueeze(1).contiguous(), ds.targets.to(torch.int64))


def _read_idx_gz(dataset: str, path: Path, *, ndim: int) -> torch.Tensor:
    """Parse a gzipped IDX file of uint8 (magic ``00 00 08 ndim``, big-endian sizes, then the bytes)."""
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetCorruptError(dataset, path, f"cannot decompress it: {err}") from err
    header = 4 + 4 * ndim
    if len(data) < header or data[:4] != bytes((0, 0, 8, ndim)):
        raise DatasetCorruptError(dataset, path, f"not an IDX file of uint8 with {ndim} dimension(s)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != math.prod(dims):
        reason = f"the header promises {math.prod(dims)} values but {len(data) - header} follow"
        raise DatasetCorruptError(dataset, path, reason)
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).view(*dims)


read_mnist, read_fashionmnist = partial(_read_mnist_family, "mnist"), partial(_read_mnist_family, "fashionmnist")
read_cifar10, read_cifar100 = partial(_read_cifar, "cifar10"), partial(_read_cifar, "cifar100")
