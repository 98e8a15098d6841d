"""Semantic diffusion UNet (Wang et al. 2022, SDM): the label map modulates the decoder.

The network predicts ``eps_theta(x_t, t | y)`` (and, with learned variance, the interpolation
``v`` of improved DDPM, so ``out_channels = 2C``). The encoder sees only the noisy image; the
decoder's normalisation layers are spatially adaptive (SPADE): ``h <- GN(h) * (1 + gamma(y)) +
beta(y)``, with ``gamma`` and ``beta`` small convolutional networks of the label map ``y``. Built
from MONAI's :class:`~monai.networks.nets.SPADEDiffusionModelUNet`.

The condition ``y`` has ``num_classes + 1`` channels: the one-hot label map (background,
structures and the sector label) and one null-indicator channel. A real map has indicator 0;
the null map (classifier-free guidance, Ho & Salimans 2022) is all-zero one-hot with indicator
1. An all-zero map alone would not do: SPADE still modulates the decoder with ``beta(0)``, and
the network could not tell "no label" from "a map with no pixels", so the indicator makes the
null condition a distinct input the network learns during label dropout.
"""

from __future__ import annotations

from typing import Sequence

import torch
from monai.networks.nets import SPADEDiffusionModelUNet
from torch import nn


def one_hot_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Condition of real label maps: ``y[b, k] = [labels[b] == k]`` for k < K, ``y[b, K] = 0``.

    ``labels``: integer ids of shape (B, H, W) in ``[0, num_classes)``. Returns (B, K+1, H, W)
    float32 (K = ``num_classes``), the last channel being the null indicator.
    """
    if labels.dim() != 3:
        raise ValueError(f"label maps must be (B, H, W), got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"label ids must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]")
    onehot = torch.nn.functional.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).float()
    return torch.cat([onehot, torch.zeros_like(onehot[:, :1])], dim=1)


def null_condition(like: torch.Tensor) -> torch.Tensor:
    """The null map for a condition ``like`` (B, K+1, H, W): one-hot all zero, indicator 1."""
    null = torch.zeros_like(like)
    null[:, -1] = 1.0
    return null


def drop_condition(cond: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """Label-map dropout: ``y_b <- null if drop_b else y_b`` for a boolean ``drop`` of shape (B,)."""
    return torch.where(drop.view(-1, 1, 1, 1).to(cond.device), null_condition(cond), cond)


class SemanticUNet(nn.Module):
    """``eps_theta(x_t, t | y)``: MONAI SPADE diffusion UNet with a null-indicator channel.

    ``forward(x, t, cond)`` with ``x`` (B, C, H, W), ``t`` (B,) timesteps and ``cond`` from
    :meth:`condition` (or :meth:`null` / :meth:`drop`); returns (B, out_channels, H, W).
    """

    conditional = True

    def __init__(self, *, in_channels: int, out_channels: int, num_classes: int, channels: Sequence[int],
                 attention_levels: Sequence[bool], num_res_blocks: int, num_head_channels: int,
                 norm_num_groups: int, spade_channels: int = 128):
        super().__init__()
        self.num_classes = int(num_classes)
        self.unet = SPADEDiffusionModelUNet(
            spatial_dims=2,
            in_channels=in_channels,
            out_channels=out_channels,
            label_nc=self.num_classes + 1,
            num_res_blocks=num_res_blocks,
            channels=tuple(channels),
            attention_levels=tuple(attention_levels),
            norm_num_groups=norm_num_groups,
            num_head_channels=num_head_channels,
            spade_intermediate_channels=spade_channels,
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if cond is None:
            raise ValueError("the semantic model needs a condition (label map or null map)")
        return self.unet(x, t, seg=cond.to(dtype=x.dtype))

    def condition(self, labels: torch.Tensor | None, classes: torch.Tensor | None = None) -> torch.Tensor:
        """One-hot condition of integer label maps (B, H, W); see :func:`one_hot_labels` (no classes)."""
        if labels is None:
            raise ValueError("the semantic model needs label maps")
        return one_hot_labels(labels, self.num_classes)

    @staticmethod
    def null(cond: torch.Tensor | None) -> torch.Tensor:
        """The null condition of the same shape as ``cond``."""
        return null_condition(cond)

    @staticmethod
    def drop(cond: torch.Tensor | None, drop: torch.Tensor) -> torch.Tensor:
        """Replace the conditions where ``drop`` is true by the null map."""
        return drop_condition(cond, drop)
