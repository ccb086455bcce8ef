"""The strategy interface and the ``STRATEGIES`` registry: everything of a method but the loss.

Per iteration :func:`hdd_lib.distill.run` calls ``network`` -> ``images`` -> (embed, match) ->
``regulariser`` -> step -> ``after_step``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import DistillConfig, Registry, Settings, from_dict
from ..data import ImageSet
from ..models import get_model
from ..synset import encode

__all__ = ["STRATEGIES", "Strategy", "get_strategy", "method_label"]

STRATEGIES = Registry("strategy", __package__)


@dataclass(frozen=True)
class NoSettings(Settings):
    """A strategy without settings of its own."""


class Strategy:
    """Base class; the defaults are DM's (Zhao & Bilen): real-image init, SGD(momentum 0.5) on the images.

    ``cfg.strategy`` holds this strategy's own settings, validated by ``Settings``; ``train`` is on ``device``.
    """

    name: str = "base"
    label: str = "base"
    Settings: type[Settings] = NoSettings
    #: Side of the mosaic each stored image holds (IDM's partition; 1: plain images).
    factor: int = 1
    #: The loss the strategy's paper matches with; the method is named by the strategy alone with it.
    base_loss: str = "dm"

    def __init__(self, cfg: DistillConfig, train: ImageSet, device: torch.device) -> None:
        self.settings = from_dict(self.Settings, {k: v for k, v in cfg.strategy.items() if k != "name"},
                                  prefix="strategy.")
        self.cfg, self.train, self.device, self.spec = cfg, train, device, train.spec

    def make_model(self, generator: torch.Generator) -> nn.Module:
        """A freshly initialised network of ``cfg.model``, drawn from ``generator``, on the device."""
        spec, m = self.spec, self.cfg.model
        model = get_model(m.name, spec.channels, spec.num_classes, spec.image_size[0], generator=generator,
                          **m.kwargs(spec.image_size[0], spec.channels)).to(self.device)
        if self.cfg.channels_last and self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        return model

    def initial_images(self, generator: torch.Generator) -> torch.Tensor:
        """Stored images ``[C, ipc, ch, H, W]``: real images (``factor**2`` mosaics) or noise (``cfg.init``)."""
        cfg, spec, f = self.cfg, self.spec, self.factor
        if cfg.init == "noise":
            return torch.randn(spec.num_classes, cfg.ipc, *spec.shape, generator=generator)
        real = self.train.sample(cfg.ipc * f * f, generator=generator)
        return encode(real.view(spec.num_classes, cfg.ipc, f * f, *spec.shape), f).detach().clone()

    def optimizer(self, syn: torch.Tensor) -> Any:
        """The images' optimiser: ``zero_grad``, ``step``, ``state_dict``, ``load_state_dict``."""
        return torch.optim.SGD([syn], lr=self.cfg.lr_img, momentum=0.5)

    def start(self, generator: torch.Generator) -> None:
        """Build the networks (called once, after the images are drawn)."""

    def images(self, syn: torch.Tensor) -> torch.Tensor:
        """The training images of this iteration, ``[C, M, ch, H, W]``."""
        return syn

    def network(self, iteration: int, generator: torch.Generator) -> nn.Module:  # pragma: no cover
        """The network that embeds this iteration's images."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Features ``[B, D]`` of images ``[B, ch, H, W]`` through this iteration's network."""
        raise NotImplementedError

    def regulariser(self, net: nn.Module, f_syn: torch.Tensor) -> torch.Tensor | None:
        """A term added to the matching loss (none by default)."""
        return None

    def after_step(self, generator: torch.Generator) -> None:
        """Work after the image step (IDM trains its queue)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def get_strategy(cfg: DistillConfig, train: ImageSet, device: torch.device) -> Strategy:
    """The strategy named by ``cfg.strategy["name"]``, for this run."""
    return STRATEGIES.get(cfg.strategy["name"])(cfg, train, device)


def method_label(strategy: str | dict, loss: Any) -> str:
    """A method's display name from the registries: the strategy's label, ``+`` the labels of the losses
    other than the strategy's own (``DM``, ``DM+HDD``, ``IDM+GeoDM``, ``NCFM+HDD`` for ``[ncfm, hdd]``)."""
    from ..losses import LOSSES

    cls = STRATEGIES.get(strategy["name"] if isinstance(strategy, dict) else strategy)
    names = [t if isinstance(t, str) else t["name"] for t in (loss if isinstance(loss, list) else [loss])]
    return "+".join([cls.label, *(LOSSES.get(n).label for n in names if n != cls.base_loss)])
