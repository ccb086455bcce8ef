"""One distillation loop for DM and IDM with a pluggable matching loss (DM, HDD, GeoDM).

Each iteration, batched over classes (no Python loop over classes):

1. **sample**   the embedding network (DM: a freshly initialised frozen net; IDM: a queue net in
                eval mode), a real batch ``[C, B]`` and the synthetic images ``[C, M]``
                (IDM: mosaics expanded), one Siamese DSA transform per class;
2. **embed**    one forward for all real images (no grad, chunked), one for all synthetic ones;
3. **match**    ``loss(real [C, B, D], syn [C, M, D])`` (+ IDM's class-aware CE);
4. **step**     SGD(momentum 0.5) on the synthetic images (IDM: the exact equivalent of one step
                per class), the geometry optimiser for GeoDM; IDM then trains its queue nets;
5. **log / checkpoint**   losses checked for NaN/inf every ``log_every`` iterations; a checkpoint
                every ``checkpoint_every`` iterations and on Ctrl-C; ``resume=True`` continues
                exactly where the last checkpoint stopped.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import augment, idm, provenance
from .config import DistillConfig, to_dict
from .data import ImageSet
from .losses import get_loss
from .models import get_model, reinit_
from .runtime import autocast, compiled, resolve_device, use_bf16, use_bf16_real
from .storage import load_torch, save_torch
from .synset import SyntheticSet

__all__ = ["run", "initial_images", "checkpoint_compatible", "NonFiniteLossError", "CHECKPOINT_NAME", "REAL_CHUNK"]

CHECKPOINT_NAME = "checkpoint.pt"
#: Real images embedded per forward pass (no grad): bounds memory for batch_real=5000 (IDM IPC 1).
REAL_CHUNK = 8192
#: Config fields that may differ between a checkpoint and the run resuming it.
_RESUMABLE_CHANGES = {"iterations", "checkpoint_every", "log_every", "device", "compile"}


class NonFiniteLossError(RuntimeError):
    """The matching loss became NaN or inf; the last good checkpoint is kept."""


# ------------------------------------------------------------------------------------ strategies


class _DM:
    """DM: every iteration a freshly initialised network, frozen, in train mode.

    The network is one module re-drawn in place (:func:`~hdd_lib.models.reinit_`), so with
    ``compile=True`` its ``embed`` is compiled once and never recompiled.
    """

    def __init__(self, make_model: Callable[[torch.Generator], torch.nn.Module], device, generator,
                 compile: bool = False) -> None:
        self.net = make_model(generator).to(device).requires_grad_(False).train()
        self.embed = compiled(self.net.embed, name="the DM embedding") if compile else self.net.embed

    def network(self, iteration: int, generator: torch.Generator) -> torch.nn.Module:
        return reinit_(self.net, generator)

    def regulariser(self, net, f_syn: torch.Tensor) -> torch.Tensor | None:
        return None

    def after_step(self, generator: torch.Generator) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class _IDM:
    """IDM: a queue of partially trained nets; the matching net adds the class-aware CE term."""

    def __init__(self, make_model, device, generator, cfg: DistillConfig, train: ImageSet) -> None:
        self.cfg, self.train_set = cfg.idm, train
        self.queue = idm.ModelQueue(make_model, cfg.idm, device)
        for _ in range(cfg.idm.net_begin):
            self.queue.push(generator)
        self.member: idm.QueueMember | None = None

    def network(self, iteration: int, generator: torch.Generator) -> torch.nn.Module:
        if iteration > 0 and iteration % self.cfg.acc_reset_interval == 0:
            self.queue.reset_accuracy()
        if iteration % self.cfg.net_generate_interval == 0:
            self.queue.push(generator)
        self.member = self.queue.pick(generator)
        return self.member.model.eval()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The matching network's features (queue nets change every iteration: never compiled)."""
        return self.member.model.embed(x)

    def regulariser(self, net, f_syn: torch.Tensor) -> torch.Tensor:
        """:math:`w_{ce} \\cdot acc_{net}(\\%) \\cdot \\sum_c CE(net(syn_c), c)` (mean CE within a class)."""
        c, m = f_syn.shape[:2]
        logits = net.classifier(f_syn.flatten(0, 1)).float()
        labels = torch.arange(c, device=logits.device).repeat_interleave(m)
        ce = F.cross_entropy(logits, labels, reduction="none").view(c, m).mean(1).sum()
        return self.cfg.ce_weight * self.member.accuracy() * ce

    def after_step(self, generator: torch.Generator) -> None:
        images, labels = self.train_set.images, self.train_set.labels
        n = images.shape[0]
        perm = torch.randperm(n, generator=generator)
        cursor = [0]

        def sample_batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
            nonlocal perm
            if cursor[0] + size > n:
                perm, cursor[0] = torch.randperm(n, generator=generator), 0
            idx = perm[cursor[0]: cursor[0] + size].to(images.device, non_blocking=True)
            cursor[0] += size
            return images[idx], labels[idx]

        self.queue.train(sample_batch, generator)

    def state_dict(self) -> dict:
        return {"queue": self.queue.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.queue.load_state_dict(state["queue"])


# ------------------------------------------------------------------------------------ the loop


class _DeferredInterrupt:
    """Hold Ctrl-C (SIGINT) until the end of the current iteration, so the checkpoint written then is
    consistent; a second Ctrl-C interrupts at once. Outside the main thread, a no-op."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this iteration (press again to stop at once)")

    def __enter__(self) -> "_DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def initial_images(cfg: DistillConfig, train: ImageSet, generator: torch.Generator) -> torch.Tensor:
    """The synthetic set before optimisation, ``[C, ipc, ch, H, W]``: random real images of each class
    (``init="real"``; IDM: mosaics of ``factor**2`` downscaled real images) or Gaussian noise.
    ``run`` draws it first from its generator, so ``initial_images(cfg, train, Generator().manual_seed(cfg.seed))``
    is exactly the starting point of ``run(cfg, train)``."""
    spec = train.spec
    factor = cfg.idm.factor if cfg.strategy == "idm" else 1
    if cfg.init == "noise":
        return torch.randn(spec.num_classes, cfg.ipc, *spec.shape, generator=generator)
    real = train.sample(cfg.ipc * factor * factor, generator=generator)
    return idm.encode(real.view(spec.num_classes, cfg.ipc, factor * factor, *spec.shape), factor).detach().clone()


def _embed_real(embed, x: torch.Tensor, bf16: bool, device) -> torch.Tensor:
    with torch.no_grad(), autocast(bf16, device):
        if x.shape[0] <= REAL_CHUNK:
            return embed(x).float()
        return torch.cat([embed(chunk).float() for chunk in x.split(REAL_CHUNK)])


def _geometry_parameters(loss) -> list[torch.nn.Parameter]:
    get = getattr(loss, "geometry_parameters", None)
    return [p for p in (get() if get else []) if p.requires_grad]


def _config_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(saved) | set(current) if k not in _RESUMABLE_CHANGES and saved.get(k) != current.get(k))


def checkpoint_compatible(out_dir: str | os.PathLike, cfg: DistillConfig) -> bool:
    """Whether ``out_dir`` holds no checkpoint or one that ``cfg`` can resume (True), or one made with
    other settings (False)."""
    path = Path(out_dir) / CHECKPOINT_NAME
    return not path.exists() or not _config_diff(load_torch(path)["config"], to_dict(cfg))


def _check_resumable(saved: dict[str, Any], current: dict[str, Any]) -> None:
    diff = _config_diff(saved, current)
    if diff:
        raise ValueError(
            "cannot resume: the checkpoint was made with different settings for "
            + ", ".join(f"{k} (checkpoint {saved.get(k)!r}, now {current.get(k)!r})" for k in diff)
        )


def run(
    cfg: DistillConfig,
    train: ImageSet,
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    on_eval: Callable[[int, SyntheticSet], dict[str, Any]] | None = None,
    eval_every: int = 0,
    on_iteration: Callable[[int], None] | None = None,
) -> SyntheticSet:
    """Distil ``train`` into ``cfg.ipc`` images per class.

    Parameters
    ----------
    cfg : the run's settings (method, ipc, iterations, learning rates, loss settings, ...)
    train : the real training set (moved to the run's device)
    out_dir : where ``checkpoint.pt`` is kept (no checkpoints if ``None``)
    resume : continue from ``out_dir/checkpoint.pt`` if it exists
    progress : show a tqdm bar
    on_eval : called as ``on_eval(iteration, synthetic_set)`` every ``eval_every`` iterations and at
        the end; what it returns is stored in the history (accuracy-vs-iteration curves)
    on_iteration : called as ``on_iteration(iteration)`` after each step (benchmarks mark clocks here)

    Returns
    -------
    SyntheticSet with ``meta`` holding the config, provenance, timings and the loss history.
    """
    device = resolve_device(cfg.device)
    train = train.to(device)
    spec = train.spec
    num_classes = spec.num_classes
    factor = cfg.idm.factor if cfg.strategy == "idm" else 1
    bf16 = use_bf16(cfg.amp, device)
    bf16_real = use_bf16_real(cfg.real_precision, cfg.amp, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    batch_real = min(cfg.batch_real, int(train.counts.min()))
    if batch_real < cfg.batch_real:
        print(f"batch_real={cfg.batch_real} exceeds the smallest class ({batch_real} images): using {batch_real}")

    def make_model(generator: torch.Generator) -> torch.nn.Module:
        model = get_model(cfg.model.name, spec.channels, num_classes, spec.image_size[0],
                          generator=generator, **cfg.model.kwargs(spec.image_size[0]))
        model = model.to(device)
        if cfg.channels_last and device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        return model

    # ---- the synthetic set, its optimiser, the loss and the strategy
    syn = initial_images(cfg, train, gen).to(device=device, dtype=torch.float32).requires_grad_(True)
    if cfg.strategy == "idm":
        opt = idm.ClassSequentialSGD(syn, lr=cfg.lr_img, momentum=0.5)
    else:
        opt = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=0.5)
    loss_fn = get_loss(cfg.loss, **cfg.loss_settings()).to(device)
    geo_params = _geometry_parameters(loss_fn)
    geo_opt = torch.optim.Adam(geo_params, lr=cfg.lr_geometry) if geo_params else None
    adversarial = cfg.loss == "geodm" and cfg.geodm.learn == "adversarial"
    if cfg.strategy == "idm":
        strategy = _IDM(make_model, device, gen, cfg, train)
    else:
        strategy = _DM(make_model, device, gen, compile=cfg.compile)

    # ---- resume
    ckpt_path = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
    start, history, elapsed = 0, [], 0.0
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = load_torch(ckpt_path)
        _check_resumable(state["config"], to_dict(cfg))
        with torch.no_grad():
            syn.copy_(state["syn"].to(device))
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        loss_fn.load_state_dict(state["loss"])
        if geo_opt is not None:
            geo_opt.load_state_dict(state["geo_optimizer"])
        strategy.load_state_dict(state["strategy"])
        start, history, elapsed = state["iteration"], state["history"], state["elapsed"]
        print(f"resumed from {ckpt_path} at iteration {start}")

    def snapshot(iteration: int) -> SyntheticSet:
        meta = {
            "dataset": dataclasses.asdict(spec),
            "config": to_dict(cfg),
            "iteration": iteration,
            "provenance": provenance.collect(device, data_digest=data_digest),
            "timing": {"seconds": elapsed, "ms_per_iteration": 1e3 * elapsed / max(1, iteration)},
            "history": history,
        }
        return SyntheticSet(syn.detach().cpu().clone(), factor=factor, meta=meta)

    def checkpoint(iteration: int) -> None:
        if ckpt_path is None:
            return
        save_torch(ckpt_path, {
            "iteration": iteration, "syn": syn.detach().cpu(), "optimizer": opt.state_dict(),
            "generator": gen.get_state(), "loss": loss_fn.state_dict(),
            "geo_optimizer": geo_opt.state_dict() if geo_opt is not None else None,
            "strategy": strategy.state_dict(), "history": history, "elapsed": elapsed,
            "config": to_dict(cfg),
        })

    pending: list[tuple[int, torch.Tensor, dict[str, torch.Tensor]]] = []  # losses not yet synced

    def flush() -> float | None:
        """Move pending losses to the host, check them, append them to the history."""
        if not pending:
            return None
        values = torch.stack([v for _, v, _ in pending]).cpu()
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            it_bad = pending[int(bad[0])][0]
            kept = f"the last good checkpoint ({ckpt_path}) is kept" if ckpt_path and ckpt_path.exists() else "no checkpoint was written yet"
            raise NonFiniteLossError(
                f"the matching loss became {values[bad[0]].item()} at iteration {it_bad} "
                f"(method={cfg.method}, lr_img={cfg.lr_img}); {kept}. Lower lr_img or check the loss settings."
            )
        for (it, _, extra), v in zip(pending, values.tolist()):
            history.append({"iteration": it, "loss": v, **{k: float(t) for k, t in extra.items()}})
        pending.clear()
        return history[-1]["loss"]

    m_syn = cfg.ipc * factor * factor
    data_digest = provenance.data_digest(train.images, train.labels)
    print(f"distilling {spec.name}: {num_classes} classes x {cfg.ipc} images (x{factor * factor} expanded), "
          f"method={cfg.method}, batch_real={batch_real}, device={device}, bf16={bf16}, bf16_real={bf16_real}")
    bar = tqdm(range(start, cfg.iterations), initial=start, total=cfg.iterations, disable=not progress,
               desc=f"{cfg.method} ipc{cfg.ipc}", dynamic_ncols=True)
    t0 = time.perf_counter()
    with _DeferredInterrupt() as interrupt, bar:
        for it in bar:
            # ---- sample
            net = strategy.network(it, gen)
            real = train.sample(batch_real, generator=gen)  # [C, B, ch, H, W]
            if isinstance(opt, idm.ClassSequentialSGD):
                opt.prepare()
            syn_images = idm.decode(syn, factor).flatten(1, 2) if factor > 1 else syn  # [C, M, ...]
            real_aug, syn_aug = augment.siamese(real, syn_images, cfg.dsa, generator=gen)

            # ---- embed
            f_real = _embed_real(strategy.embed, real_aug.flatten(0, 1), bf16_real, device).view(num_classes, batch_real, -1)
            with autocast(bf16, device):
                f_syn = strategy.embed(syn_aug.flatten(0, 1)).float().view(num_classes, m_syn, -1)

            # ---- match
            loss = loss_fn(f_real, f_syn)
            extra = strategy.regulariser(net, f_syn)
            total = loss if extra is None else loss + extra

            # ---- step
            opt.zero_grad()
            if geo_opt is not None:
                geo_opt.zero_grad(set_to_none=True)
            total.backward()
            if adversarial:
                for p in geo_params:
                    if p.grad is not None:
                        p.grad.neg_()
            opt.step()
            if geo_opt is not None:
                geo_opt.step()
            strategy.after_step(gen)
            if on_iteration is not None:
                on_iteration(it)

            # ---- log / eval / checkpoint
            logged = {"match": loss.detach()} if extra is not None else {}
            state_fn = getattr(loss_fn, "state_tensors", None)
            if state_fn is not None:
                logged.update(state_fn())
            pending.append((it, total.detach(), logged))
            done = it + 1
            if done % cfg.log_every == 0 or done == cfg.iterations:
                bar.set_postfix(loss=f"{flush():.4g}")
            if on_eval is not None and eval_every and done % eval_every == 0 and done != cfg.iterations:
                flush()
                history.append({"iteration": done, **on_eval(done, snapshot(done))})
            if done % cfg.checkpoint_every == 0 or done == cfg.iterations or interrupt.requested:
                flush()
                elapsed += time.perf_counter() - t0
                t0 = time.perf_counter()
                checkpoint(done)
            if interrupt.requested:
                where = f"written to {ckpt_path}; rerun with resume=True" if ckpt_path else "not kept (no out_dir)"
                print(f"\ninterrupted after iteration {done}: checkpoint {where}")
                raise KeyboardInterrupt
    flush()
    elapsed += time.perf_counter() - t0
    result = snapshot(cfg.iterations)
    if on_eval is not None:
        history.append({"iteration": cfg.iterations, **on_eval(cfg.iterations, result)})
        result.meta["history"] = history
    return result
