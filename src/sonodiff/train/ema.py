"""Exponential moving average of the weights (improved DDPM, ``update_ema``).

After every optimiser step: ``theta_ema <- r * theta_ema + (1 - r) * theta`` with r the fixed
``rate`` or the decay of that step (:meth:`sonodiff.train.schedule.TrainSchedule.ema_decay`). Buffers
(none in the UNets here, but GroupNorm-free variants may have some) are copied. The EMA weights
are what ``model.pt`` stores and what sampling uses.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """EMA copy of a module's parameters. ``update(model)`` after each step; ``module`` holds them."""

    def __init__(self, model: nn.Module, rate: float):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"EMA rate must be in [0, 1], got {rate}")
        self.rate = float(rate)
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, rate: float | None = None) -> None:
        """``theta_ema <- r * theta_ema + (1 - r) * theta`` for every parameter (r = ``rate`` or ``self.rate``)."""
        r = self.rate if rate is None else float(rate)
        if not 0.0 <= r <= 1.0:
            raise ValueError(f"EMA rate must be in [0, 1], got {r}")
        ema_params = list(self.module.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - r)
        for ema_buf, buf in zip(self.module.buffers(), model.buffers()):
            ema_buf.copy_(buf)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
