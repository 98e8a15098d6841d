"""Unconditional diffusion UNet (the papers' Guided-Diffusion case, for data without label maps).

The network predicts ``eps_theta(x_t, t)`` (and, with learned variance, the interpolation ``v``
of improved DDPM, so ``out_channels = 2C``). Built from MONAI's
:class:`~monai.networks.nets.DiffusionModelUNet`. It offers the same condition methods as
:class:`~sonodiff.models.semantic.SemanticUNet` (all returning ``None``), so training and
sampling never branch on the kind of model.
"""

from __future__ import annotations

from typing import Sequence

import torch
from monai.networks.nets import DiffusionModelUNet
from torch import nn


class UnconditionalUNet(nn.Module):
    """``eps_theta(x_t, t)``: MONAI diffusion UNet. ``forward(x, t, cond=None)``."""

    conditional = False

    def __init__(self, *, in_channels: int, out_channels: int, channels: Sequence[int],
                 attention_levels: Sequence[bool], num_res_blocks: int, num_head_channels: int,
                 norm_num_groups: int, **_unused):
        super().__init__()
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=in_channels,
            out_channels=out_channels,
            num_res_blocks=num_res_blocks,
            channels=tuple(channels),
            attention_levels=tuple(attention_levels),
            norm_num_groups=norm_num_groups,
            num_head_channels=num_head_channels,
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            raise ValueError("the unconditional model takes no condition")
        return self.unet(x, t)

    def condition(self, labels: torch.Tensor | None, classes: torch.Tensor | None = None) -> None:
        """No condition: label maps, if any, are ignored."""
        return None

    @staticmethod
    def null(cond: None) -> None:
        return None

    @staticmethod
    def drop(cond: None, drop: torch.Tensor) -> None:
        return None
