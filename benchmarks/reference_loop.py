r"""The reference DM / DM+HDD iteration, re-implemented as the public code runs it (SPEC), for timing.

This is the baseline that ``bench_distill.py`` divides by. It keeps every per-class and
per-iteration cost of the DM family's public scripts, written in our own words on top of
``hdd_lib``'s building blocks (model factory, DSA ops, dataset) so that only the *loop structure*
differs from :func:`hdd_lib.distill.run`:

* every iteration a **new** ConvNet is built with :func:`hdd_lib.models.get_model` and PyTorch's
  default initialisation (global RNG, on the CPU), moved to the device, put in train mode and
  frozen;
* a **Python loop over classes**; for class ``c``: draw its real batch (a permutation of the
  class's positions on the CPU, then an index on the device), take its synthetic images, draw
  **one** DSA parameter set (:func:`hdd_lib.augment.sample` with one group) and apply it to the real
  and to the synthetic images (one DSA call per class), embed both (float32, no autocast, NCHW),
  add the class's loss;
* per-class loss: DM, :math:`\|\bar f^{real}_c - \bar f^{syn}_c\|^2`; HDD, in float64 with geoopt's
  ``Lorentz``: pad :math:`(0, f)`, rescale to radius :math:`\le 10\sqrt{k}`, ``expmap0``, ``projx``,
  closed-form centroid :math:`\sqrt{k}\,\bar z / \sqrt{|\langle \bar z, \bar z\rangle_L|}`, geoopt's
  ``dist``, times :math:`\lambda`;
* one SGD(momentum 0.5) step on all synthetic images, then ``loss.item()`` (the scripts log the
  running loss every iteration, a host sync).

Not a library module: it exists to be timed, and it is checked against :mod:`hdd_lib.losses` by
``tests/test_benchmarks.py`` (the same per-class objective).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from hdd_lib import augment
from hdd_lib.config import DistillConfig, from_dict
from hdd_lib.data import ImageSet
from hdd_lib.losses.hdd import HDDSettings
from hdd_lib.models import get_model
from hdd_lib.runtime import resolve_device

with warnings.catch_warnings():  # geoopt scripts its kernels with the deprecated torch.jit
    warnings.simplefilter("ignore", FutureWarning)
    import geoopt
    from geoopt.manifolds.lorentz import math as lmath

__all__ = ["ReferenceLoop", "dm_class_loss", "hdd_class_loss"]

#: Smallest feature norm used as a divisor in the radius rescale, and floor of the centroid's
#: Minkowski norm (the reference code's guards).
_MIN_NORM = 1e-15


def dm_class_loss(f_real: torch.Tensor, f_syn: torch.Tensor) -> torch.Tensor:
    r"""One class's DM loss :math:`\|\operatorname{mean}(f^{real}) - \operatorname{mean}(f^{syn})\|^2`.

    Shapes: ``[B, D], [M, D] -> []``.
    """
    return torch.sum((f_real.mean(dim=0) - f_syn.mean(dim=0)) ** 2)


def hdd_class_loss(
    manifold: geoopt.Lorentz,
    f_real: torch.Tensor,
    f_syn: torch.Tensor,
    *,
    lam: float,
    how: str = "expmap0",
    clamp: float | None = 10.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""One class's HDD loss :math:`\lambda\, d_L(c^{real}, c^{syn})` with geoopt, in ``dtype``.

    Shapes: ``[B, D], [M, D] -> []``. ``manifold`` is a ``geoopt.Lorentz(k)`` whose ``k`` already has
    ``dtype`` and the features' device.
    """
    k = manifold.k
    sqrt_k = torch.sqrt(k)

    def to_hyperboloid(f: torch.Tensor) -> torch.Tensor:
        f = f.to(dtype)
        u = F.pad(f, (1, 0))  # the tangent vector (0, f) at the origin
        if how == "lift":
            return manifold.projx(u)
        if clamp is not None:
            norm = f.norm(dim=-1, keepdim=True).clamp_min(_MIN_NORM)
            u = u * torch.clamp(clamp * sqrt_k / norm, max=1.0)
        return manifold.projx(manifold.expmap0(u))

    def centroid(x: torch.Tensor) -> torch.Tensor:
        z = x.mean(dim=0)
        denom = torch.sqrt(torch.abs(lmath.inner(z, z, keepdim=True)).clamp_min(_MIN_NORM))
        return sqrt_k * z / denom

    return lam * manifold.dist(centroid(to_hyperboloid(f_real)), centroid(to_hyperboloid(f_syn)))


class ReferenceLoop:
    """The reference DM / DM+HDD loop on ``train``: call :meth:`step` once per iteration.

    Parameters
    ----------
    cfg : the run's settings; ``cfg.strategy`` must be ``"dm"`` and ``cfg.loss`` ``"dm"`` or ``"hdd"``.
        Used: ipc, lr_img, batch_real, seed (DSA, batches, initial images), model, dsa, hdd, device.
    train : the real training set (moved to the device).

    The network's initialisation draws from PyTorch's **global** RNG, as the public scripts do; seed
    it once (``torch.manual_seed``) before constructing the loop if you need repeatable weights.
    """

    def __init__(self, cfg: DistillConfig, train: ImageSet) -> None:
        strategy = cfg.strategy.get("name") if isinstance(cfg.strategy, dict) else cfg.strategy
        loss = cfg.loss if isinstance(cfg.loss, dict) else {"name": cfg.loss}
        if strategy != "dm" or loss.get("name") not in ("dm", "hdd"):
            raise ValueError(f"the reference loop covers DM and DM+HDD only, got method={cfg.method!r}")
        self.cfg, self.device = cfg, resolve_device(cfg.device)
        self.train = train.to(self.device)
        spec = self.train.spec
        self.num_classes, self.channels, self.image_size = spec.num_classes, spec.channels, spec.image_size
        self.batch_real = min(cfg.batch_real, int(self.train.counts.min()))
        self.generator = torch.Generator().manual_seed(cfg.seed)
        init = self.train.sample(cfg.ipc, generator=self.generator)  # [C, ipc, ch, H, W]
        self.syn = init.detach().to(self.device, torch.float32).clone().requires_grad_(True)
        self.optimizer = torch.optim.SGD([self.syn], lr=cfg.lr_img, momentum=0.5)
        self.manifold = self.hdd = None
        if loss["name"] == "hdd":
            self.hdd = from_dict(HDDSettings, {k: v for k, v in loss.items() if k != "name"})
            dtype = getattr(torch, self.hdd.dtype)
            self.manifold = geoopt.Lorentz(k=torch.tensor(self.hdd.k, dtype=dtype)).to(self.device)
        self.loss_avg = 0.0

    def _new_network(self) -> torch.nn.Module:
        """A new ConvNet with PyTorch's default initialisation (global RNG), train mode, frozen."""
        size = self.image_size[0]
        net = get_model(self.cfg.model.name, self.channels, self.num_classes, size, **self.cfg.model.kwargs(size, self.channels))
        net = net.to(self.device).train()
        for p in net.parameters():
            p.requires_grad = False
        return net

    def _real_batch(self, c: int) -> torch.Tensor:
        """``batch_real`` distinct random images of class ``c`` (a CPU permutation, indexed on the device)."""
        positions = self.train.index.of_class(c)
        pick = positions[torch.randperm(positions.numel(), generator=self.generator)[: self.batch_real]]
        return self.train.images[pick.to(self.device)]

    def class_loss(self, f_real: torch.Tensor, f_syn: torch.Tensor) -> torch.Tensor:
        """The per-class loss of ``cfg.loss`` on features ``[B, D]`` and ``[M, D]``."""
        if self.manifold is None:
            return dm_class_loss(f_real, f_syn)
        h = self.hdd
        return hdd_class_loss(self.manifold, f_real, f_syn, lam=h.lam, how=h.how, clamp=h.clamp,
                              dtype=getattr(torch, h.dtype))

    def step(self) -> float:
        """One iteration: a new network, the loop over classes, one SGD step; returns the loss."""
        net = self._new_network()
        loss = torch.tensor(0.0, device=self.device)
        for c in range(self.num_classes):
            img_real = self._real_batch(c)
            img_syn = self.syn[c]
            params = augment.sample(self.cfg.dsa, 1, per_group=1, generator=self.generator,
                                    image_size=tuple(img_real.shape[-2:]))
            img_real = augment.apply(img_real.unsqueeze(0), params).squeeze(0)
            img_syn = augment.apply(img_syn.unsqueeze(0), params).squeeze(0)
            f_real = net.embed(img_real).detach()
            f_syn = net.embed(img_syn)
            loss = loss + self.class_loss(f_real, f_syn).to(loss.dtype)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        value = loss.item()
        self.loss_avg += value
        return value
