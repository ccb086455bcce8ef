r"""The architectures by name (:data:`MODELS`): the DC-benchmark ConvNet and the cross-architecture pool.

* ConvNet (Zhao & Bilen), the network that embeds images in DM, IDM, HDD and GeoDM: by default (width 128, depth 3,
  instance norm, ReLU, average pooling) :math:`128 \cdot 4 \cdot 4 = 2048` features for 32x32 (and 28x28) inputs;
  instance norm works per sample, so a batch embeds exactly like its samples one by one. The pool below takes
  ``norm`` in :data:`~hdd_lib.models.layers.CHANNEL_NORMS` (the benchmark's "BN" variants are ``norm="batchnorm"``).
* AlexNet: convolutions of 128, 192, 256, 192, 192 channels (kernels 5, 5, 3, 3, 3, "same"), each -> norm -> ReLU,
  2x2 max pooling after the 1st, 2nd and 5th: ``192 (s/8)^2`` features (3072 at 32 px, 12288 at 64 px).
* VGG11: 64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M (3x3 conv -> norm -> ReLU; M a 2x2 max pooling):
  ``512 (s/32)^2`` features (512 at 32 px, 2048 at 64 px).
* ResNet18 (CIFAR style): a 3x3 stem (stride 1, no max pooling), four stages of two :class:`BasicBlock` (64, 128,
  256, 512 channels; strides 1, 2, 2, 2), global average pooling: 512 features at any size (the benchmark's fixed
  4x4 pooling equals it at 32 px).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ACTS, CHANNEL_NORMS, NORMS, POOLS, Backbone, check_choice, check_positive_int, effective_size
from .layers import make_act, make_norm, make_pool, stem_padding

__all__ = ["MODELS", "ConvNet", "AlexNet", "VGG11", "ResNet18", "BasicBlock"]

#: ``(out_channels, kernel_size, max-pool after)`` of AlexNet's and VGG11's convolutions.
ALEXNET_CFG = ((128, 5, True), (192, 5, True), (256, 3, False), (192, 3, False), (192, 3, True))
VGG11_CFG = ((64, 3, True), (128, 3, True), (256, 3, False), (256, 3, True), (512, 3, False), (512, 3, True),
             (512, 3, False), (512, 3, True))  # fmt: skip
#: ``(channels, blocks, stride of the first block)`` of ResNet18's stages.
RESNET18_STAGES = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))


class ConvNet(Backbone):
    """Conv3x3 -> norm -> act -> pool blocks and a linear classifier; ``first_padding=None``: 1, or 3 at 28x28
    (the official code pads 3 for every 1-channel input). ``feature_shape = (width, s, s)``,
    ``s = (image_size + 2p - 2) // 2**depth`` with pooling."""

    def __init__(self, channels: int, num_classes: int, image_size: int, *, width: int = 128, depth: int = 3,
                 act: str = "relu", norm: str = "instancenorm", pool: str = "avgpooling",
                 first_padding: int | None = None) -> None:
        super().__init__(channels, num_classes, image_size)
        check_positive_int("width", width)
        check_positive_int("depth", depth)
        check_choice("act", act, ACTS)
        check_choice("norm", norm, NORMS)
        check_choice("pool", pool, POOLS)
        if first_padding is None:
            first_padding = stem_padding(image_size, 3)
        elif isinstance(first_padding, bool) or not isinstance(first_padding, int) or first_padding < 0:
            raise ValueError(f"first_padding must be None or an integer >= 0, got first_padding={first_padding!r}")
        self.width, self.depth, self.act, self.norm, self.pool = width, depth, act, norm, pool
        self.first_padding = first_padding
        size = image_size + 2 * first_padding - 2  # after the first 3x3 convolution
        blocks = []
        for i in range(depth):
            if size < 1 or (pool != "none" and size < 2):
                raise ValueError(f"ConvNet with depth={depth} and pool={pool!r} shrinks a {image_size}x{image_size} "
                                 f"input below 1 pixel (block {i + 1} receives a {size}x{size} map); use a smaller "
                                 f"depth, a larger image_size or pool='none'")
            padding = first_padding if i == 0 else 1
            conv = nn.Conv2d(channels if i == 0 else width, width, kernel_size=3, padding=padding)
            blocks.append(nn.Sequential(conv, make_norm(norm, width, size), make_act(act), make_pool(pool)))
            if pool != "none":
                size //= 2
        self.features = nn.Sequential(*blocks)
        self.feature_shape = (width, size, size)
        self._add_classifier(width * size * size)


class _ConvStack(Backbone):
    """Conv ("same") -> norm -> ReLU [-> 2x2 max pooling] per ``CFG`` entry, one linear classifier;
    ``ValueError`` when the poolings would shrink ``image_size`` (28 counts as 32) below one pixel."""

    CFG: tuple[tuple[int, int, bool], ...] = ()
    NEEDS = ""

    def __init__(self, channels: int, num_classes: int, image_size: int, *, norm: str) -> None:
        super().__init__(channels, num_classes, image_size)
        self.norm = check_choice("norm", norm, CHANNEL_NORMS)
        size = effective_size(image_size)
        if size < 2 ** sum(pooled for _, _, pooled in self.CFG):
            raise ValueError(f"{type(self).__name__} needs image_size >= {self.NEEDS}, got image_size={image_size}")
        layers: list[nn.Module] = []
        in_channels = channels
        for i, (out_channels, kernel, pooled) in enumerate(self.CFG):
            padding = stem_padding(image_size, kernel) if i == 0 else kernel // 2
            layers += [nn.Conv2d(in_channels, out_channels, kernel, padding=padding), make_norm(norm, out_channels)]
            layers += [nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2)] if pooled else [nn.ReLU()]
            size //= 2 if pooled else 1
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self._add_classifier(in_channels * size * size)


class AlexNet(_ConvStack):
    """Small-image AlexNet; ``ValueError`` for ``image_size < 8`` (three poolings). Default norm "none"."""

    CFG, NEEDS = ALEXNET_CFG, "8 (three 2x2 poolings)"

    def __init__(self, channels: int, num_classes: int, image_size: int, *, norm: str = "none") -> None:
        super().__init__(channels, num_classes, image_size, norm=norm)


class VGG11(_ConvStack):
    """VGG11 with one linear classifier; ``ValueError`` below 32 px (five poolings; 28 counts as 32)."""

    CFG, NEEDS = VGG11_CFG, "32 (5 2x2 poolings; 28 counts as 32)"

    def __init__(self, channels: int, num_classes: int, image_size: int, *, norm: str = "instancenorm") -> None:
        super().__init__(channels, num_classes, image_size, norm=norm)


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


MODELS: dict[str, type[Backbone]] = {"convnet": ConvNet, "alexnet": AlexNet, "vgg11": VGG11, "resnet18": ResNet18}
