r"""GeoDM (Li et al., arXiv 2512.08317): distribution matching in a product of E, H and S spaces.

The paper's code and equations are not public; this is our design (SPEC, GeoDM). Features are cut into slices
``dims`` (default equal, remainder first: 2048 = 683 + 683 + 682), one per letter of ``factors`` (a non-empty subset
of ``"EHS"``): **E** DM's squared mean distance, **H** HDD's geodesic Lorentz-centroid distance (:func:`geometry.lift`,
learnable :math:`k_H`), **S** the geodesic distance of renormalised means on the sphere of radius :math:`\sqrt{k_S}`
(learnable; :mod:`hdd_lib.sphere`). The loss of class :math:`c` is

.. math::
    \ell_c = \lambda\Big(\sum_f w_f\,\frac{D_f(c)}{s_f} + \lambda_{OT}\, S_\varepsilon\big(C_c\big)
             + \lambda_{reg}\, R_c\Big), \qquad C_c[i, j] = \sum_f w_f\,\frac{d_f(x_{c,i}, y_{c,j})^2}{s^{OT}_f},
    \qquad k_f = k_{\min} + (k_{\max} - k_{\min})\,\sigma(\theta_f), \quad w = \operatorname{softmax}(\text{logits})

(``learn="fixed"``: ``weights`` as given, zeros allowed; ``"joint"``/``"adversarial"``: the loop descends/ascends
:meth:`GeoDMLoss.learned_parameters`). ``normalize``: the first call records each factor's detached mean discrepancy
:math:`s_f` and pairwise squared distance :math:`s^{OT}_f` (buffers ``scales``/``ot_scales``, values above
:data:`MIN_SCALE`). OT: POT log-domain Sinkhorn per class, uniform marginals, ``epsilon`` relative to the mean cross
cost, ``debias`` the Sinkhorn divergence (:mod:`hdd_lib.losses.ot`); costs from matmuls. The regulariser (a penalty:
nonzero at real == syn; norms floored at :data:`MIN_REG_NORM`) is

.. math::
    R_c = \frac{1}{|\{H,S\}|}\sum_{f \in \{H,S\}} \frac12\Big(\operatorname{mean}_i \log^2\frac{|x^f_{c,i}|}{\sqrt{k_f}}
          + \operatorname{mean}_j \log^2\frac{|y^f_{c,j}|}{\sqrt{k_f}}\Big).

Math after slicing runs in ``dtype`` (float64 advised with OT). One fixed factor, ``normalize=False``, ``lam=1``, no
OT/regulariser: E equals ``get_loss("dm")``, H ``get_loss("hdd", k=k_H, lam=1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from .. import geometry, sphere
from ..config import Count, NonNegative, Positive, Settings
from .base import LOSSES, MatchingLoss, check_features
from .ot import sinkhorn_divergence

__all__ = ["FACTORS", "MIN_SCALE", "MIN_REG_NORM", "GeoDMConfig", "GeoDMLoss", "split_dims"]

#: The factor letters: Euclidean, hyperbolic (Lorentz), spherical.
FACTORS = "EHS"
_CURVED = "HS"

#: Normalisation scales are recorded only above this value (a factor at 0 is not divided by ~0).
MIN_SCALE = 1e-12
#: Floor of the slice norms inside the regulariser's logarithm.
MIN_REG_NORM = 1e-12

#: What :meth:`GeoDMLoss.embed` returns: the factor points and the raw slices, keyed by factor letter.
Embedded = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]


def split_dims(d: int, n: int) -> tuple[int, ...]:
    """Equal split of ``d`` features among ``n`` factors, the remainder going to the first ones."""
    q, r = divmod(d, n)
    return tuple(q + (i < r) for i in range(n))


@dataclass(frozen=True)
class GeoDMConfig(Settings):
    """Settings of :class:`GeoDMLoss` (module docstring): ``k_H``, ``k_S`` strictly inside ``(k_min, k_max)``;
    ``weights`` probabilities per factor; ``lambda_ot``, ``lambda_reg`` 0 switch a term off."""

    factors: str = "EHS"
    dims: tuple[Count, ...] | None = None
    weights: tuple[NonNegative, ...] | None = None
    k_H: Positive = 1.0
    k_S: Positive = 1.0
    k_min: Positive = 0.1
    k_max: Positive = 10.0
    learn: Literal["joint", "adversarial", "fixed"] = "joint"
    normalize: bool = True
    lam: NonNegative = 1.0
    lambda_ot: NonNegative = 1.0
    epsilon: Positive = 0.05
    debias: bool = True
    ot_max_iter: Count = 100
    ot_tol: Positive = 1e-6
    lambda_reg: NonNegative = 0.0
    how: geometry.Mapping = "expmap0"
    clamp: Positive | None = geometry.EXP_MAX_RADIUS
    dtype: Literal["float64", "float32"] = "float64"

    def check(self) -> None:
        f, n, w = self.factors, len(self.factors), self.weights
        if not (f and set(f) <= set(FACTORS) and len(set(f)) == n):
            raise ValueError(f"factors must be a non-empty string of distinct letters from 'EHS', got factors={f!r}")
        if self.dims is not None and len(self.dims) != n:
            raise ValueError(f"dims must be {n} positive integers (one per factor of {f!r}), got dims={self.dims!r}")
        if not self.k_min < self.k_max:
            raise ValueError(f"k_min must be < k_max, got k_min={self.k_min!r}, k_max={self.k_max!r}")
        for name in ("k_H", "k_S"):
            if not self.k_min < getattr(self, name) < self.k_max:
                raise ValueError(f"{name} must lie strictly inside (k_min, k_max) = ({self.k_min}, {self.k_max}), "
                                 f"got {name}={getattr(self, name)!r}")
        if w is not None and (len(w) != n or (self.learn != "fixed" and min(w) <= 0)):
            rule = ">= 0" if self.learn == "fixed" else '> 0 (exact zeros need learn="fixed")'
            raise ValueError(f"weights must be {n} finite numbers {rule}, one per factor of {f!r}, got weights={w!r}")
        if w is not None and abs(sum(w) - 1.0) > 1e-6:
            raise ValueError(f"weights must sum to 1, got weights={w!r} (sum {sum(w)})")

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    def split(self, d: int) -> tuple[int, ...]:
        """Slice sizes for feature size ``d``; ``ValueError`` if ``dims`` do not sum to it."""
        if self.dims is None:
            dims = split_dims(d, len(self.factors))
            if min(dims) == 0:
                raise ValueError(f"feature size D={d} is too small for the factors {self.factors!r}")
            return dims
        if sum(self.dims) != d:
            raise ValueError(f"dims must sum to the feature size D={d}, got dims={self.dims} (sum {sum(self.dims)})")
        return self.dims


@LOSSES.register("geodm", label="GeoDM")
class GeoDMLoss(MatchingLoss):
    """GeoDM loss; ``per_class`` returns the product-space discrepancy of each class, shape ``[C]``. Built from a
    :class:`GeoDMConfig`, keyword settings, or both (keywords override). Holds float64 ``theta`` (curvature logits),
    ``weight_logits [F]``, and buffers ``fixed_weights``, ``scales``, ``ot_scales``."""

    Settings = GeoDMConfig

    def __init__(self, config: GeoDMConfig | None = None, /, **settings) -> None:
        super().__init__(config, **settings)
        self.config = config = self.settings
        f64, n = torch.float64, len(config.factors)
        probs = torch.tensor(config.weights if config.weights is not None else [1.0 / n] * n, dtype=f64)
        span = config.k_max - config.k_min
        unit = {f: (getattr(config, f"k_{f}") - config.k_min) / span for f in config.factors if f in _CURVED}
        self.theta = nn.ParameterDict({f: nn.Parameter(torch.logit(torch.tensor(u, dtype=f64)))
                                       for f, u in unit.items()})
        self.weight_logits = nn.Parameter(torch.log(probs.clamp_min(torch.finfo(f64).tiny)))
        self.register_buffer("fixed_weights", probs)
        self.register_buffer("scales", torch.zeros(n, dtype=f64))
        self.register_buffer("ot_scales", torch.zeros(n, dtype=f64))
        self.requires_grad_(config.learn != "fixed")
        self._last: dict[str, torch.Tensor] = {}

    @property
    def factors(self) -> str:
        return self.config.factors

    def curvature(self, factor: str) -> torch.Tensor:
        r"""Curvature :math:`k_f = k_{\min} + (k_{\max} - k_{\min})\,\sigma(\theta_f)`, a 0-d tensor."""
        if factor not in self.theta:
            raise ValueError(f"factor must be a curved factor of {self.factors!r}, got factor={factor!r}")
        c = self.config
        return c.k_min + (c.k_max - c.k_min) * torch.sigmoid(self.theta[factor])

    def weights(self) -> torch.Tensor:
        """Factor weights ``[F]`` (order of ``factors``): softmax of the logits, or the fixed values."""
        if self.config.learn == "fixed":
            return self.fixed_weights
        return torch.softmax(self.weight_logits, dim=0)

    @property
    def ascent(self) -> bool:
        """Adversarial geometry: the loop ascends the loss in the curvatures and weights."""
        return self.config.learn == "adversarial"

    def learned_parameters(self) -> list[nn.Parameter]:
        """The curvature and weight logits, optimised by the loop (none with ``learn="fixed"``)."""
        return [p for p in self.geometry_parameters() if p.requires_grad]

    def geometry_parameters(self) -> list[nn.Parameter]:
        """The curvature logits and weight logits, for the loop's separate optimiser."""
        return [*self.theta.values(), self.weight_logits]

    def reset_scales(self) -> None:
        """Forget the normalisation scales; the next call records new ones."""
        self.scales.zero_()
        self.ot_scales.zero_()

    def embed(self, feat: torch.Tensor) -> Embedded:
        """Slice ``[C, N, D]`` features per factor: (points ``{f: [C, N, d_f]}`` (H: ``d_H + 1``), raw slices)."""
        c = self.config
        feat = feat.to(c.torch_dtype)
        parts = torch.split(feat, list(c.split(feat.shape[-1])), dim=-1)
        maps = {"E": lambda x: x, "S": lambda x: sphere.project(x, k=self.curvature("S"), dtype=None),
                "H": lambda x: geometry.lift(x, k=self.curvature("H"), how=c.how, clamp=c.clamp, dtype=None)}
        return {f: maps[f](x) for f, x in zip(c.factors, parts)}, dict(zip(c.factors, parts))

    def discrepancies(self, real: dict[str, torch.Tensor], syn: dict[str, torch.Tensor]) -> torch.Tensor:
        """Raw centroid discrepancy per factor and class, ``[F, C]``, from :meth:`embed` points."""
        def one(f: str) -> torch.Tensor:
            if f == "E":
                return (real[f].mean(dim=1) - syn[f].mean(dim=1)).pow(2).sum(dim=-1)  # DM
            k, space = self.curvature(f), geometry if f == "H" else sphere
            return space.dist(space.centroid(real[f], k=k), space.centroid(syn[f], k=k), k=k)
        return torch.stack([one(f) for f in self.factors])

    def sq_distances(self, x: Embedded, y: Embedded) -> torch.Tensor:
        r"""Pairwise squared distances per factor ``[F, C, N, M]`` by matmuls; S uses :math:`d_S^2 = k_S\, d_{S,1}^2`
        on the raw slices' unit directions, so no gradient in :math:`k_S` flows back through the matmul."""
        (xp, xr), (yp, yr) = x, y
        out = []
        for f in self.factors:
            if f == "E":
                a, b = xp[f], yp[f]
                sq = a.pow(2).sum(-1, keepdim=True) + b.pow(2).sum(-1).unsqueeze(-2)
                out.append((sq - 2.0 * a @ b.transpose(-1, -2)).clamp_min(0.0))
            elif f == "H":
                out.append(geometry.pairwise_dist(xp[f], yp[f], k=self.curvature("H")).pow(2))
            else:
                u, v = (sphere.project(r[f], k=1.0, dtype=None) for r in (xr, yr))
                out.append(self.curvature("S") * sphere.pairwise_dist(u, v, k=1.0).pow(2))
        return torch.stack(out)

    def regulariser(self, real: dict[str, torch.Tensor], syn: dict[str, torch.Tensor]) -> torch.Tensor:
        """Curvature regulariser per class ``[C]`` from the raw slices (0 without curved factors)."""
        terms = []
        for f in self.factors:
            if f not in _CURVED:
                continue
            log_r = 0.5 * torch.log(self.curvature(f))
            norms = [torch.linalg.vector_norm(x[f], dim=-1).clamp_min(MIN_REG_NORM) for x in (real, syn)]
            sq = [(torch.log(r) - log_r).pow(2).mean(-1) for r in norms]
            terms.append(0.5 * (sq[0] + sq[1]))
        if not terms:
            return real[self.factors[0]].new_zeros(real[self.factors[0]].shape[0])
        return torch.stack(terms).mean(0)

    def _record(self, name: str, values: torch.Tensor) -> torch.Tensor:
        """Scales ``[F]`` from buffer ``name``; an unset (0) entry records ``values`` > ``MIN_SCALE``, else reads 1."""
        buf = getattr(self, name)
        v = values.detach().to(buf.dtype)
        buf.copy_(torch.where((buf == 0) & (v > MIN_SCALE), v, buf))
        return torch.where(buf > 0, buf, torch.ones_like(buf)).to(values.dtype)

    def transport(self, x: Embedded, y: Embedded, w: torch.Tensor) -> torch.Tensor:
        """OT term per class ``[C]`` between :meth:`embed` outputs under the normalised cost weighted by ``w [F]``."""
        c = self.config
        sq_xy = self.sq_distances(x, y)  # [F, C, N, M]
        one = torch.ones_like(w)
        ot_scales = self._record("ot_scales", sq_xy.mean(dim=(1, 2, 3))) if c.normalize else one
        coef = (w / ot_scales).view(-1, 1, 1, 1)
        cost_xy = (coef * sq_xy).sum(0)
        self_costs = (None, None)
        if c.debias:
            # the real-real cost depends on the geometry parameters only: no graph when they are frozen
            needs_graph = x[1][self.factors[0]].requires_grad or bool(self.learned_parameters())
            with torch.set_grad_enabled(torch.is_grad_enabled() and needs_graph):
                cost_xx = (coef * self.sq_distances(x, x)).sum(0)
            self_costs = (cost_xx, (coef * self.sq_distances(y, y)).sum(0))
        return sinkhorn_divergence(cost_xy, *self_costs, epsilon=c.epsilon, max_iter=c.ot_max_iter, tol=c.ot_tol)

    def per_class(self, real: torch.Tensor, syn: torch.Tensor) -> torch.Tensor:
        check_features(real, syn)
        c = self.config
        x_emb, y_emb = self.embed(real), self.embed(syn)
        (x, x_raw), (y, y_raw) = x_emb, y_emb
        w = self.weights().to(c.torch_dtype)
        disc = self.discrepancies(x, y)  # [F, C]
        one = torch.ones_like(self.scales, dtype=c.torch_dtype)
        scales = self._record("scales", disc.mean(dim=1)) if c.normalize else one
        loss = (w.unsqueeze(1) * disc / scales.unsqueeze(1)).sum(0)
        last = {f"d_{f}": disc[i].detach().mean() for i, f in enumerate(self.factors)}
        if c.lambda_ot > 0:
            ot_value = self.transport(x_emb, y_emb, w)
            loss = loss + c.lambda_ot * ot_value
            last["ot"] = ot_value.detach().mean()
        if c.lambda_reg > 0:
            reg = self.regulariser(x_raw, y_raw).to(loss)
            loss = loss + c.lambda_reg * reg
            last["reg"] = reg.detach().mean()
        self._last = last
        return c.lam * loss

    @torch.no_grad()
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Curvatures ``k_*``, weights ``w_*`` and the last call's class-mean ``d_*``, ``ot``, ``reg``, as detached
        0-d tensors (logging them costs no host synchronisation)."""
        out = {f"k_{f}": self.curvature(f).detach() for f in self.theta}
        out.update({f"w_{f}": w.detach() for f, w in zip(self.factors, self.weights())})
        out.update({name: v.detach() for name, v in self._last.items()})
        return out

    def state(self) -> dict[str, float]:
        """:meth:`state_tensors` as Python floats."""
        return {name: float(v) for name, v in self.state_tensors().items()}

    log_values = state_tensors
