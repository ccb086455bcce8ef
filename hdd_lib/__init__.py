"""hdd_lib: Hyperbolic Dataset Distillation (HDD) and GeoDM, with a DM/IDM distillation engine.

The names most users import are re-exported here::

    from hdd_lib import lift, get_loss
    loss = get_loss("hdd", k=1.0, lam=20.0)      # real [C, N, D], syn [C, M, D] -> scalar

    from hdd_lib import load, run, evaluate      # data, the distillation loop, the evaluation protocol

Importing the package tunes glibc's allocator for large tensors (:func:`hdd_lib.runtime.tune_allocator`;
``HDD_MALLOC_TUNE=0`` turns that off).
"""

from .runtime import tune_allocator

ALLOCATOR = tune_allocator()  # the mallopt settings applied, or None

from .data import load  # noqa: E402
from .distill import run  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .geometry import centroid, dist, lift  # noqa: E402
from .losses import available_losses, get_loss  # noqa: E402

__version__ = "0.1.0"

__all__ = ["lift", "centroid", "dist", "get_loss", "available_losses", "load", "run", "evaluate", "__version__"]
