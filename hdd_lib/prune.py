r"""Pruning a distilled set: score each synthetic sample, keep the best (lowest) ``keep_ratio`` per class.

HDD published no code for it; our definition (SPEC) scores a sample by the geodesic distance of its lifted features
to the class's real Lorentzian centroid (baselines: ``euclidean`` distance to the real mean, ``random``) and keeps
:math:`n_{keep} = \max(1, \lceil \text{keep\_ratio} \cdot \text{ipc} \rceil)` per class.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from . import geometry
from .losses.base import check_features

__all__ = ["keep_count", "select", "hyperbolic_scores", "euclidean_scores", "random_scores", "get_scorer", "SCORERS"]


def keep_count(ipc: int, keep_ratio: float) -> int:
    r"""Samples kept per class: :math:`\max(1, \lceil \text{keep\_ratio}\cdot\text{ipc}\rceil)`.

    A relative slack of 1e-9 absorbs float products such as ``0.6 * 10 = 6.000000000000001``."""
    if not isinstance(ipc, int) or isinstance(ipc, bool) or ipc < 1:
        raise ValueError(f"ipc must be an integer >= 1, got ipc={ipc!r}")
    if not (isinstance(keep_ratio, (int, float)) and 0 < keep_ratio <= 1):
        raise ValueError(f"keep_ratio must be in (0, 1], got keep_ratio={keep_ratio!r}")
    return max(1, math.ceil(keep_ratio * ipc * (1 - 1e-9)))


def select(scores: torch.Tensor, *, keep_ratio: float) -> torch.Tensor:
    """Indices ``[C, n_keep]`` of the lowest ``scores [C, M]`` of each class, best first (stable on ties)."""
    if scores.dim() != 2:
        raise ValueError(f"scores must have shape [C, M], got shape {tuple(scores.shape)}")
    n = keep_count(scores.shape[1], keep_ratio)
    return torch.sort(scores, dim=1, stable=True).indices[:, :n]


def hyperbolic_scores(syn: torch.Tensor, real: torch.Tensor, *, k: float = 1.0, how: geometry.Mapping = "expmap0",
                      clamp: float | None = geometry.EXP_MAX_RADIUS,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Geodesic distance of each lifted synthetic feature to its class's real Lorentzian centroid.

    .. math:: s_{c,j} = d_L\big(\phi(f^{syn}_{c,j}),\; \bar c(\phi(F^{real}_c))\big)

    ``syn`` ``[C, M, D]``, ``real`` ``[C, N, D]`` → ``[C, M]`` (float64).
    """
    check_features(real, syn)
    x = geometry.lift(syn, k=k, how=how, clamp=clamp)
    c = geometry.centroid(geometry.lift(real, k=k, how=how, clamp=clamp), k=k)
    return geometry.dist(x, c.unsqueeze(1), k=k)


def euclidean_scores(syn: torch.Tensor, real: torch.Tensor, *, generator: torch.Generator | None = None,
                     **_: object) -> torch.Tensor:
    r"""Euclidean distance of each synthetic feature to its class's real mean, :math:`\|f_{c,j} - \mu_c\|`."""
    check_features(real, syn)
    return (syn.double() - real.double().mean(dim=1, keepdim=True)).norm(dim=-1)


def random_scores(syn: torch.Tensor, real: torch.Tensor, *, generator: torch.Generator | None = None,
                  **_: object) -> torch.Tensor:
    """Uniform random scores ``[C, M]`` (the random-pruning baseline), drawn from ``generator``."""
    check_features(real, syn)
    return torch.rand(syn.shape[:2], generator=generator, dtype=torch.float64).to(syn.device)


SCORERS: dict[str, Callable[..., torch.Tensor]] = {"hyperbolic": hyperbolic_scores, "euclidean": euclidean_scores,
                                                   "random": random_scores}


def get_scorer(name: str) -> Callable[..., torch.Tensor]:
    """The scoring function registered as ``name`` (``hyperbolic``, ``euclidean`` or ``random``)."""
    try:
        return SCORERS[name]
    except KeyError:
        raise ValueError(f"unknown pruning score {name!r}; known: {', '.join(sorted(SCORERS))}") from None
