"""Matching losses behind one interface: ``get_loss(name, **settings)(real [C,N,D], syn [C,M,D])``."""

from .base import MatchingLoss, available_losses, check_features, get_loss, register_loss
from .dm import DMLoss
from .geodm import GeoDMConfig, GeoDMLoss
from .hdd import HDDLoss

__all__ = [
    "MatchingLoss",
    "available_losses",
    "check_features",
    "get_loss",
    "register_loss",
    "DMLoss",
    "HDDLoss",
    "GeoDMConfig",
    "GeoDMLoss",
]
