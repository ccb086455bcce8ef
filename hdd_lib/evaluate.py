"""The evaluation protocol (SPEC, DC benchmark): train fresh networks on a synthetic set, test on real data.

SGD (lr 0.01, momentum 0.9, wd 5e-4), batch 256, lr x0.1 (fresh optimiser) from ``epochs // 2``, DSA per
batch, top-1 on the real test set. On a GPU the ``num_eval`` models train at once (stacked parameters,
``torch.func.vmap``) where there is no BatchNorm; ``stack="auto"`` loops on a CPU. Options (the NCFM and DSDM
papers' protocols, :data:`hdd_lib.config.EVAL_PROTOCOLS`): AdamW, lr x ``gamma`` at ``milestones``, CutMix. Speed
options (the ``cpu`` profiles use them): bf16 autocast (``precision``), a compiled training forward (``compile``).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import augment
from .config import EvalConfig
from .data import ImageSet
from .models import get_model
from .runtime import autocast, compiled, resolve_device, use_bf16_real
from .synset import SyntheticSet

__all__ = ["EvalResult", "evaluate", "evaluate_images", "train_models", "parse_model"]


def parse_model(entry: str) -> tuple[str, dict[str, str]]:
    """``"resnet18"`` or ``"resnet18:batchnorm"`` (the norm variant) -> (name, keyword options)."""
    name, _, norm = entry.partition(":")
    return name, ({"norm": norm} if norm else {})


@dataclass(frozen=True)
class EvalResult:
    """Test accuracies (percent) of ``num_eval`` networks of one architecture."""

    model: str
    accs: tuple[float, ...]
    seconds: float

    @property
    def mean(self) -> float:
        return float(sum(self.accs) / len(self.accs))

    @property
    def std(self) -> float:
        """Population standard deviation (``np.std``, as the DM/IDM/HDD scripts report)."""
        m = self.mean
        return float(math.sqrt(sum((a - m) ** 2 for a in self.accs) / len(self.accs)))

    @property
    def seconds_per_model(self) -> float:
        return self.seconds / len(self.accs)

    def to_dict(self) -> dict:
        return {"model": self.model, "accs": list(self.accs), "mean": self.mean, "std": self.std,
                "seconds": self.seconds, "seconds_per_model": self.seconds_per_model}


class _Stacked:
    """``E`` copies of one architecture as stacked parameters; ``forward`` is vmapped over models."""

    def __init__(self, models: Sequence[nn.Module], *, compile: bool = False) -> None:
        params, buffers = torch.func.stack_module_state(list(models))
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = buffers
        self.base = copy.deepcopy(models[0]).to("meta")
        def call(p, b, x):
            return torch.func.functional_call(self.base, (p, b), (x,))
        self._each = torch.func.vmap(call)  # x [E, B, ...]
        if compile:
            self._each = compiled(self._each, name="the stacked evaluation networks")
        self._shared = torch.func.vmap(call, in_dims=(0, 0, None))  # x [B, ...] for every model

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def __call__(self, x: torch.Tensor, *, shared: bool = False) -> torch.Tensor:
        if shared:  # large shared batches (the test set): one model at a time beats a grouped conv
            return torch.stack([
                torch.func.functional_call(self.base, ({k: v[e] for k, v in self.params.items()},
                                                       {k: v[e] for k, v in self.buffers.items()}), (x,))
                for e in range(len(next(iter(self.params.values()))))
            ])
        return self._each(self.params, self.buffers, x)


class _Listed:
    """``E`` independent modules (BatchNorm models); same interface as :class:`_Stacked`."""

    def __init__(self, models: Sequence[nn.Module], *, compile: bool = False) -> None:
        self.models = list(models)
        # compiled training forwards (the test pass stays eager: its two batch shapes would each compile)
        self._train = [compiled(m, name="the evaluation network") if compile else m for m in self.models]

    def parameters(self) -> list[torch.Tensor]:
        return [p for m in self.models for p in m.parameters()]

    def train(self, mode: bool = True) -> None:
        for m in self.models:
            m.train(mode)

    def __call__(self, x: torch.Tensor, *, shared: bool = False) -> torch.Tensor:
        if shared:
            return torch.stack([m(x) for m in self.models])
        return torch.stack([m(x[e]) for e, m in enumerate(self._train)])


def train_models(images: torch.Tensor, labels: torch.Tensor, *, model: str, num_classes: int, cfg: EvalConfig,
                 generator: torch.Generator, num_models: int | None = None, progress: bool = False):
    """Train ``num_models`` (default ``cfg.num_eval``) fresh ``model`` nets (``name[:norm]``) on ``images``; returns
    an ensemble callable as ``ens(x, shared=True) -> logits [E, B, K]``."""
    device = images.device
    n, e = images.shape[0], num_models or cfg.num_eval
    name, kwargs = parse_model(model)
    if name == cfg.model.name:
        kwargs = {**cfg.model.kwargs(images.shape[-1], images.shape[1]), **kwargs}
    nets = [get_model(name, images.shape[1], num_classes, images.shape[-1], generator=generator, **kwargs).to(device)
            for _ in range(e)]
    stack = cfg.stack == "on" or (cfg.stack == "auto" and device.type == "cuda")
    batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in nets[0].modules())
    ens = (_Stacked if stack and not batchnorm else _Listed)(nets, compile=cfg.compile)
    bf16 = use_bf16_real(cfg.precision, "auto", device)
    ens.train()
    batch = min(cfg.batch, n)
    steps = math.ceil(n / batch)

    def optimiser(lr: float) -> torch.optim.Optimizer:
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(ens.parameters(), lr=lr, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(ens.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    opt = optimiser(cfg.lr)
    drops = [round(m * cfg.epochs) for m in cfg.milestones]
    for epoch in tqdm(range(cfg.train_epochs), disable=not progress, desc=f"train {e}x {model}", leave=False):
        if drops:  # MultiStepLR: lr x gamma per milestone passed
            for group in opt.param_groups:
                group["lr"] = cfg.lr * cfg.gamma ** sum(epoch >= d for d in drops)
        elif epoch == cfg.decay_epoch and epoch > 0:
            opt = optimiser(cfg.lr * 0.1)
        order = torch.rand(e, n, generator=generator).argsort(dim=1).to(device, non_blocking=True)  # own order per model
        for s in range(steps):
            idx = order[:, s * batch: (s + 1) * batch]  # [E, b]
            x = augment.apply(images[idx], augment.sample(cfg.dsa, e, per_group=idx.shape[1], generator=generator,
                                                           image_size=tuple(images.shape[-2:])))
            if cfg.cutmix:
                x, perm, keep = augment.cutmix(x, cfg.cutmix, generator=generator)
            with autocast(bf16, device):
                logits = ens(x).float()  # [E, b, K]
            if cfg.cutmix:  # keep * CE(y) + (1 - keep) * CE(y[perm]), per model
                ce = [F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(idx.shape)
                      for y in (labels[idx], labels[idx].gather(1, perm.to(idx.device)))]
                loss = (keep[:, None] * ce[0] + (1 - keep[:, None]) * ce[1]).sum() / idx.shape[1]
            else:
                loss = F.cross_entropy(logits.flatten(0, 1), labels[idx].flatten(), reduction="sum") / idx.shape[1]
            opt.zero_grad(set_to_none=True)
            loss.backward()  # sum of per-model mean losses: each model gets its own gradient
            opt.step()
    ens.train(False)
    return ens


@torch.no_grad()
def _accuracy(ens, test: ImageSet, cfg: EvalConfig) -> list[float]:
    correct = None
    bf16 = use_bf16_real(cfg.precision, "auto", test.images.device)
    for x, y in zip(test.images.split(cfg.test_batch), test.labels.split(cfg.test_batch)):
        with autocast(bf16, x.device):
            logits = ens(x, shared=True).float()
        hits = (logits.argmax(-1) == y).sum(-1)  # [E]
        correct = hits if correct is None else correct + hits
    return (100.0 * correct.double() / len(test)).tolist()


def evaluate_images(images: torch.Tensor, labels: torch.Tensor, test: ImageSet, cfg: EvalConfig, *,
                    progress: bool = True) -> dict[str, EvalResult]:
    """Evaluate a training set ``images [N, ch, H, W]`` / ``labels [N]`` on every ``cfg.models`` architecture."""
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"the training set holds {int((~torch.isfinite(images)).sum())} NaN or inf values: "
                         "it cannot be evaluated (was its distillation diverging?)")
    device = resolve_device(cfg.device)
    test = test.to(device)
    images, labels = images.to(device).float(), labels.to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    results = {}
    for name in cfg.models:
        t0 = time.perf_counter()
        ens = train_models(images, labels, model=name, num_classes=test.spec.num_classes, cfg=cfg,
                           generator=generator, progress=progress)
        accs = _accuracy(ens, test, cfg)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        r = results[name] = EvalResult(name, tuple(accs), time.perf_counter() - t0)
        if progress:
            print(f"  {name}: {r.mean:.2f} ± {r.std:.2f} % over {len(accs)} models ({r.seconds_per_model:.1f} s/model)")
    return results


def evaluate(syn: SyntheticSet, test: ImageSet, cfg: EvalConfig, *, progress: bool = True) -> dict[str, EvalResult]:
    """Evaluate a synthetic set (IDM mosaics are expanded first) with ``cfg``'s protocol."""
    if syn.num_classes != test.spec.num_classes:
        raise ValueError(f"synthetic set has {syn.num_classes} classes but the test set {test.spec.num_classes}")
    images, labels = syn.expanded()
    return evaluate_images(images, labels, test, cfg, progress=progress)
