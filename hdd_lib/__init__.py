"""hdd_lib: Hyperbolic Dataset Distillation (HDD) and GeoDM, with a DM/IDM distillation engine.

Common names are re-exported lazily: ``from hdd_lib import lift, get_loss, load, run, evaluate``.
Importing tunes glibc's allocator (:func:`hdd_lib.allocator.tune_allocator`; ``HDD_MALLOC_TUNE=0``: off).
"""

import importlib

from .allocator import tune_allocator

ALLOCATOR = tune_allocator()  # the mallopt settings applied, or None

__version__ = "0.1.0"

_EXPORTS = {
    "lift": "geometry", "centroid": "geometry", "dist": "geometry",
    "get_loss": "losses", "available_losses": "losses",
    "load": "data", "run": "distill", "evaluate": "evaluate",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
