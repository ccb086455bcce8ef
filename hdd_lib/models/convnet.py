r"""The DC-benchmark ConvNet (Zhao & Bilen), the network that embeds images in DM, IDM, HDD and GeoDM.

``depth`` blocks of :math:`\text{conv}_{3\times 3}(\text{width}) \to \text{norm} \to \text{act}
\to \text{pool}_{2\times 2}` and a linear classifier on the flattened last block. The defaults
(width 128, depth 3, instance norm, ReLU, average pooling) give :math:`128 \cdot 4 \cdot 4 = 2048`
features for 32x32 (and 28x28) inputs (SPEC, "Common protocol"). Instance norm works per sample,
so a batch embeds exactly like its samples one by one: class-batched forwards are exact.
"""

from __future__ import annotations

from torch import nn

from .layers import ACTS, NORMS, POOLS, Backbone, check_choice, check_positive_int, make_act, make_norm, make_pool
from .layers import stem_padding

__all__ = ["ConvNet"]


class ConvNet(Backbone):
    """Conv3x3 -> norm -> act -> pool blocks and a linear classifier.

    ``first_padding=None``: 1, or 3 at 28x28 (28 -> 32); the official code pads by 3 for every 1-channel
    input (``first_padding=3``). ``feature_shape = (width, s, s)``, ``s = floor((image_size + 2p - 2) / 2**depth)``
    with pooling.
    """

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
