r"""Pretrained-pool strategies, as released: NCFM (Wang et al., CVPR 2025) and DSDM (Li et al., ACM MM 2024).

Both embed with a pool pretrained on the real data (:mod:`hdd_lib.pool`: the ``pretrain`` stage or
``python -m hdd_lib pretrain``), read from ``path`` or ``pools/<dataset>/<strategy>``; a pool that is
missing or built for another dataset, data copy, architecture or settings is refused. Each
iteration draws a member :math:`k`; ``mode="interpolate"`` (NCFM) embeds with
:math:`\lambda\theta^{init}_k + (1-\lambda)\theta^{trained}_k`, :math:`\lambda \sim U(0,1)`, plus
``calibration`` :math:`\times \sum_c \mathrm{mean}\, CE(\theta^{trained}_k(a_c(x_c)), c)` (:math:`a_c`: a DSA
transform per class); ``mode="draw"`` (DSDM) with :math:`\theta^{trained}_k`. Images are IDM's
``factor x factor`` mosaics, stepped in pixel space and clamped to [0, 1] (:class:`PixelSpace`):
NCFM AdamW (lr 1e-3, weight decay 0.01), DSDM SGD (momentum 0.5, lr 0.1 ipc/10); with
``per_class_steps`` once per class, in class order, with that class's gradient alone, as both
releases do (here all gradients are taken before the first step). Not reproduced: NCFM's separate
calibration steps (added to the matching loss here) and its ReduceLROnPlateau on the images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .. import augment, pool
from ..config import Count, NonNegative, Settings
from ..data import DatasetSpec
from ..synset import decode
from .base import STRATEGIES, Strategy

__all__ = ["PoolSettings", "DSDMPoolSettings", "PixelSpace", "Pool", "NCFM", "DSDM"]


@dataclass(frozen=True)
class PoolSettings(Settings):
    """A pretrained-pool strategy's settings; these defaults are NCFM's."""

    mode: Literal["interpolate", "draw"] = "interpolate"
    calibration: NonNegative = 1.0  # weight of the CE through the trained member (0: none)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    per_class_steps: bool = True
    factor: Count = 2
    path: str | None = None  # the pool folder; None: pools/<dataset>/<strategy> (scratch/ first, then results/)
    pretrain: pool.PretrainConfig = field(default_factory=pool.PretrainConfig)


@dataclass(frozen=True)
class DSDMPoolSettings(PoolSettings):
    """DSDM's defaults."""

    mode: Literal["interpolate", "draw"] = "draw"
    calibration: NonNegative = 0.0
    optimizer: Literal["adamw", "sgd"] = "sgd"
    pretrain: pool.PretrainConfig = field(default_factory=lambda: pool.PretrainConfig(
        nets=10, epochs=20, batch=256, cutmix=1.0, milestones=()))


class PixelSpace:
    """``make([p])`` steps the pixels :math:`p = x\\sigma + \\mu` of the stored images ``x`` (``syn``), using
    :math:`\\partial L/\\partial p = \\sigma^{-1}\\partial L/\\partial x`; then clamps ``p`` to [0, 1] and writes ``x``."""

    def __init__(self, syn: torch.Tensor, spec: DatasetSpec, make: Callable, *, per_class: bool) -> None:
        self.mean, self.std = (torch.tensor(v, device=syn.device).view(-1, 1, 1) for v in (spec.mean, spec.std))
        self.syn, self.per_class = syn, per_class
        self.p = (syn.detach() * self.std + self.mean).clamp(0, 1).requires_grad_(True)
        self.opt = make([self.p])
        self._write()

    @torch.no_grad()
    def _write(self) -> None:
        self.syn.copy_((self.p - self.mean) / self.std)

    def zero_grad(self) -> None:
        self.syn.grad = self.p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        g = torch.zeros_like(self.p) if self.syn.grad is None else self.syn.grad / self.std
        classes = torch.arange(len(g), device=g.device).view(-1, *[1] * (g.dim() - 1))
        for c in range(len(g)) if self.per_class else [None]:
            self.p.grad = g if c is None else g * (classes == c)
            self.opt.step()
        self.p.clamp_(0, 1)
        self._write()

    def state_dict(self) -> dict:
        return {"pixels": self.p.detach().clone(), "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.p.copy_(state["pixels"])
        self.opt.load_state_dict(state["optimizer"])
        self._write()


class Pool(Strategy):
    Settings = PoolSettings

    @property
    def factor(self) -> int:
        return self.settings.factor

    def optimizer(self, syn: torch.Tensor) -> PixelSpace:
        lr = self.cfg.lr_img
        make = (lambda p: torch.optim.AdamW(p, lr=lr)) if self.settings.optimizer == "adamw" else \
            (lambda p: torch.optim.SGD(p, lr=lr, momentum=0.5))
        return PixelSpace(syn, self.spec, make, per_class=self.settings.per_class_steps)

    def start(self, generator: torch.Generator) -> None:
        from ..params import Paths, find_root
        s = self.settings
        if s.path:
            folder = Path(s.path)
        else:
            try:
                folder = Paths.for_root(find_root()).find(f"pools/{self.spec.name}/{self.name}")
            except FileNotFoundError:
                raise FileNotFoundError(f"the {self.name} strategy needs its pretrained pool: outside the hdd repository "
                                        f"give strategy.path (a folder written by hdd_lib.pool.pretrain)") from None
        nets = pool.load(folder, pool.built_for(self.train, self.cfg.model, s.pretrain))
        self.members = [[[t.to(self.device) for t in n[w].values()] for w in ("init", "trained")] for n in nets]
        spare = torch.Generator().manual_seed(0)  # weights overwritten each iteration
        self.net = self.make_model(spare).requires_grad_(False).train()
        self.embed = self.net.embed
        self.trained = self.make_model(spare).requires_grad_(False).eval() if s.calibration else None

    def network(self, iteration: int, generator: torch.Generator) -> nn.Module:
        init, trained = self.members[int(torch.randint(len(self.members), (1,), generator=generator))]
        lam = float(torch.rand((), generator=generator)) if self.settings.mode == "interpolate" else 0.0
        with torch.no_grad():
            for slot, a, b in zip(self.net.state_dict().values(), init, trained):
                slot.copy_(torch.lerp(b, a, lam) if lam and slot.is_floating_point() else b)
            if self.trained is not None:
                for slot, b in zip(self.trained.state_dict().values(), trained):
                    slot.copy_(b)
        self.gen = generator
        return self.net

    def images(self, syn: torch.Tensor) -> torch.Tensor:
        self.syn_images = decode(syn, self.factor).flatten(1, 2) if self.factor > 1 else syn
        return self.syn_images

    def regulariser(self, net: nn.Module, f_syn: torch.Tensor) -> torch.Tensor | None:
        if self.trained is None:
            return None
        x = self.syn_images
        c, m = x.shape[:2]
        x = augment.apply(x, augment.sample(self.cfg.dsa, c, per_group=1, generator=self.gen, image_size=tuple(x.shape[-2:])))
        logits = self.trained(x.flatten(0, 1)).float()
        labels = torch.arange(c, device=logits.device).repeat_interleave(m)
        return self.settings.calibration * F.cross_entropy(logits, labels, reduction="none").view(c, m).mean(1).sum()


@STRATEGIES.register("ncfm", label="NCFM")
class NCFM(Pool):
    base_loss = "ncfm"


@STRATEGIES.register("dsdm", label="DSDM")
class DSDM(Pool):
    base_loss = "dsdm"
    Settings = DSDMPoolSettings
