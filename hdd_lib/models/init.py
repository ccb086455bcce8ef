r"""Re-draw a network's weights in place from an explicit ``torch.Generator``.

The DM-family loop embeds with a *freshly initialised* network at every iteration (SPEC, "Common
protocol"). :func:`reinit_` gives one without allocating new modules (cheap on a GPU) and without
touching the global RNG. It reproduces PyTorch's default initialisation of each layer type:

* ``Conv*d`` / ``ConvTranspose*d`` / ``Linear``: ``kaiming_uniform_(a=sqrt(5))`` weights and
  uniform biases, which are the same distribution,

  .. math::
      w, b \sim \mathcal{U}\left(-\tfrac{1}{\sqrt{\text{fan\_in}}},
      \tfrac{1}{\sqrt{\text{fan\_in}}}\right), \qquad
      \text{fan\_in} = \text{in\_channels} / \text{groups} \cdot \prod \text{kernel\_size},

  since :math:`\text{gain} \cdot \sqrt{3 / \text{fan\_in}}` with
  :math:`\text{gain} = \sqrt{2 / (1 + a^2)} = \sqrt{1/3}` is :math:`1/\sqrt{\text{fan\_in}}`;
* ``BatchNorm`` / ``InstanceNorm`` / ``GroupNorm`` / ``LayerNorm``: weight 1, bias 0, and running
  statistics reset (mean 0, variance 1, ``num_batches_tracked`` 0).

Any other module that owns parameters or buffers raises ``ValueError`` rather than being skipped.

Determinism and devices: values are drawn in float32 on the *generator's* device, in the order of
``model.modules()``, and copied into the parameters (cast to their dtype). A CPU generator
therefore gives the same weights whatever the model's device or dtype (a float64 model holds the
float32 draws exactly); a CUDA generator on the model's device avoids the host-to-device copies
but draws a different (equally deterministic) sequence.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["reinit_", "default_bound"]

_LINEAR_TYPES = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
_NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.GroupNorm,
    nn.LayerNorm,
)

#: ``a`` of PyTorch's default ``kaiming_uniform_`` for convolutions and linear layers.
_KAIMING_A = math.sqrt(5.0)


def default_bound(weight: torch.Tensor) -> float:
    r"""Half-width of PyTorch's default uniform initialisation for a conv/linear ``weight``.

    Parameters
    ----------
    weight : torch.Tensor
        Shape ``[out, in / groups, *kernel]`` (``[in, out / groups, *kernel]`` for transposed
        convolutions, where PyTorch uses dimension 1 all the same).

    Returns
    -------
    float
        :math:`\text{gain}\sqrt{3/\text{fan\_in}} = 1/\sqrt{\text{fan\_in}}`, 0 when fan_in is 0.
    """
    fan_in = weight.shape[1] * math.prod(weight.shape[2:]) if weight.dim() >= 2 else 0
    if fan_in == 0:
        return 0.0
    gain = nn.init.calculate_gain("leaky_relu", _KAIMING_A)
    return gain * math.sqrt(3.0 / fan_in)


def _uniform_(param: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    draw = torch.empty(param.shape, dtype=torch.float32, device=generator.device)
    draw.uniform_(-bound, bound, generator=generator)
    param.copy_(draw, non_blocking=True)  # host-to-device from pageable memory: staged, no GPU wait


def _owns_state(module: nn.Module) -> bool:
    """Whether ``module`` itself (not its children) holds parameters or buffers."""
    return any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False))


def reinit_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every parameter of ``model`` in place with PyTorch's default initialisation.

    Parameters
    ----------
    model : torch.nn.Module
        Any network built from conv, linear and norm layers (every model of
        :func:`~hdd_lib.models.get_model`). Parameters keep their identity, device and dtype.
    generator : torch.Generator
        The only source of randomness; advanced by the draws. The same generator state gives the
        same weights (see the module docstring for devices).

    Returns
    -------
    torch.nn.Module
        ``model`` itself.

    Raises
    ------
    ValueError
        If ``generator`` is not a ``torch.Generator`` or a module owning parameters or buffers has
        no known default initialisation.
    """
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
                if getattr(module, "weight", None) is not None:
                    module.weight.fill_(1.0)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
                if getattr(module, "running_mean", None) is not None:
                    module.reset_running_stats()
            elif _owns_state(module):
                raise ValueError(
                    f"reinit_ does not know the default initialisation of {type(module).__name__}; "
                    f"known: {', '.join(t.__name__ for t in _LINEAR_TYPES + _NORM_TYPES)}"
                )
    return model
