"""AlexNet for small images (the DC benchmark's cross-architecture variant).

Five convolutions (128, 192, 256, 192, 192 channels; kernels 5, 5, 3, 3, 3, "same" padding),
each followed by an optional norm and ReLU, with 2x2 max pooling after the first, the second and
the fifth; a linear classifier on the flattened ``192 x s/8 x s/8`` map (3072 features for 32x32
and 28x28 inputs, 12288 for 64x64).
"""

from __future__ import annotations

from torch import nn

from .base import Backbone
from .layers import CHANNEL_NORMS, check_choice, effective_size, make_norm, stem_padding

__all__ = ["AlexNet"]

#: ``(out_channels, kernel_size, max-pool after)`` of the five convolutions.
ALEXNET_CFG = ((128, 5, True), (192, 5, True), (256, 3, False), (192, 3, False), (192, 3, True))


class AlexNet(Backbone):
    """Small-image AlexNet: 5 convolutions, 3 max poolings, a linear classifier.

    Parameters
    ----------
    channels, num_classes, image_size : int
        See :class:`~hdd_lib.models.base.Backbone`; ``image_size`` must be at least 8 (three
        poolings), 28 is padded to 32.
    norm : {"none", "instancenorm", "batchnorm", "groupnorm"}, default "none"
        Normalisation after each convolution (the DC benchmark's AlexNet has none, AlexNetBN
        batch norm).

    Raises
    ------
    ValueError
        For an unknown ``norm`` or an ``image_size`` below 8.
    """

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
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel_size=kernel, padding=padding),
                make_norm(norm, out_channels),
                nn.ReLU(),
            ]
            if pooled:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                size //= 2
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self._add_classifier(in_channels * size * size)
