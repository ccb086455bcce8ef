"""Networks that embed images: the DC-benchmark ConvNet and the cross-architecture pool.

``model.embed(x)``: ``[B, C, H, W]`` -> ``[B, model.feature_dim]``; ``model(x)``: logits. Build with
``get_model(name, ch, classes, size, generator=g)``, re-draw weights with ``reinit_(net, g)``.
"""

from .build import MODELS, available_models, default_bound, get_model, random_features, reinit_
from .layers import ACTS, NORMS, POOLS, Backbone
from .nets import VGG11, AlexNet, ConvNet, ResNet18

__all__ = ["Backbone", "ConvNet", "AlexNet", "VGG11", "ResNet18", "MODELS", "available_models", "get_model",
           "reinit_", "default_bound", "random_features", "ACTS", "NORMS", "POOLS"]  # fmt: skip
