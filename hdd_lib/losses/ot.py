r"""Entropic optimal transport between per-class point clouds (GeoDM's OT term), with POT's solvers.

For costs :math:`C_b \in \mathbb{R}^{N\times M}` and uniform marginals :math:`a, b`, the Sinkhorn divergence
(Feydy et al., AISTATS 2019) removes the entropic bias of
:math:`\mathrm{OT}_\varepsilon(C) = \min_{T \in \Pi(a, b)} \langle T, C\rangle + \varepsilon\mathrm{KL}(T \| a b^\top)`:

.. math::
    S_\varepsilon = \mathrm{OT}_\varepsilon(C^{xy}) - \tfrac12\,\mathrm{OT}_\varepsilon(C^{xx})
        - \tfrac12\,\mathrm{OT}_\varepsilon(C^{yy}) \quad (0 \text{ when the clouds coincide}).

Plans come from POT's log-domain Sinkhorn on detached costs (batched by ``ot.batch.solve_batch``, POT >= 0.9.7);
the value is recomputed from the detached plan, so its gradient is the envelope gradient :math:`T^\star`.
``epsilon`` is relative: class ``b`` uses :math:`\varepsilon\,\max(\bar C^{xy}_b, c_{\min})` in all three problems.
"""

from __future__ import annotations

import inspect
import math

import torch

__all__ = ["MIN_COST_SCALE", "sinkhorn_plans", "entropic_ot", "sinkhorn_divergence"]

#: Floor of the per-class cost scale that makes ``epsilon`` relative (all-zero costs stay finite).
MIN_COST_SCALE = 1e-12


def sinkhorn_plans(cost: torch.Tensor, *, reg: float, max_iter: int = 100, tol: float = 1e-6,
                   batched: bool | None = None) -> torch.Tensor:
    r"""Entropic OT plans (no gradient) for costs ``[B, N, M]`` by POT's log-domain Sinkhorn (batched when POT can,
    ``batched=None``), stopping after ``max_iter`` or at row-marginal error ``tol``:

    .. math:: T_b^\star = \mathop{\arg\min}_{T \in \Pi(\mathbf{1}_N/N,\, \mathbf{1}_M/M)}
              \langle T, C_b\rangle + \mathrm{reg}\sum_{ij} T_{ij}\log T_{ij}
    """
    import ot  # on first use: ``import ot`` takes ~2 s (scipy, scikit-learn)
    cost = cost.detach()
    if batched is None:  # POT >= 0.9.7: solve_batch with a ``method`` argument
        solve = getattr(getattr(ot, "batch", None), "solve_batch", None)
        batched = solve is not None and "method" in inspect.signature(solve).parameters
    if batched:
        return ot.batch.solve_batch(cost, reg=reg, max_iter=max_iter, tol=tol, method="log_sinkhorn",
                                    grad="detach").plan.detach()
    _, n, m = cost.shape
    a, b = cost.new_full((n,), 1.0 / n), cost.new_full((m,), 1.0 / m)
    return torch.stack([ot.sinkhorn(a, b, c, reg, method="sinkhorn_log", numItermax=max_iter, stopThr=tol, warn=False)
                        for c in cost]).detach()


def entropic_ot(cost: torch.Tensor, *, reg: torch.Tensor, max_iter: int = 100, tol: float = 1e-6,
                batched: bool | None = None) -> torch.Tensor:
    r"""Entropic OT values ``[B]`` for costs ``[B, N, M]``, constant ``reg [B]`` (plans of :math:`C_b/\mathrm{reg}_b`):

    .. math:: \mathrm{OT}_{\mathrm{reg}}(C) = \langle T^\star, C\rangle + \mathrm{reg}\mathrm{KL}(T^\star \| a b^\top),
              \qquad \frac{\partial\,\mathrm{OT}}{\partial C} = T^\star
    """
    reg = reg.detach().to(cost.dtype).view(-1, 1, 1)
    plan = sinkhorn_plans(cost / reg, reg=1.0, max_iter=max_iter, tol=tol, batched=batched)
    n, m = cost.shape[-2:]
    kl = torch.special.xlogy(plan, plan * (n * m)).sum(dim=(-2, -1))
    return (plan * cost).sum(dim=(-2, -1)) + reg.view(-1) * kl


def sinkhorn_divergence(cost_xy: torch.Tensor, cost_xx: torch.Tensor | None = None, cost_yy: torch.Tensor | None = None,
                        *, epsilon: float, max_iter: int = 100, tol: float = 1e-6,
                        batched: bool | None = None) -> torch.Tensor:
    r"""Per-batch OT discrepancy with relative regularisation; debiased when both self-costs are given.

    .. math::
        \mathrm{reg}_b = \varepsilon \cdot \max\big(\operatorname{mean}(C^{xy}_b), c_{\min}\big), \qquad
        S_b = \mathrm{OT}(C^{xy}_b) - \tfrac12\mathrm{OT}(C^{xx}_b) - \tfrac12\mathrm{OT}(C^{yy}_b)

    (the first term alone without ``cost_xx [B, N, N]``, ``cost_yy [B, M, M]``); 0 for coinciding clouds, slightly
    negative possible (curved factors' kernels, unconverged Sinkhorn).
    """
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a finite number > 0, got epsilon={epsilon!r}")
    if (cost_xx is None) != (cost_yy is None):
        raise ValueError("cost_xx and cost_yy must be given together (debiased) or both be None")
    reg = epsilon * cost_xy.detach().mean(dim=(-2, -1)).clamp_min(MIN_COST_SCALE)
    kw = dict(reg=reg, max_iter=max_iter, tol=tol, batched=batched)
    value = entropic_ot(cost_xy, **kw)
    if cost_xx is None:
        return value
    return value - 0.5 * (entropic_ot(cost_xx, **kw) + entropic_ot(cost_yy, **kw))
