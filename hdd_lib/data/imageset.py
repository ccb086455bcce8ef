r"""A loaded split on its device: one normalised tensor, its labels and a per-class index.

:meth:`ClassIndex.sample` draws ``n`` images of every class at once: random keys (from the caller's CPU generator)
over a padded ``[K, max_count]`` table of positions, then ``topk``; only the ``[K, n]`` positions travel."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from .specs import DatasetSpec, RawSplit, check_split

__all__ = ["ImageSet", "ClassIndex", "class_counts", "normalise", "denormalise"]


def class_counts(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Images per class, int64 ``[num_classes]``; ``ValueError`` unless ``labels`` is 1-D integer in range."""
    if labels.dim() != 1 or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be a 1-D integer tensor, got {labels.dtype} {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {int(labels.min())}..{int(labels.max())}")
    return torch.bincount(labels.long(), minlength=num_classes)


@dataclass(frozen=True, eq=False)
class ClassIndex:
    """Positions of every class's images: ``positions`` int64 ``[K, max_count]`` (row ``c``: class ``c``'s positions
    ascending, then ``-1`` padding) and ``counts`` int64 ``[K]``, on the CPU."""

    positions: torch.Tensor
    counts: torch.Tensor

    @classmethod
    def from_labels(cls, labels: torch.Tensor, num_classes: int) -> ClassIndex:
        """Build the index from int labels ``[N]`` (any device; the index lives on the CPU)."""
        labels = labels.detach().cpu()
        counts = class_counts(labels, num_classes)
        order = torch.argsort(labels, stable=True)
        width = max(int(counts.max()), 1)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(width)
        valid = slot.unsqueeze(0) < counts.unsqueeze(1)
        flat = (starts.unsqueeze(1) + slot.unsqueeze(0)).clamp(max=max(labels.numel() - 1, 0))
        positions = torch.where(valid, order[flat] if labels.numel() else flat, torch.full_like(flat, -1))
        return cls(positions=positions, counts=counts)

    @property
    def num_classes(self) -> int:
        return self.positions.shape[0]

    def of_class(self, c: int) -> torch.Tensor:
        """Positions of class ``c``'s images, ascending."""
        if not 0 <= c < self.num_classes:
            raise ValueError(f"class {c} out of range 0..{self.num_classes - 1}")
        return self.positions[c, : int(self.counts[c])]

    def sample(self, n: int, *, generator: torch.Generator) -> torch.Tensor:
        """``n`` distinct positions per class, int64 ``[K, n]``, drawn with the CPU ``generator`` only.

        ``ValueError`` unless ``1 <= n <=`` the smallest class (named, with its size: no clamping)."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got n={n!r}")
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise ValueError(f"generator must be a CPU torch.Generator, got {generator!r}")
        smallest = int(torch.argmin(self.counts))
        if n > int(self.counts[smallest]):
            raise ValueError(f"cannot draw n={n} distinct images per class: class {smallest} has only "
                             f"{int(self.counts[smallest])} images; ask for at most that many")
        keys = torch.rand(self.positions.shape, generator=generator)
        keys.masked_fill_(self.positions < 0, -1.0)
        slots = torch.topk(keys, n, dim=1, sorted=False).indices
        return torch.gather(self.positions, 1, slots)


def _stats(spec: DatasetSpec, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.tensor(v, dtype=dtype, device=device).view(-1, 1, 1) for v in (spec.mean, spec.std))


def normalise(images: torch.Tensor, spec: DatasetSpec, *, max_value: int = 255) -> torch.Tensor:
    r"""Integer ``[..., C, H, W]`` in ``[0, m]`` to float32 :math:`(x / m - \mu) / \sigma`, on its device."""
    mean, std = _stats(spec, torch.float32, images.device)
    out = images.to(torch.float32).div_(max_value)
    return out.sub_(mean).div_(std)


def denormalise(images: torch.Tensor, spec: DatasetSpec, *, clamp: bool = True) -> torch.Tensor:
    r"""Undo the normalisation for plotting: :math:`x \sigma + \mu` of ``[..., C, H, W]``, clamped to ``[0, 1]``."""
    if images.dim() < 3 or images.shape[-3] != spec.channels:
        raise ValueError(f"images must be [..., {spec.channels}, H, W], got shape {tuple(images.shape)}")
    mean, std = _stats(spec, images.dtype, images.device)
    out = images * std + mean
    return out.clamp(0.0, 1.0) if clamp else out


@dataclass(frozen=True, eq=False)
class ImageSet:
    """One split on one device: float32 ``images [N, C, H, W]`` normalised with ``spec``, int64 ``labels [N]`` beside
    them, the ``spec`` (class names filled in from the files where the table has none), the ``split`` and a
    :class:`ClassIndex` built from the labels."""

    images: torch.Tensor
    labels: torch.Tensor
    spec: DatasetSpec
    split: str = "train"
    index: ClassIndex = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_split(self.split)
        if self.images.dim() != 4 or tuple(self.images.shape[1:]) != self.spec.shape:
            raise ValueError(f"images must be [N, *{self.spec.shape}], got {tuple(self.images.shape)}")
        if not self.images.is_floating_point():
            raise ValueError(f"images must be floating point (normalised), got {self.images.dtype}")
        if self.labels.shape != (self.images.shape[0],) or self.labels.device != self.images.device:
            raise ValueError(f"labels must be [N={self.images.shape[0]}] on {self.images.device}, "
                             f"got {tuple(self.labels.shape)} on {self.labels.device}")
        object.__setattr__(self, "index", ClassIndex.from_labels(self.labels, self.spec.num_classes))

    @classmethod
    def from_raw(cls, raw: RawSplit, spec: DatasetSpec, *, split: str, device: str | torch.device = "cpu") -> ImageSet:
        """Move ``raw``'s uint8 images to ``device`` first (4x less to copy), then normalise there."""
        if spec.class_names is None and raw.class_names is not None:
            spec = replace(spec, class_names=tuple(raw.class_names))
        images = normalise(raw.images.to(device), spec, max_value=raw.max_value)
        return cls(images=images, labels=raw.labels.to(images.device), spec=spec, split=split)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        return (f"ImageSet(name={self.spec.name!r}, split={self.split!r}, images={tuple(self.images.shape)}, "
                f"device={self.device}, classes={self.spec.num_classes})")

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def counts(self) -> torch.Tensor:
        """Images per class, int64 ``[K]`` on the CPU."""
        return self.index.counts

    def of_class(self, c: int) -> torch.Tensor:
        """All images of class ``c``, ``[count_c, C, H, W]``."""
        return self.images[self.index.of_class(c).to(self.device)]

    def sample(self, n: int, *, generator: torch.Generator) -> torch.Tensor:
        """``n`` distinct random images of every class, ``[K, n, C, H, W]`` (see :meth:`ClassIndex.sample`)."""
        positions = self.index.sample(n, generator=generator)
        return self.images[positions.to(self.device, non_blocking=True)]

    def to(self, device: str | torch.device) -> ImageSet:
        """A copy on ``device`` (the same object if it is already there)."""
        images = self.images.to(device)
        if images is self.images:
            return self
        return ImageSet(images, self.labels.to(images.device), self.spec, self.split)
