r"""What a source hands to :func:`~hdd_lib.data.load` (a :class:`RawSplit`, checked against the spec here), or raises:
:class:`DatasetNotFoundError` (files absent) or :class:`DatasetCorruptError` (present but unreadable), each naming the
dataset, the place and the remedy that works for that source."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .specs import DatasetSpec

__all__ = ["RawSplit", "DatasetNotFoundError", "DatasetCorruptError", "channel_stats", "check_against_spec"]

DOWNLOAD_REMEDY = (
    "Pass download=True to fetch them (needs internet), or point root (or $HDD_DATA_ROOT) at a folder that holds them."
)
DOWNLOAD_FAILED_REMEDY = (
    "Check the network and retry, or copy the files there yourself, or point root (or $HDD_DATA_ROOT) "
    "at a folder that holds them."
)
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
            raise ValueError(
                f"labels must be int64 [N={self.images.shape[0]}], got {self.labels.dtype} {tuple(self.labels.shape)}"
            )


def channel_stats(images: torch.Tensor, *, max_value: int = 255) -> tuple[tuple[float, ...], tuple[float, ...]]:
    r"""Exact per-channel mean and population std of integer ``images [N, C, H, W]`` divided by ``max_value``.

    From a histogram ``p_c`` per channel (256 or 65536 bins), with no float copy of the data:

    .. math::
        \mu_c = \sum_v p_c(v) \frac{v}{m}, \qquad \sigma_c = \sqrt{\sum_v p_c(v) (v / m)^2 - \mu_c^2}
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
