r"""Build a network by name; :func:`reinit_` re-draws its weights in place from an explicit ``torch.Generator``
with PyTorch's default initialisation (norm layers reset), float32 on the generator's device in ``modules()``
order, so a CPU generator gives the same weights on any device and dtype:

.. math::
    w, b \sim \mathcal{U}(-\beta, \beta), \quad \beta = \text{gain} \sqrt{3 / \text{fan\_in}} = 1/\sqrt{\text{fan\_in}},
    \quad \text{gain} = \sqrt{2 / (1 + a^2)}, \ a = \sqrt{5}.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn

from ..runtime import resolve_device
from .layers import Backbone
from .nets import MODELS

__all__ = ["MODELS", "available_models", "get_model", "reinit_", "default_bound"]

_LINEAR_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                 nn.ConvTranspose3d)  # fmt: skip
_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
               nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm)  # fmt: skip


def available_models() -> list[str]:
    """Names accepted by :func:`get_model`, sorted."""
    return sorted(MODELS)


def get_model(name: str, channels: int, num_classes: int, image_size: int, *,
              generator: torch.Generator | None = None, **kwargs) -> Backbone:
    """The architecture ``name`` (see :data:`MODELS`) with its keyword options, on the CPU, in train mode; with
    ``generator`` built on the meta device and initialised by :func:`reinit_`, without from the global RNG."""
    try:
        cls = MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; known: {', '.join(available_models())}") from None
    params = inspect.signature(cls).parameters.values()
    accepted = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        bad = ", ".join(map(repr, unknown))
        raise ValueError(f"model {name!r} does not take {bad}; its options: {', '.join(accepted)}")
    if generator is None:
        return cls(channels, num_classes, image_size, **kwargs)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    with torch.device("meta"):
        model = cls(channels, num_classes, image_size, **kwargs)
    return reinit_(model.to_empty(device="cpu"), generator)


def default_bound(weight: torch.Tensor) -> float:
    r""":math:`\beta = \text{gain} \sqrt{3 / \text{fan\_in}}`, ``fan_in = weight.shape[1] * prod(kernel)`` (0 if 0)."""
    fan_in = weight.shape[1] * math.prod(weight.shape[2:]) if weight.dim() >= 2 else 0
    if fan_in == 0:
        return 0.0
    return nn.init.calculate_gain("leaky_relu", math.sqrt(5.0)) * math.sqrt(3.0 / fan_in)


def _uniform_(param: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    draw = torch.empty(param.shape, dtype=torch.float32, device=generator.device)
    draw.uniform_(-bound, bound, generator=generator)
    param.copy_(draw, non_blocking=True)  # host-to-device from pageable memory: staged, no GPU wait


def reinit_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every parameter of ``model`` in place from ``generator`` only (advanced); returns ``model``."""
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _LINEAR_TYPES):
                bound = default_bound(module.weight)
                _uniform_(module.weight, bound, generator)
                if module.bias is not None:
                    _uniform_(module.bias, bound, generator)
            elif isinstance(module, _NORM_TYPES):
                module.reset_parameters()  # weight 1, bias 0, running statistics reset: no draws
            elif [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
                raise ValueError(f"reinit_ does not know the default initialisation of {type(module).__name__}; known: "
                                 f"{', '.join(t.__name__ for t in _LINEAR_TYPES + _NORM_TYPES)}")
    return model


def random_features(images, *, model_cfg, spec, nets: int, generator, device, chunk: int = 2048):
    """Features ``[..., D]`` of ``images [..., ch, H, W]`` averaged over ``nets`` freshly initialised,
    frozen ConvNets in train mode (the DM embedding), drawn from ``generator``."""
    device = resolve_device(device)
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:]).to(device)
    total = None
    with torch.no_grad():
        for _ in range(nets):
            net = get_model(model_cfg.name, spec.channels, spec.num_classes, spec.image_size[0],
                            generator=generator, **model_cfg.kwargs(spec.image_size[0], spec.channels)).to(device)
            f = torch.cat([net.embed(x) for x in flat.split(chunk)])
            total = f if total is None else total + f
    return (total / nets).reshape(*lead, -1).cpu()
