r"""Distribution Matching (Zhao & Bilen, WACV 2023): squared distance of the class means.

.. math::
    \mathcal{L}_{DM} = \sum_{c=1}^{C} \Big\| \frac{1}{N}\sum_{i} f^{real}_{c,i}
                       - \frac{1}{M}\sum_{j} f^{syn}_{c,j} \Big\|_2^2
"""

from __future__ import annotations

import torch

from .base import LOSSES, MatchingLoss

__all__ = ["DMLoss"]


@LOSSES.register("dm", label="DM")
class DMLoss(MatchingLoss):
    """Euclidean DM loss; ``per_class`` returns :math:`\\|\\mu^{real}_c - \\mu^{syn}_c\\|^2`, shape ``[C]``."""

    def per_class(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
        return (real.mean(dim=1) - syn.mean(dim=1)).pow(2).sum(dim=-1)
