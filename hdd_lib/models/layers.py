"""Building blocks shared by the architectures: argument checks, norm / activation / pooling layers.

Every variant is chosen by a lower-case string (``norm="instancenorm"``, ``act="relu"``,
``pool="avgpooling"``), the spellings of the DC benchmark. An unknown string raises
``ValueError`` naming the argument, the value and the known choices.

28x28 inputs (MNIST, FashionMNIST) are treated as 32x32 by every architecture: the first
convolution gets :data:`PAD_28` extra pixels of zero padding on each side, so the feature sizes
equal those of 32x32 inputs (2048 for the default ConvNet).
"""

from __future__ import annotations

from torch import nn

__all__ = [
    "NORMS",
    "CHANNEL_NORMS",
    "ACTS",
    "POOLS",
    "GROUPNORM_GROUPS",
    "PAD_28",
    "check_positive_int",
    "check_choice",
    "effective_size",
    "stem_padding",
    "make_norm",
    "make_act",
    "make_pool",
]

#: Normalisation layers of :class:`~hdd_lib.models.ConvNet`.
NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none")
#: Normalisations that need no feature-map size (used by AlexNet, VGG11 and ResNet18).
CHANNEL_NORMS = ("instancenorm", "batchnorm", "groupnorm", "none")
ACTS = ("relu", "sigmoid", "leakyrelu")
POOLS = ("avgpooling", "maxpooling", "none")

#: Number of groups of ``norm="groupnorm"`` (the DC benchmark's value).
GROUPNORM_GROUPS = 4
#: Extra zero padding (per side) of the first convolution for 28x28 inputs: 28 + 2 * 2 = 32.
PAD_28 = 2
#: Negative slope of ``act="leakyrelu"``.
LEAKY_SLOPE = 0.01


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an integer >= 1, else raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {name}={value!r}")
    return value


def check_choice(name: str, value: object, known: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``known``, else raise ``ValueError`` naming both."""
    if value not in known:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(known)}")
    return value  # type: ignore[return-value]


def effective_size(image_size: int) -> int:
    """Side length seen after the first convolution: 32 for 28x28 inputs, ``image_size`` otherwise."""
    return image_size + 2 * PAD_28 if image_size == 28 else image_size


def stem_padding(image_size: int, kernel_size: int) -> int:
    """Padding of the first ``kernel_size`` convolution: "same" padding, plus :data:`PAD_28` at 28x28.

    Examples
    --------
    >>> stem_padding(32, 3), stem_padding(28, 3), stem_padding(28, 5)
    (1, 3, 4)
    """
    return kernel_size // 2 + (PAD_28 if image_size == 28 else 0)


def make_norm(norm: str, channels: int, size: int | None = None) -> nn.Module:
    """Normalisation layer for a ``[B, channels, size, size]`` feature map.

    Parameters
    ----------
    norm : {"instancenorm", "batchnorm", "layernorm", "groupnorm", "none"}
        ``"instancenorm"`` is ``GroupNorm(channels, channels, affine=True)`` (per sample and
        channel, as in the DC benchmark); ``"batchnorm"`` is ``BatchNorm2d``; ``"layernorm"``
        normalises each sample over ``(C, H, W)`` with an element-wise affine map (``LayerNorm``);
        ``"groupnorm"`` uses :data:`GROUPNORM_GROUPS` groups; ``"none"`` is the identity.
    channels : int
        Number of channels ``C``.
    size : int, optional
        Spatial side ``H = W``; required by ``"layernorm"`` only.

    Returns
    -------
    torch.nn.Module
    """
    check_choice("norm", norm, NORMS)
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
            raise ValueError(
                f"norm 'groupnorm' uses {GROUPNORM_GROUPS} groups and needs a channel count divisible "
                f"by {GROUPNORM_GROUPS}, got {channels} channels"
            )
        return nn.GroupNorm(GROUPNORM_GROUPS, channels, affine=True)
    return nn.Identity()


def make_act(act: str) -> nn.Module:
    """Activation ``"relu"``, ``"sigmoid"`` or ``"leakyrelu"`` (slope :data:`LEAKY_SLOPE`)."""
    check_choice("act", act, ACTS)
    if act == "relu":
        return nn.ReLU()
    if act == "sigmoid":
        return nn.Sigmoid()
    return nn.LeakyReLU(LEAKY_SLOPE)


def make_pool(pool: str) -> nn.Module:
    """Pooling ``"avgpooling"`` / ``"maxpooling"`` (kernel 2, stride 2: halves H and W) or ``"none"``."""
    check_choice("pool", pool, POOLS)
    if pool == "avgpooling":
        return nn.AvgPool2d(kernel_size=2, stride=2)
    if pool == "maxpooling":
        return nn.MaxPool2d(kernel_size=2, stride=2)
    return nn.Identity()
