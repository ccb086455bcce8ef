"""What every source hands to :func:`hdd_lib.data.load`: undecorated uint8 images and labels.

Sources stay free of normalisation and devices; :class:`RawSplit` is checked against the dataset's
:class:`~hdd_lib.data.specs.DatasetSpec` here, once, whatever the source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import DatasetCorruptError
from .specs import DatasetSpec

__all__ = ["RawSplit", "channel_stats", "check_against_spec"]


@dataclass(frozen=True, eq=False)
class RawSplit:
    """One split as stored: ``images`` uint8 ``[N, C, H, W]``, ``labels`` int64 ``[N]``.

    ``max_value`` is the pixel value that means 1.0 (255, or 16 for scikit-learn's digits);
    ``class_names`` are the names read from the files, in label order, where the files have them.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...] | None = None
    max_value: int = 255

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must be int64 [N={self.images.shape[0]}], got {self.labels.dtype} {tuple(self.labels.shape)}"
            )


def channel_stats(images: torch.Tensor, *, max_value: int = 255) -> tuple[tuple[float, ...], tuple[float, ...]]:
    r"""Exact per-channel mean and (population) std of uint8 ``images [N, C, H, W]`` scaled to ``[0, 1]``.

    Computed from a 256-bin histogram per channel, so no float copy of the data is made:

    .. math::
        \mu_c = \sum_v p_c(v)\, \frac{v}{m}, \qquad
        \sigma_c = \sqrt{\sum_v p_c(v) \left(\frac{v}{m}\right)^2 - \mu_c^2}
    """
    if images.numel() == 0:
        raise ValueError("cannot compute channel statistics of an empty image set")
    values = torch.arange(256, dtype=torch.float64) / max_value
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1).long(), minlength=256).to(torch.float64)
        p = hist / hist.sum()
        mean = float((p * values).sum())
        var = float((p * values**2).sum()) - mean**2
        means.append(mean)
        stds.append(max(var, 0.0) ** 0.5)
    return tuple(means), tuple(stds)


def check_against_spec(raw: RawSplit, spec: DatasetSpec, path: str | os.PathLike) -> None:
    """Raise :class:`DatasetCorruptError` unless ``raw`` has the spec's image shape and label range."""
    if raw.images.shape[0] == 0:
        raise DatasetCorruptError(spec.name, path, "it holds no images")
    shape = tuple(raw.images.shape[1:])
    if shape != spec.shape:
        raise DatasetCorruptError(spec.name, path, f"images have shape {shape}, expected {spec.shape}")
    low, high = int(raw.labels.min()), int(raw.labels.max())
    if low < 0 or high >= spec.num_classes:
        raise DatasetCorruptError(spec.name, path, f"labels span {low}..{high}, expected 0..{spec.num_classes - 1}")
    if raw.class_names is not None and len(raw.class_names) != spec.num_classes:
        raise DatasetCorruptError(
            spec.name, path, f"the files name {len(raw.class_names)} classes, expected {spec.num_classes}"
        )
    if raw.class_names is not None and spec.class_names is not None and tuple(raw.class_names) != spec.class_names:
        raise DatasetCorruptError(
            spec.name, path, f"the files name the classes {list(raw.class_names)}, expected {list(spec.class_names)}"
        )
