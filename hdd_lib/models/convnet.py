r"""The DC-benchmark ConvNet: the network that embeds images in DM, IDM, HDD and GeoDM.

``depth`` blocks of

.. math::
    \text{conv}_{3\times 3}(\text{width}) \to \text{norm} \to \text{act} \to \text{pool}_{2\times 2}

followed by a linear classifier on the flattened output of the last block. With the defaults
(width 128, depth 3, instance norm, ReLU, average pooling) a 32x32 input (or a 28x28 one, padded
to 32x32 by the first convolution) gives :math:`128 \cdot 4 \cdot 4 = 2048` features (SPEC,
"Common protocol"). Instance norm normalises each sample on its own, so features of a batch equal
the features of its samples embedded one by one: class-batched forwards are exact.
"""

from __future__ import annotations

from torch import nn

from .base import Backbone
from .layers import (
    ACTS,
    NORMS,
    POOLS,
    check_choice,
    check_positive_int,
    effective_size,
    make_act,
    make_norm,
    make_pool,
    stem_padding,
)

__all__ = ["ConvNet"]


class ConvNet(Backbone):
    """Conv3x3 -> norm -> act -> pool blocks and a linear classifier (Zhao & Bilen's ConvNet).

    Parameters
    ----------
    channels : int
        Input channels.
    num_classes : int
        Number of logits.
    image_size : int
        Side of the square inputs; 28 is padded to 32 inside the first convolution (padding 3).
    width : int, default 128
        Channels of every convolution.
    depth : int, default 3
        Number of blocks.
    act : {"relu", "sigmoid", "leakyrelu"}, default "relu"
    norm : {"instancenorm", "batchnorm", "layernorm", "groupnorm", "none"}, default "instancenorm"
        See :func:`~hdd_lib.models.layers.make_norm`.
    pool : {"avgpooling", "maxpooling", "none"}, default "avgpooling"
        Each pooling halves the map (floor); ``"none"`` keeps it.

    Attributes
    ----------
    feature_dim : int
        ``width * s * s`` with ``s`` the side after ``depth`` blocks.
    feature_shape : tuple of int
        ``(width, s, s)``, the last block's output before flattening.

    Raises
    ------
    ValueError
        For an unknown ``act``/``norm``/``pool``, a non-positive size, or when ``depth`` poolings
        would shrink the map below 1 pixel.

    Examples
    --------
    >>> net = ConvNet(3, 10, 32)
    >>> net.feature_dim
    2048
    >>> ConvNet(1, 10, 8).feature_dim   # 8 -> 4 -> 2 -> 1
    128
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: int,
        *,
        width: int = 128,
        depth: int = 3,
        act: str = "relu",
        norm: str = "instancenorm",
        pool: str = "avgpooling",
    ) -> None:
        super().__init__(channels, num_classes, image_size)
        check_positive_int("width", width)
        check_positive_int("depth", depth)
        check_choice("act", act, ACTS)
        check_choice("norm", norm, NORMS)
        check_choice("pool", pool, POOLS)
        self.width, self.depth, self.act, self.norm, self.pool = width, depth, act, norm, pool

        size = effective_size(image_size)
        blocks = []
        in_channels = channels
        for i in range(depth):
            if pool != "none" and size < 2:
                raise ValueError(
                    f"ConvNet with depth={depth} and pool={pool!r} shrinks a {image_size}x{image_size} "
                    f"input below 1 pixel (block {i + 1} receives a {size}x{size} map); use a smaller "
                    f"depth, a larger image_size or pool='none'"
                )
            padding = stem_padding(image_size, 3) if i == 0 else 1
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(in_channels, width, kernel_size=3, padding=padding),
                    make_norm(norm, width, size),
                    make_act(act),
                    make_pool(pool),
                )
            )
            in_channels = width
            if pool != "none":
                size //= 2
        self.features = nn.Sequential(*blocks)
        self.feature_shape = (width, size, size)
        self._add_classifier(width * size * size)
