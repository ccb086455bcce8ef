"""Networks that embed images: the DC-benchmark ConvNet and the cross-architecture pool.

Every model maps images ``[B, C, H, W]`` to features with ``model.embed(x)`` (``[B,
model.feature_dim]``, the flattened output of the last feature block, before the classifier)
and to logits with ``model(x)``. Build them by name and re-draw their weights from an explicit
generator::

    from hdd_lib.models import get_model, reinit_
    g = torch.Generator().manual_seed(seed)
    net = get_model("convnet", 3, 10, 32, generator=g).to(device)
    for it in range(iterations):
        reinit_(net, g)              # a freshly initialised network, same modules
        f = net.embed(images)        # [B, 2048]

Nothing here seeds, picks a device or trains.
"""

from .alexnet import AlexNet
from .base import Backbone
from .convnet import ConvNet
from .init import default_bound, reinit_
from .layers import ACTS, NORMS, POOLS
from .registry import MODELS, available_models, get_model
from .resnet import ResNet18
from .vgg import VGG11

__all__ = [
    "Backbone",
    "ConvNet",
    "AlexNet",
    "VGG11",
    "ResNet18",
    "MODELS",
    "available_models",
    "get_model",
    "reinit_",
    "default_bound",
    "ACTS",
    "NORMS",
    "POOLS",
]
