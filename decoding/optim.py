"""AdamW with an optional *tensor-wise* second moment for the weights that read the neurons.

Per-element Adam gives every neuron's input weight the same step size whatever the size of its
gradient: a neuron whose gradient is only noise (a neuron unrelated to the tail, fitted to the
training frames' noise) moves as fast as a driver whose gradient is consistent and large. With
thousands of neurons and few training frames the input weights then spread over every neuron, and
a salience map of the decoder points at noise. A group with ``scalar_moment=True`` keeps Adam's
first moment and bias correction but normalises by one second moment per tensor (the mean of the
squared gradient), so the update keeps the gradient's direction across neurons: weights grow in
proportion to how much each neuron explains the residual, as in plain (momentum) gradient descent,
at Adam's overall step size.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["MixedAdamW"]


class MixedAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay); groups with ``scalar_moment=True`` use one second moment
    per tensor instead of one per element.

    Parameters
    ----------
    params
        Parameters or parameter groups (dicts); a group may set ``scalar_moment``.
    lr, betas, eps, weight_decay
        As :class:`torch.optim.AdamW`.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "scalar_moment": False,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch's signature
        loss = None if closure is None else closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(group, params)
        return loss

    def _update(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        """One AdamW step for ``params`` of ``group`` with ``torch._foreach_*`` kernels (a few
        launches per group instead of several per tensor)."""
        beta1, beta2 = group["betas"]
        lr, wd, scalar = group["lr"], group["weight_decay"], group["scalar_moment"]
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["m"] = torch.zeros_like(p)
                shape = () if scalar else p.shape
                state["v"] = torch.zeros(shape, dtype=p.dtype, device=p.device)
            state["step"] += 1
        grads = [p.grad for p in params]
        ms = [self.state[p]["m"] for p in params]
        vs = [self.state[p]["v"] for p in params]
        torch._foreach_lerp_(ms, grads, 1 - beta1)
        g2 = [g.square().mean() for g in grads] if scalar else torch._foreach_mul(grads, grads)
        torch._foreach_mul_(vs, beta2)
        torch._foreach_add_(vs, g2, alpha=1 - beta2)
        if wd:
            torch._foreach_mul_(params, 1 - lr * wd)
        for t in sorted({self.state[p]["step"] for p in params}):  # one value in practice
            idx = [i for i, p in enumerate(params) if self.state[p]["step"] == t]
            denom = torch._foreach_div([vs[i] for i in idx], 1 - beta2**t)
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_addcdiv_(
                [params[i] for i in idx], [ms[i] for i in idx], denom, value=-lr / (1 - beta1**t)
            )
