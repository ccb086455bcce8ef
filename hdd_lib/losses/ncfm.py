r"""NCFM (Wang et al., "Dataset Distillation with Neural Characteristic Function", CVPR 2025).

Per class, the discrepancy of the empirical characteristic functions :math:`\Phi(t) = \frac1n\sum_i
e^{i t^\top f_i}` of the real and synthetic features (L2-normalised, as released), over frequencies
:math:`t_1..t_T`:

.. math::
    \ell_c = \frac{s}{T}\sum_j \sqrt{\alpha(|\Phi_r| - |\Phi_s|)^2
             + 2\beta(|\Phi_r||\Phi_s| - \Re\Phi_r\Re\Phi_s - \Im\Phi_r\Im\Phi_s)}\;(t_j)

The phase term is computed as :math:`|\Phi_r - \Phi_s|^2 - (|\Phi_r| - |\Phi_s|)^2` (exactly 0 for
identical sets) and :math:`\sqrt{x}` as :math:`\sqrt{x + 10^{-12}} - 10^{-6}` (finite gradients at 0; the
release clamps the phase term at :math:`10^{-12}`). Defaults follow the released code: :math:`T = 4096`,
:math:`\alpha = \beta = 1/2`, :math:`s = 300`, ``sampler="none"``: :math:`t \sim N(0, I)` drawn afresh
each iteration (:meth:`NCFMLoss.resample`; shared by the classes, the release draws per class). The
paper's sampler network (minmax) does nothing in the release (its ascent step undoes itself);
``sampler="learned"`` is our minimal one: a log-scale per frequency, :math:`t_j = e^{a_j} z_j`,
ascended by the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Count, NonNegative, Positive, Settings
from .base import LOSSES, MatchingLoss

__all__ = ["NCFMLoss", "NCFMSettings"]

SQRT_EPS = 1e-12  #: added under the square root (its root subtracted): finite gradients at 0


@dataclass(frozen=True)
class NCFMSettings(Settings):
    """``num_freqs`` T, ``alpha`` (amplitude), ``beta`` (phase), multiplier ``scale``, L2 ``normalize``."""

    num_freqs: Count = 4096
    alpha: NonNegative = 0.5
    beta: NonNegative = 0.5
    scale: Positive = 300.0
    normalize: bool = True
    sampler: Literal["none", "learned"] = "none"


@LOSSES.register("ncfm", label="NCFM")
class NCFMLoss(MatchingLoss):
    """NCFM's characteristic-function discrepancy; ``per_class`` returns ``[C]``."""

    Settings = NCFMSettings
    ascent = True  # the learned sampler maximises the discrepancy

    def __init__(self, settings: NCFMSettings | None = None, /, **kwargs) -> None:
        super().__init__(settings, **kwargs)
        self.seed, self._noise = 0, None
        if self.settings.sampler == "learned":
            self.log_scale = nn.Parameter(torch.zeros(self.settings.num_freqs))

    def resample(self, generator: torch.Generator) -> None:
        self.seed = int(torch.randint(2**62, (), generator=generator))

    def frequencies(self, d: int, like: torch.Tensor) -> torch.Tensor:
        """This iteration's frequencies ``[T, d]`` (noise drawn once per :meth:`resample`, on ``like``'s device)."""
        key = (self.seed, d, like.device, like.dtype)
        if self._noise is None or self._noise[0] != key:
            g = torch.Generator(like.device).manual_seed(self.seed)
            self._noise = (key, torch.randn(self.settings.num_freqs, d, generator=g, device=like.device, dtype=like.dtype))
        z = self._noise[1]
        return z * self.log_scale.clamp(-4, 4).exp().to(z.dtype)[:, None] if self.settings.sampler == "learned" else z

    def per_class(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if s.normalize:
            real, syn = F.normalize(real, dim=-1), F.normalize(syn, dim=-1)
        t = self.frequencies(real.shape[-1], syn)

        def cf(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # [C, n, D] -> Re, Im [C, T]
            ft = f @ t.T
            return ft.cos().mean(1), ft.sin().mean(1)

        (re_r, im_r), (re_s, im_s) = cf(real), cf(syn)
        norm = lambda re, im: (re**2 + im**2).clamp_min(torch.finfo(re.dtype).tiny).sqrt()  # noqa: E731
        amp = (norm(re_r, im_r) - norm(re_s, im_s)) ** 2
        phase = ((re_r - re_s) ** 2 + (im_r - im_s) ** 2 - amp).clamp_min(0)
        root = (s.alpha * amp + s.beta * phase + SQRT_EPS).sqrt() - SQRT_EPS**0.5
        return s.scale * root.mean(-1)

    def learned_parameters(self) -> list[nn.Parameter]:
        return [self.log_scale] if self.settings.sampler == "learned" else []

    def log_values(self) -> dict[str, torch.Tensor]:
        return {"t_scale": self.log_scale.detach().clamp(-4, 4).exp().mean()} if self.settings.sampler == "learned" else {}
