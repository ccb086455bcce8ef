"""VGG11 for small images (the DC benchmark's cross-architecture variant).

Configuration 64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M: each number is a 3x3
convolution ("same" padding) -> norm -> ReLU, each ``M`` a 2x2 max pooling. Five poolings take a
32x32 input (or a 28x28 one, padded to 32) to 1x1, so the classifier sees 512 features; 64x64
inputs give ``512 x 2 x 2 = 2048``.
"""

from __future__ import annotations

from torch import nn

from .base import Backbone
from .layers import CHANNEL_NORMS, check_choice, effective_size, make_norm, stem_padding

__all__ = ["VGG11", "VGG11_CFG"]

#: Output channels of each convolution; ``"M"`` is a 2x2 max pooling.
VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(Backbone):
    """VGG11 with instance or batch norm and a single linear classifier.

    Parameters
    ----------
    channels, num_classes, image_size : int
        See :class:`~hdd_lib.models.base.Backbone`; ``image_size`` must be at least 32 after the
        28 -> 32 padding (five poolings).
    norm : {"instancenorm", "batchnorm", "groupnorm", "none"}, default "instancenorm"
        Normalisation after each convolution (DC benchmark: VGG11 instance norm, VGG11BN batch
        norm).

    Raises
    ------
    ValueError
        For an unknown ``norm`` or an ``image_size`` that five poolings would shrink below 1 pixel.
    """

    def __init__(self, channels: int, num_classes: int, image_size: int, *, norm: str = "instancenorm") -> None:
        super().__init__(channels, num_classes, image_size)
        self.norm = check_choice("norm", norm, CHANNEL_NORMS)
        size = effective_size(image_size)
        n_pool = VGG11_CFG.count("M")
        if size < 2**n_pool:
            raise ValueError(
                f"VGG11 needs image_size >= {2**n_pool} ({n_pool} 2x2 poolings; 28 counts as 32), "
                f"got image_size={image_size}"
            )

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
