"""ResNet18 for small images (CIFAR-style, the DC benchmark's cross-architecture variant).

A 3x3 stem convolution (stride 1, no max pooling) -> norm -> ReLU, four stages of two
:class:`BasicBlock` each (64, 128, 256, 512 channels; strides 1, 2, 2, 2) and a global average
pooling, so :meth:`~hdd_lib.models.base.Backbone.embed` returns 512 features for any input size.
The DC benchmark pools with a fixed 4x4 window, which equals the global pooling for 32x32 inputs;
the global pooling also fits 28x28 and 64x64. Convolutions have no bias (norm layers follow).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Backbone
from .layers import CHANNEL_NORMS, check_choice, make_norm, stem_padding

__all__ = ["BasicBlock", "ResNet18"]

#: ``(channels, blocks, stride of the first block)`` of the four stages.
RESNET18_STAGES = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))


class BasicBlock(nn.Module):
    r"""Two 3x3 convolutions with a residual connection.

    .. math::
        y = \text{relu}\big(\text{norm}(\text{conv}(\text{relu}(\text{norm}(\text{conv}(x)))))
            + \text{shortcut}(x)\big)

    The shortcut is the identity, or a strided 1x1 convolution and a norm where the shape changes.

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int
        Stride of the first convolution (and of the shortcut).
    norm : str
        One of :data:`~hdd_lib.models.layers.CHANNEL_NORMS`.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = make_norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.norm2 = make_norm(norm, out_channels)
        self.act = nn.ReLU()
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), make_norm(norm, out_channels)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNet18(Backbone):
    """CIFAR-style ResNet18 (BasicBlock, [2, 2, 2, 2]) with instance or batch norm.

    Parameters
    ----------
    channels, num_classes, image_size : int
        See :class:`~hdd_lib.models.base.Backbone`; 28 is padded to 32 by the stem.
    norm : {"instancenorm", "batchnorm", "groupnorm", "none"}, default "instancenorm"
        DC benchmark: ResNet18 instance norm, ResNet18BN batch norm.

    Raises
    ------
    ValueError
        For an unknown ``norm``, or instance norm on images under 9 px (the last stage would be 1x1).
    """

    def __init__(self, channels: int, num_classes: int, image_size: int, *, norm: str = "instancenorm") -> None:
        super().__init__(channels, num_classes, image_size)
        self.norm = check_choice("norm", norm, CHANNEL_NORMS)
        side = image_size + 2 * stem_padding(image_size, 3) - 2  # after the stem
        for _, _, stride in RESNET18_STAGES:
            side = (side - 1) // stride + 1
        if norm == "instancenorm" and side < 2:
            # instance norm of a 1x1 map is (x - x) / sigma = 0: every input gives the same logits
            raise ValueError(
                f"ResNet18 with norm='instancenorm' needs image_size >= 9 (its last stage is {side}x{side} "
                f"at image_size={image_size}, where instance norm outputs zeros); use norm='batchnorm' or "
                "larger images"
            )
        layers: list[nn.Module] = [
            nn.Conv2d(channels, 64, 3, stride=1, padding=stem_padding(image_size, 3), bias=False),
            make_norm(norm, 64),
            nn.ReLU(),
        ]
        in_channels = 64
        for out_channels, blocks, stride in RESNET18_STAGES:
            for b in range(blocks):
                layers.append(BasicBlock(in_channels, out_channels, stride if b == 0 else 1, norm))
                in_channels = out_channels
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        self._add_classifier(in_channels)
