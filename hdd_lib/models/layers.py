"""What every architecture shares: the :class:`Backbone` interface, argument checks, norm/act/pool layers.

Variants use the DC benchmark's spellings (``"instancenorm"``, ``"relu"``, ``"avgpooling"``); every architecture's
first convolution pads 28x28 inputs by :data:`PAD_28` more pixels per side, so they embed like 32x32 ones.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Backbone", "NORMS", "CHANNEL_NORMS", "ACTS", "POOLS", "check_positive_int", "check_choice",
           "effective_size", "stem_padding", "make_norm", "make_act", "make_pool"]  # fmt: skip

NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none")
#: The norms that need no feature-map size (AlexNet, VGG11, ResNet18).
CHANNEL_NORMS = ("instancenorm", "batchnorm", "groupnorm", "none")
ACTS = ("relu", "sigmoid", "leakyrelu")
POOLS = ("avgpooling", "maxpooling", "none")
GROUPNORM_GROUPS = 4  # the DC benchmark's value
PAD_28 = 2  # 28 + 2 * 2 = 32
LEAKY_SLOPE = 0.01


def check_positive_int(name: str, value: object) -> int:
    """``value`` if it is an integer >= 1, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {name}={value!r}")
    return value


def check_choice(name: str, value: object, known: tuple[str, ...]) -> str:
    """``value`` if it is one of ``known``, else ``ValueError`` naming both."""
    if value not in known:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(known)}")
    return value  # type: ignore[return-value]


def effective_size(image_size: int) -> int:
    """Side after the first "same" convolution: 32 for 28x28 inputs, else ``image_size``."""
    return image_size + 2 * PAD_28 if image_size == 28 else image_size


def stem_padding(image_size: int, kernel_size: int) -> int:
    """``kernel_size // 2`` ("same"), plus :data:`PAD_28` at 28x28: (1, 3, 4) for (32, 3), (28, 3), (28, 5)."""
    return kernel_size // 2 + (PAD_28 if image_size == 28 else 0)


def make_norm(norm: str, channels: int, size: int | None = None) -> nn.Module:
    """Norm of a ``[B, channels, size, size]`` map: ``instancenorm`` = ``GroupNorm(C, C)`` (DC benchmark),
    ``layernorm`` = ``LayerNorm([C, size, size])`` (needs ``size``), ``groupnorm`` 4 groups (callers check names)."""
    if norm == "instancenorm":
        return nn.GroupNorm(channels, channels, affine=True)
    if norm == "batchnorm":
        return nn.BatchNorm2d(channels)
    if norm == "layernorm":
        if size is None:
            raise ValueError("norm 'layernorm' needs the feature-map size; it is available in ConvNet only")
        return nn.LayerNorm([channels, size, size], elementwise_affine=True)
    if norm == "groupnorm":
        if channels % GROUPNORM_GROUPS:
            raise ValueError(f"norm 'groupnorm' uses {GROUPNORM_GROUPS} groups and needs a channel count divisible "
                             f"by {GROUPNORM_GROUPS}, got {channels} channels")
        return nn.GroupNorm(GROUPNORM_GROUPS, channels, affine=True)
    return nn.Identity()


def make_act(act: str) -> nn.Module:
    """``relu``, ``sigmoid`` or ``leakyrelu`` (slope 0.01)."""
    return nn.LeakyReLU(LEAKY_SLOPE) if act == "leakyrelu" else nn.ReLU() if act == "relu" else nn.Sigmoid()


def make_pool(pool: str) -> nn.Module:
    """2x2, stride-2 ``avgpooling`` / ``maxpooling`` (halves H and W, floor), or ``none``."""
    return nn.Identity() if pool == "none" else (nn.AvgPool2d if pool == "avgpooling" else nn.MaxPool2d)(2, 2)


class Backbone(nn.Module):
    """A feature extractor ``features`` and a linear ``classifier`` on its flattened output.

    Subclasses build ``self.features`` and call :meth:`_add_classifier` with ``feature_dim``.
    """

    features: nn.Module
    classifier: nn.Linear
    feature_dim: int

    def __init__(self, channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.image_size = check_positive_int("image_size", image_size)

    def _add_classifier(self, feature_dim: int) -> None:
        self.feature_dim = int(feature_dim)
        self.classifier = nn.Linear(self.feature_dim, self.num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened output of the last feature block, ``[B, feature_dim]``."""
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            shape = ", ".join(map(str, expected))
            raise ValueError(f"{type(self).__name__} expects images of shape [B, {shape}], got shape {tuple(x.shape)}")
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))
