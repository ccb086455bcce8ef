"""``get_model(name, channels, num_classes, image_size, **kw)``: the one way to build a network by name.

Names are lower case; variants are keyword arguments (``get_model("resnet18", 3, 10, 32,
norm="batchnorm")``, ``get_model("convnet", 1, 10, 28, width=64, depth=4)``), never names.
"""

from __future__ import annotations

import inspect

import torch

from .alexnet import AlexNet
from .base import Backbone
from .convnet import ConvNet
from .init import reinit_
from .resnet import ResNet18
from .vgg import VGG11

__all__ = ["MODELS", "available_models", "get_model"]

#: Registry of architectures by lower-case name.
MODELS: dict[str, type[Backbone]] = {
    "convnet": ConvNet,
    "alexnet": AlexNet,
    "vgg11": VGG11,
    "resnet18": ResNet18,
}


def available_models() -> list[str]:
    """Names accepted by :func:`get_model`, sorted."""
    return sorted(MODELS)


def _keyword_options(cls: type[Backbone]) -> list[str]:
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def get_model(
    name: str,
    channels: int,
    num_classes: int,
    image_size: int,
    *,
    generator: torch.Generator | None = None,
    **kwargs,
) -> Backbone:
    """Build the architecture registered as ``name``.

    Parameters
    ----------
    name : {"alexnet", "convnet", "resnet18", "vgg11"}
    channels, num_classes, image_size : int
        Input channels, number of logits, side of the square inputs.
    generator : torch.Generator, optional
        If given, the initial weights come from :func:`~hdd_lib.models.reinit_` with this
        generator: the model is built on the meta device (no global-RNG draws, no default
        initialisation), materialised on the CPU and initialised from ``generator``. If omitted,
        PyTorch's default initialisation draws from the global RNG (this function never seeds).
    **kwargs
        The architecture's keyword options (``width``, ``depth``, ``act``, ``norm``, ``pool`` for
        ConvNet; ``norm`` for the others).

    Returns
    -------
    Backbone
        On the CPU, in train mode; move it with ``.to(device)`` at the call site.

    Raises
    ------
    ValueError
        For an unknown ``name``, an option the architecture does not take, or a bad option value.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> get_model("convnet", 3, 10, 32, generator=g).feature_dim
    2048
    """
    try:
        cls = MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; known: {', '.join(available_models())}") from None
    accepted = _keyword_options(cls)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"model {name!r} does not take {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(accepted) or 'none'}"
        )
    if generator is None:
        return cls(channels, num_classes, image_size, **kwargs)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    with torch.device("meta"):
        model = cls(channels, num_classes, image_size, **kwargs)
    model.to_empty(device="cpu")
    return reinit_(model, generator)
