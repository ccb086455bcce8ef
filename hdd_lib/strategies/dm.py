"""DM (Zhao & Bilen, WACV 2023): every iteration a freshly initialised network, frozen, in train mode."""

from __future__ import annotations

import torch

from ..models import reinit_
from ..runtime import compiled
from .base import STRATEGIES, Strategy

__all__ = ["DM"]


@STRATEGIES.register("dm", label="DM")
class DM(Strategy):
    """One module re-drawn in place each iteration (:func:`~hdd_lib.models.reinit_`), so with
    ``compile=True`` its ``embed`` is compiled once and never recompiled."""

    def start(self, generator: torch.Generator) -> None:
        self.net = self.make_model(generator).requires_grad_(False).train()
        self.embed = compiled(self.net.embed, name="the DM embedding") if self.cfg.compile else self.net.embed

    def network(self, iteration: int, generator: torch.Generator) -> torch.nn.Module:
        return reinit_(self.net, generator)
