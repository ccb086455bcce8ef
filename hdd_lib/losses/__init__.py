"""Matching losses behind one interface: ``get_loss(name, **settings)(real [C,N,D], syn [C,M,D])``.

Every module of this package is found by the ``LOSSES`` registry: a new loss is one new file.
"""

from .base import LOSSES, MatchingLoss, SumLoss, available_losses, build_loss, check_features, get_loss

__all__ = ["LOSSES", "MatchingLoss", "SumLoss", "available_losses", "build_loss", "check_features", "get_loss"]
