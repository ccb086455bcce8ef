"""Distillation strategies: how a DM-family method picks its embedding network and steps its images.

Every module of this package is found by the ``STRATEGIES`` registry: a new strategy is one new file.
"""

from .base import STRATEGIES, Strategy, get_strategy, method_label

__all__ = ["STRATEGIES", "Strategy", "get_strategy", "method_label"]
