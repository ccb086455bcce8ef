r"""DSDM (Li et al., "Diversified Semantic Distribution Matching", ACM MM 2024), as released.

Per class, with the means :math:`\mu` and unbiased covariances :math:`\Sigma` of the real (``r``)
and synthetic (``s``) features and :math:`D` their size:

.. math::
    \ell_c = w_\mu \|\mu_r - \mu_s\|^2 + w_\Sigma \frac{\|\Sigma_s - \Sigma_r\|_F^2}{D}
             + [n > n_0]\; w_p \frac{\|\mu_s - h_c\|^2}{D},
    \qquad h_c \leftarrow m\, h_c + (1 - m)\, \mu_s

(:math:`w_\mu = 1, w_\Sigma = 50, w_p = 0.2, n_0 = 2000, m = 0.99`). The Frobenius term goes
through Gram matrices, never :math:`D \times D`:
:math:`\|X^\top X/a - Y^\top Y/b\|_F^2 = \|XX^\top\|^2/a^2 + \|YY^\top\|^2/b^2 - 2\|YX^\top\|^2/(ab)`
(centred :math:`X, Y`, :math:`a = \max(N-1, 1)`: one sample has covariance 0).
The prototype :math:`h_c` is an EMA of the synthetic class means: set by the first call, updated
by every call after its term is computed, used from call :math:`n_0 + 1` on (:math:`n` counts
calls; one call per iteration). The release updates it after the image step with a fresh
augmentation; here it uses the call's own (detached) means. ``prototype`` and ``calls`` are
buffers, so a checkpoint resumes exactly. ``mean_weight=0`` leaves the mean to another loss
(``dsdm_hdd``: HDD replaces the Euclidean mean term, as in DM+HDD).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import Fraction, NonNegative, Settings
from .base import LOSSES, MatchingLoss

__all__ = ["DSDMLoss", "DSDMSettings", "covariance_gap"]


@dataclass(frozen=True)
class DSDMSettings(Settings):
    mean_weight: NonNegative = 1.0
    cov_weight: NonNegative = 50.0
    proto_weight: NonNegative = 0.2
    proto_start: int = 2000  # calls before the prototype term starts
    proto_momentum: Fraction = 0.99


def covariance_gap(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:math:`\\|\\Sigma_y - \\Sigma_x\\|_F^2` per class of ``x [C, N, D]``, ``y [C, M, D]`` (unbiased), via Gram matrices."""
    x, y = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    a, b = max(x.shape[1] - 1, 1), max(y.shape[1] - 1, 1)
    sq = lambda g: g.pow(2).sum((1, 2))  # noqa: E731
    return (sq(x @ x.mT) / a**2 + sq(y @ y.mT) / b**2 - 2 * sq(y @ x.mT) / (a * b)).clamp_min(0)


@LOSSES.register("dsdm", label="DSDM")
class DSDMLoss(MatchingLoss):
    """DSDM's mean + covariance + prototype loss; ``per_class`` returns ``[C]`` and advances the prototype."""

    Settings = DSDMSettings

    def __init__(self, settings: DSDMSettings | None = None, /, **kwargs) -> None:
        super().__init__(settings, **kwargs)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("prototype", torch.zeros(0))

    def per_class(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
        s, d = self.settings, real.shape[-1]
        mu_s = syn.mean(1)
        loss = s.mean_weight * (real.mean(1) - mu_s).pow(2).sum(-1) + s.cov_weight * covariance_gap(real, syn) / d
        if self.prototype.shape != mu_s.shape:
            self.prototype = mu_s.detach().clone()
        proto = self.prototype.to(mu_s.dtype)
        active = (self.calls > s.proto_start).to(mu_s.dtype)  # no host sync
        loss = loss + active * s.proto_weight * (mu_s - proto).pow(2).sum(-1) / d
        with torch.no_grad():
            self.prototype.lerp_(mu_s.to(self.prototype.dtype), 1 - s.proto_momentum)
            self.calls += 1
        return loss

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "prototype" in state_dict:  # sized on the first call: take the saved size
            self.prototype = torch.empty_like(state_dict[prefix + "prototype"], device=self.calls.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
