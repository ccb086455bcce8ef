"""The interface every architecture shares: ``embed`` (features), ``forward`` (logits), ``feature_dim``."""

from __future__ import annotations

import torch
from torch import nn

from .layers import check_positive_int

__all__ = ["Backbone"]


class Backbone(nn.Module):
    """A feature extractor followed by a linear classifier.

    Subclasses build ``self.features`` (images ``[B, C, H, W]`` to a feature map, flattened by
    :meth:`embed`), set ``self.feature_dim`` and call :meth:`_add_classifier`.

    Parameters
    ----------
    channels : int
        Input channels (1 or 3 for the datasets of this project).
    num_classes : int
        Number of logits.
    image_size : int
        Side of the square input images.

    Attributes
    ----------
    channels, num_classes, image_size : int
        The constructor arguments.
    feature_dim : int
        Size ``D`` of :meth:`embed`'s output.
    features : torch.nn.Module
        Everything before the classifier.
    classifier : torch.nn.Linear
        ``feature_dim -> num_classes``.
    """

    features: nn.Module
    classifier: nn.Linear
    feature_dim: int

    def __init__(self, channels: int, num_classes: int, image_size: int) -> None:
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.image_size = check_positive_int("image_size", image_size)

    def _add_classifier(self, feature_dim: int) -> None:
        self.feature_dim = int(feature_dim)
        self.classifier = nn.Linear(self.feature_dim, self.num_classes)

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{type(self).__name__} expects images of shape [B, {expected[0]}, {expected[1]}, "
                f"{expected[2]}], got shape {tuple(x.shape)}"
            )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features before the classifier.

        Parameters
        ----------
        x : torch.Tensor
            Images, shape ``[B, channels, image_size, image_size]``.

        Returns
        -------
        torch.Tensor
            Shape ``[B, feature_dim]``: the flattened output of the last feature block.
        """
        self._check_input(x)
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, num_classes]``: the linear classifier applied to :meth:`embed`."""
        return self.classifier(self.embed(x))
