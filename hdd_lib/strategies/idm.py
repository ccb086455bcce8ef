r"""IDM (Zhao et al., "Improved Distribution Matching", CVPR 2023), batched over classes.

Stored images are ``factor x factor`` mosaics (:func:`hdd_lib.synset.decode`); a FIFO queue of networks trained a
little on real data (:class:`ModelQueue`) gives the matching net and the class-aware CE regulariser
:math:`w_{ce} \cdot acc_{net}(\%) \cdot \sum_c CE(net(syn_c), c)`. The reference steps SGD (momentum :math:`\mu`)
once per class, in order, on that class's loss alone; :class:`ClassSequentialSGD` applies the closed form after one
batched backward pass, for class :math:`j` with buffer :math:`b` and :math:`S_n = \sum_{t=1}^{n} \mu^t`,

  .. math::
      p \leftarrow p - \eta S_j b;\quad g = \nabla \ell_j(p);\quad
      b \leftarrow \mu^{j+1} b + g;\quad p \leftarrow p - \eta (1 + S_{C-1-j})\, b;\quad
      b \leftarrow \mu^{C-1-j} b.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Count, Fraction, NonNegative, Positive, Settings
from ..synset import decode
from .base import STRATEGIES, Strategy

__all__ = ["IDMConfig", "IDM", "ClassSequentialSGD", "QueueMember", "ModelQueue"]


@dataclass(frozen=True)
class IDMConfig(Settings):
    """IDM's settings; defaults are the paper's (SPEC)."""

    net_begin: Count = 3  # random nets in the queue at the start
    net_num: Count = 100  # queue capacity (FIFO)
    net_generate_interval: Count = 30  # push a new random net every this many iterations
    fetch_net_num: int = 2  # queue nets trained per iteration
    model_train_steps: int = 10  # SGD steps per trained net per iteration
    train_batch: Count = 256  # real images per training step
    lr_net: Positive = 0.01
    momentum_net: Fraction = 0.9
    weight_decay_net: NonNegative = 5e-4
    ce_weight: NonNegative = 0.5  # class-aware regulariser: ce_weight * acc_net(%) * CE(net(syn), y)
    acc_reset_interval: Count = 100  # running-accuracy window: the official code resets it at each evaluation
    factor: Count = 2  # partition: each stored image is a factor x factor mosaic
    init: Literal["mosaic", "whole"] = "mosaic"  # start from mosaics of real images, or whole ones (IDM_tiny.py)


@STRATEGIES.register("idm", label="IDM")
class IDM(Strategy):
    """IDM: a queue of partially trained nets; the matching net adds the class-aware CE term."""

    Settings = IDMConfig

    @property
    def factor(self) -> int:
        return self.settings.factor

    def initial_images(self, generator: torch.Generator) -> torch.Tensor:
        if self.settings.init == "whole" and self.cfg.init == "real":
            return self.train.sample(self.cfg.ipc, generator=generator).detach().clone()
        return super().initial_images(generator)

    def optimizer(self, syn: torch.Tensor) -> "ClassSequentialSGD":
        self.opt = ClassSequentialSGD(syn, lr=self.cfg.lr_img, momentum=0.5)
        return self.opt

    def start(self, generator: torch.Generator) -> None:
        self.queue = ModelQueue(self.make_model, self.settings, self.device)
        for _ in range(self.settings.net_begin):
            self.queue.push(generator)
        self.member: QueueMember | None = None

    def images(self, syn: torch.Tensor) -> torch.Tensor:
        self.opt.prepare()
        return decode(syn, self.factor).flatten(1, 2) if self.factor > 1 else syn

    def network(self, iteration: int, generator: torch.Generator) -> nn.Module:
        s = self.settings
        if iteration > 0 and iteration % s.acc_reset_interval == 0:
            self.queue.reset_accuracy()
        if iteration % s.net_generate_interval == 0:
            self.queue.push(generator)
        self.member = self.queue.pick(generator)
        return self.member.model.eval()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The matching network's features (queue nets change every iteration: never compiled)."""
        return self.member.model.embed(x)

    def regulariser(self, net: nn.Module, f_syn: torch.Tensor) -> torch.Tensor:
        c, m = f_syn.shape[:2]
        logits = net.classifier(f_syn.flatten(0, 1)).float()
        labels = torch.arange(c, device=logits.device).repeat_interleave(m)
        ce = F.cross_entropy(logits, labels, reduction="none").view(c, m).mean(1).sum()
        return self.settings.ce_weight * self.member.accuracy() * ce

    def after_step(self, generator: torch.Generator) -> None:
        images, labels = self.train.images, self.train.labels
        n = images.shape[0]
        perm, cursor = torch.randperm(n, generator=generator), 0

        def sample_batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
            nonlocal perm, cursor
            if cursor + size > n:
                perm, cursor = torch.randperm(n, generator=generator), 0
            idx = perm[cursor: cursor + size].to(images.device, non_blocking=True)
            cursor += size
            return images[idx], labels[idx]
        self.queue.train(sample_batch, generator)

    def state_dict(self) -> dict:
        return {"queue": self.queue.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.queue.load_state_dict(state["queue"])


class ClassSequentialSGD:
    r"""SGD with momentum (no dampening) stepping once per class, in order (see the module docstring): :meth:`prepare`
    moves each class to where its gradient would be evaluated; :meth:`step` applies the rest."""

    def __init__(self, param: torch.Tensor, *, lr: float, momentum: float = 0.5) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got lr={lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got momentum={momentum}")
        self.param, self.lr, self.momentum = param, float(lr), float(momentum)
        self.buf = torch.zeros_like(param)
        c, mu = param.shape[0], self.momentum
        partial = [sum(mu**t for t in range(1, n + 1)) for n in range(c)]  # S_n, n = 0..C-1
        self._pre, self._mu_in, self._post, self._mu_out = (  # S_j, mu^(j+1), 1 + S_(C-1-j), mu^(C-1-j)
            torch.tensor(v, dtype=param.dtype, device=param.device).view((c,) + (1,) * (param.dim() - 1))
            for v in (partial, [mu ** (j + 1) for j in range(c)], [1 + partial[c - 1 - j] for j in range(c)],
                      [mu ** (c - 1 - j) for j in range(c)]))

    @torch.no_grad()
    def prepare(self) -> None:
        """Move class ``j`` by the momentum of the ``j`` steps taken before its own."""
        self.param.sub_(self.lr * self._pre * self.buf)

    @torch.no_grad()
    def step(self) -> None:
        """Apply the classes' own steps and the momentum of the steps after them."""
        grad = self.param.grad if self.param.grad is not None else torch.zeros_like(self.param)
        self.buf.mul_(self._mu_in).add_(grad)
        self.param.sub_(self.lr * self._post * self.buf)
        self.buf.mul_(self._mu_out)

    def zero_grad(self) -> None:
        self.param.grad = None

    def state_dict(self) -> dict:
        return {"buf": self.buf.clone(), "lr": self.lr, "momentum": self.momentum}

    def load_state_dict(self, state: dict) -> None:
        self.buf.copy_(state["buf"])


@dataclass
class QueueMember:
    """A queue network, its optimiser and its running training accuracy."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    correct: torch.Tensor  # on-device counters: no host sync per step
    seen: torch.Tensor

    def accuracy(self) -> torch.Tensor:
        """Running training accuracy in percent (0 before any step), as a 0-d tensor."""
        return 100.0 * self.correct / self.seen.clamp_min(1)


class ModelQueue:
    """IDM's FIFO queue of partially trained networks; ``make_model(generator)`` builds a fresh one."""

    def __init__(self, make_model: Callable[[torch.Generator], nn.Module], cfg: IDMConfig, device) -> None:
        self.make_model, self.cfg, self.device = make_model, cfg, torch.device(device)
        self.members: list[QueueMember] = []

    def __len__(self) -> int:
        return len(self.members)

    def _member(self, model: nn.Module) -> QueueMember:
        model = model.to(self.device)
        model.requires_grad_(False)
        opt = torch.optim.SGD(model.parameters(), lr=self.cfg.lr_net, momentum=self.cfg.momentum_net,
                              weight_decay=self.cfg.weight_decay_net)
        zero = torch.zeros((), dtype=torch.long, device=self.device)
        return QueueMember(model, opt, zero.clone(), zero.clone())

    def push(self, generator: torch.Generator) -> None:
        """Add a freshly initialised network; drop the oldest beyond ``net_num``."""
        self.members.append(self._member(self.make_model(generator)))
        while len(self.members) > self.cfg.net_num:
            self.members.pop(0)

    def pick(self, generator: torch.Generator) -> QueueMember:
        """A uniformly random member (the matching network of this iteration)."""
        return self.members[int(torch.randint(len(self.members), (1,), generator=generator))]

    def train(self, sample_batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
              generator: torch.Generator) -> None:
        """``fetch_net_num`` random members take ``model_train_steps`` SGD steps on real batches."""
        order = torch.randperm(len(self.members), generator=generator).tolist()
        for index in order[: self.cfg.fetch_net_num]:
            m = self.members[index]
            m.model.train()
            m.model.requires_grad_(True)
            for _ in range(self.cfg.model_train_steps):
                x, y = sample_batch(self.cfg.train_batch)
                logits = m.model(x)
                loss = F.cross_entropy(logits, y)
                m.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                m.optimizer.step()
                m.correct += (logits.detach().argmax(1) == y).sum()
                m.seen += y.numel()
            m.model.requires_grad_(False)

    def reset_accuracy(self) -> None:
        for m in self.members:
            m.correct.zero_()
            m.seen.zero_()

    def state_dict(self) -> dict:
        return {"members": [{"model": m.model.state_dict(), "optimizer": m.optimizer.state_dict(),
                             "correct": m.correct.clone(), "seen": m.seen.clone()} for m in self.members]}

    def load_state_dict(self, state: dict) -> None:
        self.members = []
        for s in state["members"]:
            m = self._member(self.make_model(torch.Generator().manual_seed(0)))  # weights overwritten below
            m.model.load_state_dict(s["model"])
            m.optimizer.load_state_dict(s["optimizer"])
            m.correct.copy_(s["correct"])
            m.seen.copy_(s["seen"])
            self.members.append(m)
