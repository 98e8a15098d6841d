"""A tiny network trained for a few hundred steps on a toy distribution lowers the loss."""

from __future__ import annotations

import torch
from torch import nn

from sonodiff.diffusion import BMapDiffusion, linear_depth

S = 8  # image size
T = 100


class TinyEpsNet(nn.Module):
    """Conv net on (x_t, t / T): outputs eps and the variance interpolation v."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2, 16, 3, padding=1), nn.SiLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.SiLU(),
            nn.Conv2d(16, 2, 3, padding=1),
        )

    def forward(self, x, t):
        tt = (t.float() / T).view(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])
        return self.net(torch.cat([x, tt], 1))


def _toy(n, g):
    """Two modes: a vertical ramp bright at the top or at the bottom, random amplitude."""
    ramp = torch.linspace(-1, 1, S).view(1, 1, S, 1).expand(n, 1, S, S)
    sign = torch.where(torch.rand(n, 1, 1, 1, generator=g) < 0.5, -1.0, 1.0)
    return sign * ramp * (0.6 + 0.4 * torch.rand(n, 1, 1, 1, generator=g))


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    diff = BMapDiffusion(T, "cosine", "sqrt", b_min=0.9, depth=linear_depth(S, S))
    model = TinyEpsNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x_eval, t_eval = _toy(256, g), torch.randint(0, T, (256,), generator=g)
    noise_eval = torch.randn(x_eval.shape, generator=g)

    def evaluate():
        with torch.no_grad():
            out = diff.training_losses(model, x_eval, t_eval, noise_eval)
        return {k: float(v.mean()) for k, v in out.items()}

    before = evaluate()
    for _ in range(200):
        x0 = _toy(32, g)
        t = torch.randint(0, T, (32,), generator=g)
        loss = diff.training_losses(model, x0, t, torch.randn(x0.shape, generator=g))["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = evaluate()
    assert after["loss"] < 0.3 * before["loss"], (before, after)
    assert after["mse"] < before["mse"] and after["vb"] < before["vb"]
