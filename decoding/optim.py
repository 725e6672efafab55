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
        params: Iterable[Any],
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
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    shape = () if group["scalar_moment"] else p.shape
                    state["v"] = torch.zeros(shape, dtype=p.dtype, device=p.device)
                state["step"] += 1
                g = p.grad
                m, v, t = state["m"], state["v"], state["step"]
                m.lerp_(g, 1 - beta1)
                g2 = g.square().mean() if group["scalar_moment"] else g.square()
                v.mul_(beta2).add_(g2, alpha=1 - beta2)
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                denom = (v / (1 - beta2**t)).sqrt_().add_(group["eps"])
                p.addcdiv_(m, denom, value=-group["lr"] / (1 - beta1**t))
        return loss
