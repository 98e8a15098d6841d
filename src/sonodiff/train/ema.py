"""Exponential moving average of the weights (improved DDPM, ``update_ema``).

After every optimiser step: ``theta_ema <- rate * theta_ema + (1 - rate) * theta``. Buffers
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
    def update(self, model: nn.Module) -> None:
        """``theta_ema <- rate * theta_ema + (1 - rate) * theta`` for every parameter."""
        ema_params = list(self.module.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - self.rate)
        for ema_buf, buf in zip(self.module.buffers(), model.buffers()):
            ema_buf.copy_(buf)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
