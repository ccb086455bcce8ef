"""A distilled (synthetic) set: stored images, how to expand them, and its record; saved atomically.

File format (``torch.save`` of plain tensors and containers, loadable with ``weights_only=True``)::

    {"format": "hdd_lib.synset/1", "images": [C, ipc, ch, H, W] float32 (normalised),
     "factor": 1 | 2 (IDM mosaics), "labels": [N] of the expanded set, "meta": {...}}

``meta`` holds the dataset spec, the full config, provenance (git commit, device, versions, data
digest) and timings, so a file is self-describing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import idm
from .storage import CorruptFileError, load_torch, save_torch

__all__ = ["SyntheticSet", "FORMAT"]

FORMAT = "hdd_lib.synset/1"


@dataclass
class SyntheticSet:
    """``images`` ``[C, ipc, ch, H, W]`` as optimised (mosaics of ``factor x factor`` when ``factor > 1``).

    Attributes
    ----------
    images : stored images, normalised with the dataset's mean/std
    factor : IDM partition factor (1: plain images)
    meta : dataset spec, config, provenance, timings
    """

    images: torch.Tensor
    factor: int = 1
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dim() != 5:
            raise ValueError(f"images must be [C, ipc, ch, H, W], got shape {tuple(self.images.shape)}")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got factor={self.factor}")

    @property
    def num_classes(self) -> int:
        return self.images.shape[0]

    @property
    def ipc(self) -> int:
        """Stored images per class."""
        return self.images.shape[1]

    def per_class(self) -> torch.Tensor:
        """Training images grouped by class, ``[C, ipc * factor**2, ch, H, W]``."""
        x = idm.decode(self.images, self.factor)  # [C, ipc, f*f, ch, H, W]
        return x.flatten(1, 2)

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

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (see the module docstring for the format)."""
        _, labels = self.expanded()
        return save_torch(path, {"format": FORMAT, "images": self.images.detach().cpu().float(),
                                 "factor": self.factor, "labels": labels.cpu(), "meta": self.meta})

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu") -> SyntheticSet:
        """Read a file written by :meth:`save`; a wrong or damaged file raises ``CorruptFileError``."""
        obj = load_torch(path)
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise CorruptFileError(f"{path} is not a synthetic set written by hdd_lib (expected format {FORMAT!r})")
        return cls(obj["images"].to(device), factor=int(obj["factor"]), meta=obj.get("meta", {}))
