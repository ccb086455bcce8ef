r"""The DC benchmark's cross-architecture pool for small images: AlexNet, VGG11, ResNet18.

Each takes ``norm`` in :data:`~hdd_lib.models.layers.CHANNEL_NORMS` (the benchmark's "BN"
variants are ``norm="batchnorm"``) and pads a 28x28 input to 32x32 in its first convolution.

* AlexNet: convolutions of 128, 192, 256, 192, 192 channels (kernels 5, 5, 3, 3, 3, "same"),
  each -> norm -> ReLU, 2x2 max pooling after the 1st, 2nd and 5th: ``192 (s/8)^2`` features
  (3072 at 32 px, 12288 at 64 px).
* VGG11: 64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M (3x3 conv -> norm -> ReLU; M a 2x2
  max pooling): ``512 (s/32)^2`` features (512 at 32 px, 2048 at 64 px).
* ResNet18 (CIFAR style): a 3x3 stem (stride 1, no max pooling), four stages of two
  :class:`BasicBlock` (64, 128, 256, 512 channels; strides 1, 2, 2, 2), global average pooling:
  512 features at any size (the benchmark's fixed 4x4 pooling equals it at 32 px).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import CHANNEL_NORMS, Backbone, check_choice, effective_size, make_norm, stem_padding

__all__ = ["AlexNet", "VGG11", "ResNet18", "BasicBlock"]

#: ``(out_channels, kernel_size, max-pool after)`` of AlexNet's five convolutions.
ALEXNET_CFG = ((128, 5, True), (192, 5, True), (256, 3, False), (192, 3, False), (192, 3, True))
VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
#: ``(channels, blocks, stride of the first block)`` of ResNet18's stages.
RESNET18_STAGES = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))


class AlexNet(Backbone):
    """Small-image AlexNet; ``ValueError`` for ``image_size < 8`` (three poolings). Default norm "none"."""

    def __init__(self, channels: int, num_classes: int, image_size: int, *, norm: str = "none") -> None:
        super().__init__(channels, num_classes, image_size)
        self.norm = check_choice("norm", norm, CHANNEL_NORMS)
        size = effective_size(image_size)
        if size < 8:
            raise ValueError(f"AlexNet needs image_size >= 8 (three 2x2 poolings), got image_size={image_size}")
        layers: list[nn.Module] = []
        in_channels = channels
        for i, (out_channels, kernel, pooled) in enumerate(ALEXNET_CFG):
            padding = stem_padding(image_size, kernel) if i == 0 else kernel // 2
            layers += [nn.Conv2d(in_channels, out_channels, kernel, padding=padding), make_norm(norm, out_channels)]
            layers += [nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2)] if pooled else [nn.ReLU()]
            size //= 2 if pooled else 1
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self._add_classifier(in_channels * size * size)


class VGG11(Backbone):
    """VGG11 with one linear classifier; ``ValueError`` below 32 px (five poolings; 28 counts as 32)."""

    def __init__(self, channels: int, num_classes: int, image_size: int, *, norm: str = "instancenorm") -> None:
        super().__init__(channels, num_classes, image_size)
        self.norm = check_choice("norm", norm, CHANNEL_NORMS)
        size = effective_size(image_size)
        if size < 32:
            raise ValueError(f"VGG11 needs image_size >= 32 (5 2x2 poolings; 28 counts as 32), "
                             f"got image_size={image_size}")
        layers: list[nn.Module] = []
        in_channels = channels
        for v in VGG11_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                size //= 2
                continue
            padding = stem_padding(image_size, 3) if not layers else 1
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=padding), make_norm(norm, v), nn.ReLU()]
            in_channels = v
        self.features = nn.Sequential(*layers)
        self._add_classifier(in_channels * size * size)


class BasicBlock(nn.Module):
    r"""Two 3x3 convolutions with a residual connection (shortcut: identity, or strided 1x1 conv + norm).

    .. math:: y = \text{relu}(\text{norm}(\text{conv}(\text{relu}(\text{norm}(\text{conv}(x))))) + \text{shortcut}(x))
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = make_norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.norm2 = make_norm(norm, out_channels)
        self.act = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.shortcut = nn.Sequential(conv, make_norm(norm, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm1(self.conv1(x)))
        return self.act(self.norm2(self.conv2(out)) + self.shortcut(x))


class ResNet18(Backbone):
    """CIFAR-style ResNet18 (BasicBlock, [2, 2, 2, 2]), no conv bias; instance norm needs >= 9 px."""

    def __init__(self, channels: int, num_classes: int, image_size: int, *, norm: str = "instancenorm") -> None:
        super().__init__(channels, num_classes, image_size)
        self.norm = check_choice("norm", norm, CHANNEL_NORMS)
        side = image_size + 2 * stem_padding(image_size, 3) - 2  # after the stem
        for _, _, stride in RESNET18_STAGES:
            side = (side - 1) // stride + 1
        if norm == "instancenorm" and side < 2:
            raise ValueError(f"ResNet18 with norm='instancenorm' needs image_size >= 9 (its last stage is "
                             f"{side}x{side} at image_size={image_size}, where instance norm outputs zeros); "
                             "use norm='batchnorm' or larger images")
        stem = nn.Conv2d(channels, 64, 3, stride=1, padding=stem_padding(image_size, 3), bias=False)
        layers: list[nn.Module] = [stem, make_norm(norm, 64), nn.ReLU()]
        in_channels = 64
        for out_channels, blocks, stride in RESNET18_STAGES:
            for b in range(blocks):
                layers.append(BasicBlock(in_channels, out_channels, stride if b == 0 else 1, norm))
                in_channels = out_channels
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self._add_classifier(in_channels)
