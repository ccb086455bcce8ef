"""Typed, frozen configuration for distillation and evaluation, built from plain mappings.

``from_dict(DistillConfig, {...})`` rejects unknown keys and wrong types (naming the dotted key),
fills defaults, and returns frozen dataclasses; ``to_dict`` turns them back into plain data for
``params.yaml``, checkpoints and result files. Defaults here are the papers' (SPEC); the pipeline's
own defaults live in ``params.yaml``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .augment import DSAConfig
from .losses.geodm import GeoDMConfig

__all__ = [
    "METHODS",
    "DataConfig",
    "ModelConfig",
    "HDDConfig",
    "IDMConfig",
    "DistillConfig",
    "EvalConfig",
    "from_dict",
    "to_dict",
]

#: method name -> (strategy, matching loss). DM/IDM are the base loops; HDD and GeoDM the losses.
METHODS: dict[str, tuple[str, str]] = {
    "dm": ("dm", "dm"),
    "dm_hdd": ("dm", "hdd"),
    "idm": ("idm", "dm"),
    "idm_hdd": ("idm", "hdd"),
    "geodm": ("dm", "geodm"),
    "idm_geodm": ("idm", "geodm"),
}


@dataclass(frozen=True)
class DataConfig:
    """Where the real data comes from (see :func:`hdd_lib.data.load`)."""

    dataset: str = "digits"
    data_root: str | None = None  # None: $HDD_DATA_ROOT or ./data
    download: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """The network used to embed images (distillation) or trained from scratch (evaluation)."""

    name: str = "convnet"
    width: int = 128
    depth: int | None = None  # None: 3 for images up to 32 px, 4 for 64 px (Tiny-ImageNet)
    norm: str = "instancenorm"
    act: str = "relu"
    pool: str = "avgpooling"

    def kwargs(self, image_size: int) -> dict[str, Any]:
        """Keyword options for :func:`hdd_lib.models.get_model` (only ConvNet takes them all)."""
        if self.name != "convnet":
            return {"norm": self.norm}
        depth = self.depth if self.depth is not None else (4 if image_size >= 64 else 3)
        return {"width": self.width, "depth": depth, "norm": self.norm, "act": self.act, "pool": self.pool}


@dataclass(frozen=True)
class HDDConfig:
    """HDD loss settings (SPEC): DM+HDD k=1, lam=20, expmap0; IDM+HDD per dataset."""

    k: float = 1.0
    lam: float = 20.0
    how: Literal["expmap0", "lift"] = "expmap0"
    clamp: float | None = 10.0
    dtype: Literal["float64", "float32"] = "float64"


@dataclass(frozen=True)
class IDMConfig:
    """IDM (Zhao et al., CVPR 2023) settings; defaults are the paper's (SPEC)."""

    net_begin: int = 3  # random nets in the queue at the start
    net_num: int = 100  # queue capacity (FIFO)
    net_generate_interval: int = 30  # push a new random net every this many iterations
    fetch_net_num: int = 2  # queue nets trained per iteration
    model_train_steps: int = 10  # SGD steps per trained net per iteration
    train_batch: int = 256  # real images per training step
    lr_net: float = 0.01
    momentum_net: float = 0.9
    weight_decay_net: float = 5e-4
    ce_weight: float = 0.5  # class-aware regulariser: ce_weight * acc_net(%) * CE(net(syn), y)
    acc_reset_interval: int = 100  # running-accuracy window (the reference resets it at each evaluation)
    factor: int = 2  # partition: each stored image is a factor x factor mosaic


@dataclass(frozen=True)
class DistillConfig:
    """One distillation run: dataset x ipc x method x seed, and everything the loop needs."""

    method: str = "dm_hdd"
    ipc: int = 10
    iterations: int = 20000
    lr_img: float = 1.0
    batch_real: int = 256
    init: Literal["real", "noise"] = "real"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    dsa: DSAConfig = field(default_factory=DSAConfig)
    hdd: HDDConfig = field(default_factory=HDDConfig)
    idm: IDMConfig = field(default_factory=IDMConfig)
    geodm: GeoDMConfig = field(default_factory=GeoDMConfig)
    lr_geometry: float = 0.01  # GeoDM: learning rate of the curvatures and weights
    amp: Literal["auto", "off", "bf16"] = "auto"  # bf16 autocast of the networks on CUDA
    # the real images' forward (no grad): auto = bf16 on CUDA (as amp) and on CPUs with native bf16
    real_precision: Literal["auto", "fp32", "bf16"] = "auto"
    channels_last: bool = True  # NHWC activations on CUDA
    compile: bool = False  # torch.compile the embedding network (DM strategy; IDM's queue nets are not)
    checkpoint_every: int = 500
    log_every: int = 10
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; known: {', '.join(METHODS)}")
        for name in ("ipc", "iterations", "batch_real", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {name}={value}")
        if not self.lr_img > 0:
            raise ValueError(f"lr_img must be > 0, got lr_img={self.lr_img}")
        if self.init not in ("real", "noise"):
            raise ValueError(f"init must be 'real' or 'noise', got init={self.init!r}")
        if self.amp not in ("auto", "off", "bf16"):
            raise ValueError(f"amp must be 'auto', 'off' or 'bf16', got amp={self.amp!r}")
        if self.real_precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"real_precision must be 'auto', 'fp32' or 'bf16', got real_precision={self.real_precision!r}")

    @property
    def strategy(self) -> str:
        """The base loop: ``"dm"`` or ``"idm"``."""
        return METHODS[self.method][0]

    @property
    def loss(self) -> str:
        """The matching loss registered in :mod:`hdd_lib.losses`: ``"dm"``, ``"hdd"`` or ``"geodm"``."""
        return METHODS[self.method][1]

    def loss_settings(self) -> dict[str, Any]:
        """Keyword settings for ``get_loss(self.loss, ...)``."""
        if self.loss == "hdd":
            import torch

            h = self.hdd
            return {"k": h.k, "lam": h.lam, "how": h.how, "clamp": h.clamp, "dtype": getattr(torch, h.dtype)}
        if self.loss == "geodm":
            return {"config": self.geodm}
        return {}


@dataclass(frozen=True)
class EvalConfig:
    """The evaluation protocol (SPEC): train from scratch on the synthetic set, test on real data."""

    models: tuple[str, ...] = ("convnet",)
    num_eval: int = 5
    epochs: int = 1000
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch: int = 256
    lr_decay_epoch: int | None = None  # None: epochs // 2 (x0.1)
    dsa: DSAConfig = field(default_factory=DSAConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0
    stack: Literal["auto", "on", "off"] = "auto"  # train the num_eval models at once (torch.func); auto: on CUDA
    test_batch: int = 1024
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("num_eval", "epochs", "batch", "test_batch"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {name}={value}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got lr={self.lr}")
        if not self.models:
            raise ValueError("models must name at least one architecture")

    @property
    def decay_epoch(self) -> int:
        return self.lr_decay_epoch if self.lr_decay_epoch is not None else self.epochs // 2


# ------------------------------------------------------------------------------------------ I/O

T = TypeVar("T")


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    """Return ``value`` converted to ``annotation`` where lossless (int -> float, list -> tuple)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            try:
                return _check_type(value, arg, key)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(f"{key} has the wrong type: got {value!r}, expected {annotation}")
    if annotation is type(None):
        if value is None:
            return None
        raise ValueError(f"{key} must be None")
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(f"{key} must be one of {', '.join(map(repr, args))}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key} must be a list, got {value!r}")
        return tuple(_check_type(v, args[0], f"{key}[]") for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        return from_dict(annotation, value, prefix=f"{key}.")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"{key} must be a number, got {value!r}")
    if annotation is int or annotation is bool or annotation is str:
        if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
            return value
        raise ValueError(f"{key} must be of type {annotation.__name__}, got {value!r}")
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")  # pragma: no cover


def from_dict(cls: type[T], data: dict[str, Any] | None, *, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{prefix.rstrip('.') or cls.__name__} must be a mapping, got {data!r}")
    data = dict(data)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(prefix + u for u in unknown)} for {cls.__name__}; "
            f"known: {', '.join(sorted(fields))}"
        )
    kwargs = {name: _check_type(value, hints[name], prefix + name) for name, value in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> Any:
    """Plain-data (JSON/YAML-safe) copy of a config dataclass."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg
