"""Networks that embed images: the DC-benchmark ConvNet and the cross-architecture pool.

``model.embed(x)`` maps images ``[B, C, H, W]`` to ``[B, model.feature_dim]`` (the flattened last
feature block), ``model(x)`` to logits. Build by name and re-draw weights from a generator::

    g = torch.Generator().manual_seed(seed)
    net = get_model("convnet", 3, 10, 32, generator=g).to(device)
    for it in range(iterations):
        reinit_(net, g)              # a freshly initialised network, same modules
        f = net.embed(images)        # [B, 2048]

Nothing here seeds, picks a device or trains.
"""

from .build import MODELS, available_models, default_bound, get_model, random_features, reinit_
from .convnet import ConvNet
from .crossarch import VGG11, AlexNet, ResNet18
from .layers import ACTS, NORMS, POOLS, Backbone

__all__ = ["Backbone", "ConvNet", "AlexNet", "VGG11", "ResNet18", "MODELS", "available_models", "get_model",
           "reinit_", "default_bound", "random_features", "ACTS", "NORMS", "POOLS"]  # fmt: skip
