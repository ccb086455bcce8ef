"""One distillation loop with a pluggable strategy and matching loss, batched over classes.

Per iteration: sample (network, real batch, the strategy's training images, Siamese DSA, ``loss.resample``); embed;
match ``loss(real [C, B, D], syn [C, M, D])`` + regulariser; step images and the loss's parameters;
log and checkpoint (on Ctrl-C, SIGTERM, SIGHUP too). ``resume=True`` needs the same config, data and code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from . import augment, provenance
from .config import DistillConfig, to_dict
from .data import ImageSet
from .losses import build_loss
from .runtime import autocast, resolve_device, use_bf16, use_bf16_real
from .storage import RunLock, load_torch, save_torch
from .strategies import get_strategy
from .synset import SyntheticSet

__all__ = ["run", "initial_images", "fingerprint", "resume_mismatch", "NonFiniteError", "ResumeMismatch",
           "CHECKPOINT_NAME", "REAL_CHUNK"]

CHECKPOINT_NAME = "checkpoint.pt"
#: Real images embedded per forward pass (no grad): bounds memory for batch_real=5000 (IDM IPC 1).
REAL_CHUNK = 8192
#: Config fields that may differ between a checkpoint and the run resuming it.
_RESUMABLE_CHANGES = {"iterations", "checkpoint_every", "log_every", "device", "compile"}


class NonFiniteError(RuntimeError):
    """The loss or the synthetic images became NaN or inf; the last good checkpoint is kept."""


class ResumeMismatch(ValueError):
    """A checkpoint was made by other settings, data or code: it cannot be continued."""


def fingerprint(cfg: DistillConfig, train: ImageSet) -> dict[str, Any]:
    """What a result depends on: config, data (name, digest), code digest and library versions."""
    digest = provenance.data_digest(train.images, train.labels)
    return {"config": to_dict(cfg), "data": {"dataset": train.spec.name, "digest": digest},
            "code": provenance.code_digest("hdd_lib.distill"), "versions": provenance.versions()}


def resume_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between a checkpoint's fingerprint and the current one (empty: resumable)."""
    old, new = saved.get("config", {}), current["config"]
    out = [f"config {k} (checkpoint {old.get(k)!r}, now {new.get(k)!r})"
           for k in sorted(set(old) | set(new)) if k not in _RESUMABLE_CHANGES and old.get(k) != new.get(k)]
    for key, what, why in (("data", "data", ""), ("code", "code", ": hdd_lib changed"),
                           ("versions", "library versions", "")):
        if saved.get(key) != current[key]:
            out.append(f"{what} (checkpoint {saved.get(key)}, now {current[key]}{why})")
    return out


class _DeferredSignals:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the end of the current iteration, so the checkpoint
    written then is consistent; a second signal interrupts at once. Outside the main thread, a no-op."""

    SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))

    def __init__(self) -> None:
        self.requested, self._previous = None, {}

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        print(f"\n{self.requested}: stopping after this iteration (send it again to stop at once)")

    def __enter__(self) -> "_DeferredSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)


def initial_images(cfg: DistillConfig, train: ImageSet, generator: torch.Generator) -> torch.Tensor:
    """The stored images before optimisation, ``[C, ipc, ch, H, W]`` (see ``Strategy.initial_images``).
    ``initial_images(cfg, train, Generator().manual_seed(cfg.seed))`` is exactly where ``run`` starts."""
    return get_strategy(cfg, train, torch.device("cpu")).initial_images(generator)


def _embed_real(embed, x: torch.Tensor, bf16: bool, device) -> torch.Tensor:
    with torch.no_grad(), autocast(bf16, device):
        if x.shape[0] <= REAL_CHUNK:
            return embed(x).float()
        return torch.cat([embed(chunk).float() for chunk in x.split(REAL_CHUNK)])


def run(cfg: DistillConfig, train: ImageSet, *, out_dir: str | os.PathLike | None = None, resume: bool = False,
        progress: bool = True, on_eval: Callable[[int, SyntheticSet], dict[str, Any]] | None = None,
        eval_every: int = 0, on_iteration: Callable[[int], None] | None = None) -> SyntheticSet:
    """Distil ``train`` into ``cfg.ipc`` images per class; ``out_dir`` keeps ``checkpoint.pt`` (locked), ``resume``
    continues it (:class:`ResumeMismatch` if made by other settings, data or code); ``on_eval(iteration, syn)`` runs
    every ``eval_every`` iterations and at the end, its result stored in the history; ``on_iteration(it)`` after each
    step. Returns a SyntheticSet whose ``meta`` holds the fingerprint and history, ``provenance`` the volatiles."""
    out_dir = None if out_dir is None else Path(out_dir)
    with RunLock(out_dir) if out_dir is not None else contextlib.nullcontext():
        return _run(cfg, train, out_dir, resume, progress, on_eval, eval_every, on_iteration)


def _run(cfg, train, out_dir, resume, progress, on_eval, eval_every, on_iteration) -> SyntheticSet:
    device = resolve_device(cfg.device)
    train = train.to(device)
    spec = train.spec
    bf16 = use_bf16(cfg.amp, device)
    bf16_real = use_bf16_real(cfg.real_precision, cfg.amp, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    batch_real = min(cfg.batch_real, int(train.counts.min()))
    if batch_real < cfg.batch_real:
        print(f"batch_real={cfg.batch_real} exceeds the smallest class ({batch_real} images): using {batch_real}")
    origin = fingerprint(cfg, train)

    # ---- the strategy, the synthetic images and their optimiser, the loss and its own optimiser
    strategy = get_strategy(cfg, train, device)
    syn = strategy.initial_images(gen).to(device=device, dtype=torch.float32).requires_grad_(True)
    opt = strategy.optimizer(syn)
    loss_fn = build_loss(cfg.loss).to(device)
    learned = loss_fn.learned_parameters()
    loss_opt = torch.optim.Adam(learned, lr=cfg.lr_geometry) if learned else None
    strategy.start(gen)

    # ---- resume
    ckpt_path = out_dir / CHECKPOINT_NAME if out_dir is not None else None
    start, history, elapsed, resumed_at = 0, [], 0.0, None
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = load_torch(ckpt_path)
        diff = resume_mismatch(state.get("fingerprint", {}), origin)
        if diff:
            raise ResumeMismatch(f"cannot resume {ckpt_path}: it was made with different " + "; ".join(diff))
        with torch.no_grad():
            syn.copy_(state["syn"].to(device))
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        loss_fn.load_state_dict(state["loss"])
        if loss_opt is not None:
            loss_opt.load_state_dict(state["loss_optimizer"])
        strategy.load_state_dict(state["strategy"])
        start, history, elapsed = state["iteration"], state["history"], state["elapsed"]
        resumed_at = start
        if progress:  # quiet under the pipeline: its records must not depend on what ran before
            print(f"resumed from {ckpt_path} at iteration {start}")

    def nonfinite(what: str) -> NonFiniteError:
        kept = f"the last good checkpoint ({ckpt_path}) is kept" if ckpt_path and ckpt_path.exists() \
            else "no checkpoint was written"
        return NonFiniteError(f"{what} (method={cfg.method}, lr_img={cfg.lr_img}); {kept}. "
                              "Lower lr_img or check the loss settings.")

    def check_images(iteration: int) -> None:
        if not bool(torch.isfinite(syn).all()):
            raise nonfinite(f"the synthetic images became NaN or inf by iteration {iteration}")

    def snapshot(iteration: int) -> SyntheticSet:
        check_images(iteration)
        meta = {"dataset": dataclasses.asdict(spec), **origin, "method": cfg.method, "iteration": iteration,
                "history": list(history)}
        out = SyntheticSet(syn.detach().cpu().clone(), factor=strategy.factor, meta=meta)
        out.provenance = provenance.collect(device, seconds=elapsed, ms_per_iteration=1e3 * elapsed / max(1, iteration),
                                            resumed_at=resumed_at)
        return out

    def checkpoint(iteration: int) -> None:
        if ckpt_path is None:
            return
        check_images(iteration)
        save_torch(ckpt_path, {
            "iteration": iteration, "syn": syn.detach().cpu(), "optimizer": opt.state_dict(),
            "generator": gen.get_state(), "loss": loss_fn.state_dict(),
            "loss_optimizer": loss_opt.state_dict() if loss_opt is not None else None,
            "strategy": strategy.state_dict(), "history": history, "elapsed": elapsed, "fingerprint": origin,
        })

    pending: list[tuple[int, torch.Tensor, dict[str, torch.Tensor]]] = []  # losses not yet synced

    def flush() -> float | None:
        """Move pending losses to the host, check them, append them to the history."""
        if not pending:
            return None
        values = torch.stack([v for _, v, _ in pending]).cpu()
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            raise nonfinite(f"the matching loss became {values[bad[0]].item()} at iteration {pending[int(bad[0])][0]}")
        for (it, _, extra), v in zip(pending, values.tolist()):
            history.append({"iteration": it, "loss": v, **{k: float(t) for k, t in extra.items()}})
        pending.clear()
        return history[-1]["loss"]

    f2 = strategy.factor ** 2
    print(f"distilling {spec.name}: {spec.num_classes} classes x {cfg.ipc} images (x{f2} expanded), "
          f"method={cfg.method} ({strategy.label} + {loss_fn.label}), batch_real={batch_real}, device={device}, bf16={bf16}, bf16_real={bf16_real}")
    bar = tqdm(range(start, cfg.iterations), initial=start, total=cfg.iterations, disable=not progress,
               desc=f"{cfg.method} ipc{cfg.ipc}", dynamic_ncols=True)
    t0 = time.perf_counter()
    with _DeferredSignals() as stop, bar:
        for it in bar:
            # ---- sample
            net = strategy.network(it, gen)
            real = train.sample(batch_real, generator=gen)  # [C, B, ch, H, W]
            syn_images = strategy.images(syn)  # [C, M, ch, H, W]
            real_aug, syn_aug = augment.siamese(real, syn_images, cfg.dsa, generator=gen)
            loss_fn.resample(gen)
            # ---- embed
            c, m = syn_images.shape[:2]
            f_real = _embed_real(strategy.embed, real_aug.flatten(0, 1), bf16_real, device).view(c, batch_real, -1)
            with autocast(bf16, device):
                f_syn = strategy.embed(syn_aug.flatten(0, 1)).float().view(c, m, -1)
            # ---- match
            loss = loss_fn(f_real, f_syn)
            extra = strategy.regulariser(net, f_syn)
            total = loss if extra is None else loss + extra
            # ---- step
            opt.zero_grad()
            if loss_opt is not None:
                loss_opt.zero_grad(set_to_none=True)
            total.backward()
            if loss_fn.ascent:
                for p in learned:
                    if p.grad is not None:
                        p.grad.neg_()
            opt.step()
            if loss_opt is not None:
                loss_opt.step()
            strategy.after_step(gen)
            if on_iteration is not None:
                on_iteration(it)
            # ---- log / eval / checkpoint
            logged = {"match": loss.detach()} if extra is not None else {}
            logged.update(loss_fn.log_values())
            pending.append((it, total.detach(), logged))
            done = it + 1
            if done % cfg.log_every == 0 or done == cfg.iterations:
                bar.set_postfix(loss=f"{flush():.4g}")
            if on_eval is not None and eval_every and done % eval_every == 0 and done != cfg.iterations:
                flush()
                history.append({"iteration": done, **on_eval(done, snapshot(done))})
            if done % cfg.checkpoint_every == 0 or done == cfg.iterations or stop.requested:
                flush()
                elapsed += time.perf_counter() - t0
                t0 = time.perf_counter()
                checkpoint(done)
            if stop.requested:
                where = f"written to {ckpt_path}; rerun with resume=True" if ckpt_path else "not kept (no out_dir)"
                print(f"\nstopped by {stop.requested} after iteration {done}: checkpoint {where}")
                raise KeyboardInterrupt
    flush()
    elapsed += time.perf_counter() - t0
    result = snapshot(cfg.iterations)
    if on_eval is not None:
        history.append({"iteration": cfg.iterations, **on_eval(cfg.iterations, result)})
        result.meta["history"] = history
    return result
