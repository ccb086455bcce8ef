"""A distilled (synthetic) set: stored images, how to expand them, and its record; saved atomically.

File format (``torch.save`` of plain tensors and containers, loadable with ``weights_only=True``)::

    {"format": "hdd_lib.synset/1", "images": [C, ipc, ch, H, W] float32 (normalised),
     "factor": 1 | 2 (IDM mosaics), "labels": [N] of the expanded set, "meta": {...}}

``meta`` (dataset spec, config, data and code digests, loss history) makes a file self-describing and identical
for identical runs; volatile provenance (time, machine, commit) is kept apart, unsaved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .storage import CorruptFileError, interned, load_torch, save_torch

__all__ = ["SyntheticSet", "FORMAT", "decode", "encode"]

FORMAT = "hdd_lib.synset/1"


def decode(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Expand mosaics ``[..., ch, H, W]`` into ``[..., factor**2, ch, H, W]`` (IDM's partition &
    expansion: tiles row-major, each upsampled to ``H x W``, bilinear); ``factor=1`` adds the axis."""
    if factor == 1:
        return images.unsqueeze(-4)
    *lead, ch, h, w = images.shape
    if h % factor or w % factor:
        raise ValueError(f"image size {h}x{w} is not divisible by factor={factor}")
    th, tw = h // factor, w // factor
    tiles = images.reshape(-1, ch, factor, th, factor, tw).permute(0, 2, 4, 1, 3, 5).reshape(-1, ch, th, tw)
    up = F.interpolate(tiles, size=(h, w), mode="bilinear", align_corners=False)
    return up.reshape(*lead, factor * factor, ch, h, w)


def encode(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Mosaics ``[..., ch, H, W]`` of ``[..., factor**2, ch, H, W]`` images (downscaled, bilinear):
    the inverse of :func:`decode` up to the resampling."""
    if factor == 1:
        return images.squeeze(-4)
    *lead, n, ch, h, w = images.shape
    if n != factor * factor:
        raise ValueError(f"encode needs factor**2={factor * factor} images per mosaic, got {n}")
    th, tw = h // factor, w // factor
    small = F.interpolate(images.reshape(-1, ch, h, w), size=(th, tw), mode="bilinear", align_corners=False)
    small = small.reshape(-1, factor, factor, ch, th, tw).permute(0, 3, 1, 4, 2, 5)
    return small.reshape(*lead, ch, h, w)


@dataclass
class SyntheticSet:
    """``images`` ``[C, ipc, ch, H, W]`` as optimised, normalised (``factor x factor`` mosaics if ``factor > 1``)."""

    images: torch.Tensor
    factor: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)  # not saved: time, machine, commit

    def __post_init__(self) -> None:
        if self.images.dim() != 5:
            raise ValueError(f"images must be [C, ipc, ch, H, W], got shape {tuple(self.images.shape)}")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got factor={self.factor}")

    num_classes = property(lambda self: self.images.shape[0])
    ipc = property(lambda self: self.images.shape[1], doc="Stored images per class.")

    def per_class(self) -> torch.Tensor:
        """Training images grouped by class, ``[C, ipc * factor**2, ch, H, W]``."""
        return decode(self.images, self.factor).flatten(1, 2)

    def expanded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Training images ``[N, ch, H, W]`` and labels ``[N]`` (class-major order)."""
        x = self.per_class()
        labels = torch.arange(self.num_classes, device=x.device).repeat_interleave(x.shape[1])
        return x.flatten(0, 1), labels

    def subset(self, keep: torch.Tensor) -> SyntheticSet:
        """The expanded images ``keep`` ``[C, k]`` (indices into :meth:`per_class`) as a plain set."""
        x = self.per_class()
        idx = keep.to(x.device)
        chosen = torch.gather(x, 1, idx.view(*idx.shape, 1, 1, 1).expand(-1, -1, *x.shape[2:]))
        meta = dict(self.meta, subset_of=self.meta.get("run_id"), kept_per_class=int(keep.shape[1]))
        return SyntheticSet(chosen.detach().clone(), factor=1, meta=meta)

    def preview(self, *, columns: int | None = None):
        """The stored images as one PIL image, a row per class, normalisation undone with the
        dataset's ``mean``/``std`` from ``meta`` (for notebooks; IDM mosaics shown as stored)."""
        from PIL import Image
        from torchvision.utils import make_grid

        spec = self.meta.get("dataset", {})
        mean = torch.tensor(spec.get("mean", [0.0])).view(-1, 1, 1)
        std = torch.tensor(spec.get("std", [1.0])).view(-1, 1, 1)
        x = (self.images.detach().cpu().float() * std + mean).clamp(0, 1).flatten(0, 1)
        grid = make_grid(x, nrow=columns or self.ipc, padding=1, pad_value=1.0)
        scale = max(1, 128 // self.images.shape[-1])
        img = Image.fromarray((grid.permute(1, 2, 0).squeeze(-1) * 255).round().byte().numpy())
        return img.resize((img.width * scale, img.height * scale), Image.NEAREST)

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (see the module docstring for the format); equal sets write equal bytes, also when
        ``meta`` came back from a checkpoint (a resumed run)."""
        _, labels = self.expanded()
        return save_torch(path, {"format": FORMAT, "images": self.images.detach().cpu().float(),
                                 "factor": self.factor, "labels": labels.cpu(), "meta": interned(self.meta)})

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu") -> SyntheticSet:
        """Read a file written by :meth:`save`; a wrong or damaged file raises ``CorruptFileError``."""
        obj = load_torch(path)
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise CorruptFileError(f"{path} is not a synthetic set written by hdd_lib (expected format {FORMAT!r})")
        if not isinstance(obj.get("images"), torch.Tensor) or "factor" not in obj:
            raise CorruptFileError(f"{path} is damaged: it has no images or no factor; re-run the distillation")
        return cls(obj["images"].to(device), factor=int(obj["factor"]), meta=obj.get("meta", {}))
