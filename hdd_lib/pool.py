"""Pools of networks pretrained on the real data (the NCFM and DSDM bases): build, save, load.

A pool folder holds ``net<k>.pt`` = ``{"built_for", "init", "trained", "accuracy"}`` per network,
written atomically when its training ends (an interrupted :func:`pretrain` resumes at the first
missing one; network ``k`` draws only from a generator seeded by ``(seed, k)``, so the result is the
same). ``built_for``: dataset, data digest, architecture, pretraining settings; :func:`load` refuses
a pool that is incomplete or built for anything else. Training, as NCFM's and DSDM's scripts: SGD on
shuffled real batches, DSA (one family per batch), CutMix with probability ``cutmix``, lr x0.2 at
each ``milestones`` fraction of the epochs; ``accuracy``: last-epoch training accuracy (%).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import augment, provenance
from .config import Count, Fraction, ModelConfig, NonNegative, Positive, Settings, to_dict
from .data import DatasetSpec, ImageSet
from .models import get_model
from .runtime import resolve_device
from .storage import load_torch, save_torch

__all__ = ["PretrainConfig", "built_for", "make_model", "pretrain", "load"]

_WHAT = {"dataset": "dataset", "data": "data copy", "model": "architecture", "pretrain": "pretraining settings"}


@dataclass(frozen=True)
class PretrainConfig(Settings):
    """How the networks are trained; defaults are NCFM's (DSDM: 10 nets, 20 epochs, batch 256, CutMix 1)."""

    nets: Count = 20
    epochs: Count = 60
    lr: Positive = 0.01
    momentum: Fraction = 0.9
    weight_decay: NonNegative = 5e-4
    batch: Count = 128
    dsa: str = "color_crop"
    cutmix: Fraction = 0.5
    milestones: tuple[Fraction, ...] = (0.6667, 0.8333)
    seed: int = 0


def built_for(train: ImageSet, model: ModelConfig, cfg: PretrainConfig) -> dict[str, Any]:
    """What a pool is for: dataset name, data digest, architecture and pretraining settings."""
    return {"dataset": train.spec.name, "data": provenance.data_digest(train.images, train.labels),
            "model": to_dict(model), "pretrain": to_dict(cfg)}


def make_model(spec: DatasetSpec, model: ModelConfig, generator: torch.Generator) -> torch.nn.Module:
    """A freshly initialised network of ``model`` for ``spec``'s images, on the CPU."""
    size = spec.image_size[0]
    return get_model(model.name, spec.channels, spec.num_classes, size, generator=generator,
                     **model.kwargs(size, spec.channels))


def _train(net: torch.nn.Module, train: ImageSet, cfg: PretrainConfig, generator: torch.Generator, bar) -> float:
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, sorted(round(m * cfg.epochs) for m in cfg.milestones), gamma=0.2)
    dsa, correct, seen = augment.DSAConfig(strategy=cfg.dsa), 0, 0
    for epoch in range(cfg.epochs):
        for idx in torch.randperm(len(train), generator=generator).split(cfg.batch):
            idx = idx.to(train.device)
            x, y = augment.augment(train.images[idx], dsa, generator=generator), train.labels[idx]
            x, perm, keep = augment.cutmix(x[None], cfg.cutmix, generator=generator)
            logits = net(x[0])
            loss = keep[0] * F.cross_entropy(logits, y) + (1 - keep[0]) * F.cross_entropy(logits, y[perm[0].to(y.device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if epoch == cfg.epochs - 1:
                correct, seen = correct + (logits.detach().argmax(1) == y).sum(), seen + len(y)
        sched.step()
        bar.update(1)
    return float(100.0 * correct / seen)


def pretrain(train: ImageSet, model: ModelConfig, cfg: PretrainConfig, folder: str | Path, *,
             device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Train ``cfg.nets`` networks into ``folder`` (keeping those built for the same; removing any
    beyond ``cfg.nets``); returns ``{"built_for", "accuracy": [...], "code": digest}``."""
    folder, device = Path(folder), resolve_device(device)
    train = train.to(device)
    record, accs = built_for(train, model, cfg), []
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("net*.pt"):
        if int(stale.stem[3:]) >= cfg.nets:
            stale.unlink()
    cpu = lambda net: {n: t.detach().cpu().clone() for n, t in net.state_dict().items()}  # noqa: E731
    with tqdm(total=cfg.nets * cfg.epochs, disable=not progress, desc=f"pretrain {folder.name}", unit="epoch") as bar:
        for k in range(cfg.nets):
            path = folder / f"net{k:03d}.pt"
            saved = load_torch(path) if path.exists() else {}
            if saved.get("built_for") == record:
                bar.update(cfg.epochs)
            else:
                gen = torch.Generator().manual_seed(cfg.seed * 100_003 + k)
                net = make_model(train.spec, model, gen).to(device)
                saved = {"built_for": record, "init": cpu(net)}
                saved.update(accuracy=_train(net, train, cfg, gen, bar), trained=cpu(net))
                save_torch(path, saved)
            accs.append(saved["accuracy"])
    return {"built_for": record, "accuracy": accs, "code": provenance.code_digest("hdd_lib.pool")}


def load(folder: str | Path, expected: dict[str, Any]) -> list[dict[str, Any]]:
    """The networks of the pool in ``folder`` (``{"init", "trained", ...}`` each), after checking that it
    is complete and was built for ``expected`` (:func:`built_for`); one-line ``ValueError`` otherwise."""
    paths = [Path(folder) / f"net{k:03d}.pt" for k in range(expected["pretrain"]["nets"])]
    missing = sum(not p.is_file() for p in paths)
    if missing:
        raise ValueError(f"no complete pretrained pool at {folder} ({missing} of {len(paths)} networks missing): build it "
                         f"(the `pretrain` stage, or `python -m hdd_lib pretrain --dataset {expected['dataset']} --method M`)")
    nets = [load_torch(p) for p in paths]
    for (key, what), n in itertools.product(_WHAT.items(), nets):
        if n["built_for"].get(key) != expected[key]:
            raise ValueError(f"the pool at {folder} was built for another {what} ({key}={n['built_for'].get(key)!r}, "
                             f"this run: {expected[key]!r}); rebuild it")
    return nets
