"""The paper's Figures 1 and 2 from a process, as PNGs written atomically (matplotlib, Agg).

    render_bmaps_figure(diffusion, path, num_panels=6) -> Path
        Figure 1: B_t(p) (top row) and Bbar_t(p) (bottom row) at evenly spaced steps.
    render_forward_figure(image, diffusion, path, num_panels=6, seed=0) -> Path
        Figure 2: B_t(p) (top row) above the forward noising x_t ~ q(x_t | x_0) of ``image``
        ((H, W) or (C, H, W) in [-1, 1]) with one fixed noise draw (bottom row).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sonodiff.diffusion.process import BMapDiffusion
from sonodiff.plotting import save_figure


def panel_steps(num_steps: int, num_panels: int) -> list[int]:
    """``num_panels`` step indices evenly spread over 0..num_steps-1 (first and last included)."""
    return sorted({int(round(x)) for x in np.linspace(0, num_steps - 1, num_panels)})


def render_bmaps_figure(diffusion: BMapDiffusion, path: str | Path, num_panels: int = 6) -> Path:
    """Figure 1: the B-maps B_t(p) and their running product Bbar_t(p) across time."""
    steps = panel_steps(diffusion.num_steps, num_panels)
    rows = [
        ("$B_t$", [diffusion.bmap(k).cpu().numpy() for k in steps]),
        (r"$\bar B_t$", [diffusion.bbar(k).cpu().numpy() for k in steps]),
    ]
    fig = Figure(figsize=(2.0 * len(steps) + 0.8, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(steps), squeeze=False)
    for r, (name, maps) in enumerate(rows):
        lo = min(float(m.min()) for m in maps)
        for c, (k, m) in enumerate(zip(steps, maps)):
            im = axes[r, c].imshow(m, cmap="viridis", vmin=min(lo, 1.0 - 1e-6), vmax=1.0)
            axes[r, c].set_title(f"{name}, t={int(diffusion.timestep_map[k])}", fontsize=9)
            axes[r, c].axis("off")
        fig.colorbar(im, ax=list(axes[r]), fraction=0.02, pad=0.01)
    return save_figure(fig, path)


def render_forward_figure(
    image: torch.Tensor | np.ndarray,
    diffusion: BMapDiffusion,
    path: str | Path,
    num_panels: int = 6,
    seed: int = 0,
) -> Path:
    """Figure 2: B-maps (top) above x_t = sqrt(alphabar'_t) x_0 + sqrt(1 - alphabar'_t) eps (bottom)."""
    x0 = torch.as_tensor(np.asarray(image), dtype=torch.float32)
    if x0.dim() == 2:
        x0 = x0[None]
    if x0.dim() != 3:
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {tuple(x0.shape)}")
    steps = panel_steps(diffusion.num_steps, num_panels)
    x0 = x0[None].expand(len(steps), *x0.shape).to(diffusion.device)
    noise = torch.randn(x0.shape[1:], generator=torch.Generator().manual_seed(seed))
    noise = noise[None].expand_as(x0).to(diffusion.device)
    x_t = diffusion.q_sample(x0, torch.tensor(steps, device=diffusion.device), noise).cpu()
    fig = Figure(figsize=(2.0 * len(steps), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(steps), squeeze=False)
    bmaps = [diffusion.bmap(k).cpu().numpy() for k in steps]
    lo = min(min(float(m.min()) for m in bmaps), 1.0 - 1e-6)
    for c, k in enumerate(steps):
        t = int(diffusion.timestep_map[k])
        axes[0, c].imshow(bmaps[c], cmap="viridis", vmin=lo, vmax=1.0)
        axes[0, c].set_title(f"$B_t$, t={t}", fontsize=9)
        img = x_t[c].mean(0).numpy()
        axes[1, c].imshow(img, cmap="gray", vmin=-1.5, vmax=1.5)
        axes[1, c].set_title(f"$x_t$, t={t}", fontsize=9)
        for ax in axes[:, c]:
            ax.axis("off")
    return save_figure(fig, path)
