"""hdd_lib: Hyperbolic Dataset Distillation (HDD) and GeoDM, with a DM/IDM distillation engine.

The names most users import are re-exported here::

    from hdd_lib import lift, get_loss
    loss = get_loss("hdd", k=1.0, lam=20.0)      # real [C, N, D], syn [C, M, D] -> scalar

    from hdd_lib import load, run, evaluate      # data, the distillation loop, the evaluation protocol
"""

from .data import load
from .distill import run
from .evaluate import evaluate
from .geometry import centroid, dist, lift
from .losses import available_losses, get_loss

__version__ = "0.1.0"

__all__ = ["lift", "centroid", "dist", "get_loss", "available_losses", "load", "run", "evaluate", "__version__"]
