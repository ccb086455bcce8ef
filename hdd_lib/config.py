"""Typed, frozen settings: each field is checked against its annotation on construction.

``int`` is never a ``bool``, floats are finite, ``Literal``/``Annotated`` bounds hold; ints widen to floats,
lists become tuples, mappings their dataclass. Errors are one-line ``ValueError``s naming the dotted key
(``distill.loss.k must be > 0, got -1.0``). Named components (losses, strategies) live in a :class:`Registry`.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import importlib
import math
import pkgutil
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from .augment import DSAConfig

__all__ = ["ConfigError", "Range", "Positive", "NonNegative", "Fraction", "Count", "Settings", "Registry", "from_dict",
           "to_dict", "DataConfig", "ModelConfig", "DistillConfig", "EvalConfig", "EVAL_PROTOCOLS"]


class ConfigError(ValueError):
    """A bad setting; the message starts with (or names) the full dotted key."""


#: The dotted path of the settings being built (set by :func:`from_dict`), so messages name the full key.
_PATH: contextvars.ContextVar[str] = contextvars.ContextVar("hdd_lib_config_path", default="")


@dataclass(frozen=True)
class Range:
    """Bounds for an ``Annotated`` number: ``gt``/``ge`` below, ``lt``/``le`` above."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def check(self, value: float, key: str) -> None:
        for bound, op, ok in ((self.gt, ">", lambda b: value > b), (self.ge, ">=", lambda b: value >= b),
                              (self.lt, "<", lambda b: value < b), (self.le, "<=", lambda b: value <= b)):
            if bound is not None and not ok(bound):
                raise ConfigError(f"{key} must be {op} {bound:g}, got {_short(key)}={value!r}")


Positive = Annotated[float, Range(gt=0)]
NonNegative = Annotated[float, Range(ge=0)]
Fraction = Annotated[float, Range(ge=0, le=1)]
Count = Annotated[int, Range(ge=1)]

T = TypeVar("T")


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _check(value: Any, annotation: Any, key: str) -> Any:
    """``value`` checked against ``annotation`` and converted where lossless (int -> float, list -> tuple)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is Annotated:
        value = _check(value, args[0], key)
        for extra in args[1:]:
            if isinstance(extra, Range):
                extra.check(value, key)
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key} has the wrong type: got {_short(key)}={value!r}, expected {annotation}")
    if origin is Literal:
        if type(value).__module__ == "torch" and str(value).startswith("torch."):  # torch.float64 -> "float64"
            value = str(value)[len("torch."):]
        if value in args and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be one of {', '.join(map(repr, args))}, got {_short(key)}={value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {_short(key)}={value!r}")
        return tuple(_check(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(annotation):
        return value if isinstance(value, annotation) else from_dict(annotation, value, path=f"{key}.")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{key} must be a finite number, got {_short(key)}={value!r}")
            return float(value)
        raise ConfigError(f"{key} must be a number, got {_short(key)}={value!r}")
    if annotation in (int, bool, str):
        if isinstance(value, annotation) and not (annotation is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{key} must be of type {annotation.__name__}, got {_short(key)}={value!r}")
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")  # pragma: no cover


@dataclass(frozen=True)
class Settings:
    """Base of every settings dataclass; subclasses put cross-field rules in :meth:`check`."""

    def __post_init__(self) -> None:
        hints, path = _hints(type(self)), _PATH.get()
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check(getattr(self, f.name), hints[f.name], path + f.name))
        self.check()  # a plain ValueError gets the dotted key from from_dict

    def check(self) -> None:
        """Cross-field rules (raise ``ValueError``); none by default."""

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def from_dict(cls: type[T], data: dict[str, Any] | None, *, prefix: str = "", path: str | None = None) -> T:
    """``cls`` from a mapping, rejecting unknown keys (``prefix``: relative dotted key, ``path``: absolute)."""
    full = path if path is not None else _PATH.get() + prefix
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{full.rstrip('.') or cls.__name__} must be a mapping, got {data!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(full + str(u) for u in unknown)}; known: {', '.join(names)}")
    token = _PATH.set(full)
    try:
        return cls(**data)
    except ConfigError:
        raise
    except ValueError as e:  # a cross-field check (Settings.check, a plain dataclass's own)
        raise ConfigError(f"{full}{e}") from None
    finally:
        _PATH.reset(token)


def to_dict(cfg: Any) -> Any:
    """Plain-data (JSON/YAML-safe) copy of a settings dataclass."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


class Registry:
    """Named components of one kind, registered with ``@registry.register("name", label=...)`` in the modules of
    ``package`` (all imported on first lookup); each class declares its own ``Settings`` dataclass."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind, self.package, self._classes, self._found = kind, package, {}, False

    def register(self, name: str, *, label: str):
        def wrap(cls):
            if name in self._classes and self._classes[name] is not cls:
                raise ConfigError(f"{self.kind} {name!r} is already registered")
            cls.name, cls.label = name, label
            self._classes[name] = cls
            return cls
        return wrap

    def _discover(self) -> None:
        if not self._found:
            self._found = True
            for info in pkgutil.iter_modules(importlib.import_module(self.package).__path__):
                importlib.import_module(f"{self.package}.{info.name}")

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._classes)

    def get(self, name: str) -> type:
        self._discover()
        try:
            return self._classes[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def resolve(self, spec: Any, *, prefix: str = "") -> dict[str, Any]:
        """``{"name": ..., **settings}`` validated by the named class, with its defaults filled in."""
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"{_PATH.get()}{prefix.rstrip('.') or self.kind} must be a mapping with a 'name', got {spec!r}")
        settings = {k: v for k, v in spec.items() if k != "name"}
        cls = self.get(spec["name"])
        return {"name": spec["name"], **to_dict(from_dict(cls.Settings, settings, prefix=prefix))}


@dataclass(frozen=True)
class DataConfig(Settings):
    """Where the real data comes from (see :func:`hdd_lib.data.load`)."""

    dataset: str = "digits"
    data_root: str | None = None  # None: $HDD_DATA_ROOT or ./data
    download: bool = False


@dataclass(frozen=True)
class ModelConfig(Settings):
    """The network that embeds images (distillation) or is trained from scratch (evaluation)."""

    name: str = "convnet"
    width: Count = 128
    depth: Count = 3  # the official code's depth for every image size (Tiny-ImageNet: 8192 features)
    norm: str = "instancenorm"
    act: str = "relu"
    pool: str = "avgpooling"
    #: First convolution's padding: "official" pads 3 for 1-channel input (DC benchmark code), "28px" only at 28 px.
    first_padding: Literal["official", "28px"] | int = "official"

    def kwargs(self, image_size: int, channels: int = 3) -> dict[str, Any]:
        """Keyword options for :func:`hdd_lib.models.get_model` (only ConvNet takes them all)."""
        if self.name != "convnet":
            return {"norm": self.norm}
        pad = {"official": 3 if channels == 1 else 1, "28px": None}.get(self.first_padding, self.first_padding)
        return {"width": self.width, "depth": self.depth, "norm": self.norm, "act": self.act, "pool": self.pool,
                "first_padding": pad}


@dataclass(frozen=True)
class DistillConfig(Settings):
    """One distillation; ``strategy``/``loss`` are ``{"name": ..., **settings}`` validated by the class they name
    (``loss`` may be a list, summed); ``method`` only names the run."""

    method: str = "dm_hdd"
    strategy: Any = field(default_factory=lambda: {"name": "dm"})
    loss: Any = field(default_factory=lambda: {"name": "hdd"})
    ipc: Count = 10
    iterations: Count = 20000
    lr_img: Positive = 1.0
    batch_real: Count = 256
    init: Literal["real", "noise"] = "real"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    dsa: DSAConfig = field(default_factory=DSAConfig)
    lr_geometry: Positive = 0.01  # learning rate of a loss's own parameters (GeoDM's curvatures, weights)
    amp: Literal["auto", "off", "bf16"] = "auto"  # bf16 autocast of the networks on CUDA
    # the real images' forward (no grad); auto = bf16 on CUDA and on CPUs with native bf16 (about 2x)
    real_precision: Literal["auto", "fp32", "bf16"] = "fp32"
    channels_last: bool = True  # NHWC activations on CUDA
    compile: bool = False  # torch.compile the embedding network (DM strategy)
    checkpoint_every: Count = 500
    log_every: Count = 10
    device: str = "auto"

    def check(self) -> None:
        from .losses import LOSSES
        from .strategies import STRATEGIES
        set_ = functools.partial(object.__setattr__, self)
        set_("strategy", STRATEGIES.resolve(self.strategy, prefix="strategy."))
        if isinstance(self.loss, (list, tuple)):
            if not self.loss:
                raise ConfigError("loss must name at least one loss")
            set_("loss", [LOSSES.resolve(s, prefix=f"loss[{i}].") for i, s in enumerate(self.loss)])
        else:
            set_("loss", LOSSES.resolve(self.loss, prefix="loss."))


#: The pretrained-pool papers' own evaluation protocols, selected by ``eval.protocol`` (the default,
#: "dc", is SPEC's, comparable with DM/IDM/HDD); settings given beside ``protocol`` override them.
#: Neither selects on the test set: the papers' best-over-checkpoints accuracy (and NCFM's teacher
#: soft labels) are not offered; the last epoch's accuracy is reported.
EVAL_PROTOCOLS: dict[str, dict[str, Any]] = {
    "ncfm": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01, "epochs": 2000, "batch": 256, "cutmix": 0.5,
             "milestones": (0.2, 0.4, 0.6, 0.8), "gamma": 0.5},
    "dsdm": {"optimizer": "sgd", "lr": 0.01, "weight_decay": 5e-4, "epochs": 1500, "batch": 64, "cutmix": 1.0,
             "milestones": (0.6667, 0.8333), "gamma": 0.2},
}


@dataclass(frozen=True)
class EvalConfig(Settings):
    """The evaluation protocol (SPEC): train from scratch on the synthetic set, test on real data."""

    models: tuple[str, ...] = ("convnet",)
    num_eval: Count = 5
    epochs: Count = 1000
    lr: Positive = 0.01
    momentum: Fraction = 0.9
    weight_decay: NonNegative = 5e-4
    batch: Count = 256
    lr_decay_epoch: int | None = None  # None: as the schedule says (x0.1, fresh optimiser)
    # round: epochs, drop at epochs // 2; official: epochs + 1, drop at epochs // 2 + 1 (the DC/DM code)
    schedule: Literal["round", "official"] = "round"
    protocol: Literal["dc", "ncfm", "dsdm"] = "dc"  # its label (EVAL_PROTOCOLS: the settings it stands for)
    optimizer: Literal["sgd", "adamw"] = "sgd"  # adamw: lr, weight_decay; no momentum
    milestones: tuple[Fraction, ...] = ()  # lr x gamma at each fraction of the epochs (one optimiser throughout)
    gamma: Positive = 0.1
    cutmix: Fraction = 0.0  # CutMix probability per batch (after DSA)
    dsa: DSAConfig = field(default_factory=DSAConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0
    stack: Literal["auto", "on", "off"] = "auto"  # train the num_eval models at once (torch.func); auto: on CUDA
    # bf16 autocast of training and testing; auto = bf16 on CUDA and on CPUs with native bf16 (runtime.cpu_has_bf16)
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    compile: bool = False  # torch.compile the training forward (once per architecture and batch shape)
    test_batch: Count = 1024
    device: str = "auto"

    def check(self) -> None:
        if not self.models:
            raise ValueError("models must name at least one architecture")

    @property
    def train_epochs(self) -> int:
        """Epochs trained: ``epochs`` (round) or ``epochs + 1`` (official: ``range(Epoch + 1)``)."""
        return self.epochs + (self.schedule == "official")

    @property
    def decay_epoch(self) -> int:
        """0-based epoch from which lr is x0.1: ``epochs // 2`` (round), ``epochs // 2 + 1`` (official)."""
        if self.lr_decay_epoch is not None:
            return self.lr_decay_epoch
        return self.epochs // 2 + (self.schedule == "official")
