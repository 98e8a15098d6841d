"""The papers' process figures for one dataset: B-maps across time and the forward process
(Domínguez et al. figs. 1-2, drawn by :mod:`sonodiff.diffusion.figures`) and the reverse process
from noise (fig. 3: snapshots x_t along the sampler's chain of each trained model).

The reverse figure runs each variant's model (``model.pt``: EMA weights, spec, resolved config,
depth map) from the same initial noise :math:`x_T \\sim N(0, I)` (seeded by the config's seed) on
one validation label map, with the sampler of the model's ``sample`` config (respaced ancestral
or DDIM-N), keeping :math:`x_t` at evenly spaced steps and the final :math:`x_0`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from sonodiff.errors import InputError
from sonodiff.io import read_json
from sonodiff.manifest import read_manifest
from sonodiff.report import figures as F
from sonodiff.report.dataset_figures import variant_title


def render_process_figures(cfg: Mapping[str, Any], data_dir: str | Path, bmaps_out: str | Path,
                           forward_out: str | Path, num_panels: int = 6) -> None:
    """Figs. 1 and 2 for a resolved config (normally the B-map variant) on a prepared dataset;
    fig. 2 noises the first training image (by sample id)."""
    from sonodiff.diffusion.figures import render_bmaps_figure, render_forward_figure
    from sonodiff.train.data import depth_map
    from sonodiff.train.loop import make_diffusion

    data_dir = Path(data_dir)
    diffusion = make_diffusion(cfg, depth_map(data_dir))
    render_bmaps_figure(diffusion, bmaps_out, num_panels=num_panels)
    manifest = read_manifest(data_dir / "manifest.csv", required=["sample_id", "split", "image"])
    train = manifest[manifest["split"] == "train"]
    rows = (train if len(train) else manifest).sort_values("sample_id")
    if rows.empty:
        raise InputError(data_dir / "manifest.csv", "no image to noise for the forward-process figure")
    image = F.load_gray(rows["image"].iloc[0]) * 2.0 - 1.0
    render_forward_figure(image, diffusion, forward_out, num_panels=num_panels, seed=int(cfg["seed"]))


def load_trained(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict, torch.Tensor]:
    """(EMA model in eval mode, resolved config, depth map) from a ``model.pt``."""
    from sonodiff.models import build_model

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model(payload["spec"])
        model.load_state_dict(payload["state_dict"])
    except (OSError, RuntimeError, KeyError, EOFError) as err:
        raise InputError(path, f"unreadable model ({err})") from err
    return model.to(device).eval(), dict(payload["config"]), payload["depth"]


def reverse_snapshots(model: torch.nn.Module, cfg: Mapping[str, Any], depth: torch.Tensor,
                      labels: np.ndarray | None, num_snapshots: int, device: torch.device,
                      seed: int) -> tuple[list[int | str], np.ndarray]:
    """Column names and snapshots (K, H, W) in [-1, 1] of one reverse chain (module docstring)."""
    from sonodiff.diffusion.sampling import sample_loop
    from sonodiff.train.loop import make_diffusion

    steps_spec = cfg["sample"]["steps"]
    diffusion = make_diffusion(cfg, depth).respace(steps_spec).to(device)
    ddim = str(steps_spec).startswith("ddim")
    n = diffusion.num_steps
    every = max(1, (n - 1) // max(num_snapshots - 2, 1))
    h, w = depth.shape
    cond_labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)[None].to(device)
    cond = model.condition(cond_labels)

    def model_fn(x_t, t):
        return model(x_t, t, cond)

    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn((1, 1, h, w), generator=gen)
    x0, snaps = sample_loop(diffusion, model_fn, noise, [torch.Generator().manual_seed(int(seed) + 1)],
                            ddim=ddim, eta=float(cfg["sample"]["eta"]), clip_x0=bool(cfg["sample"]["clip_x0"]),
                            progress=True, snapshot_every=every)
    keep = [snaps[i] for i in sorted({int(round(v)) for v in np.linspace(0, len(snaps) - 1, num_snapshots - 1)})]
    names: list[int | str] = [s.step for s in keep] + ["x_0"]
    frames = np.stack([s.x_t[0, 0].numpy() for s in keep] + [x0[0, 0].detach().cpu().numpy()])
    return names, frames


def render_reverse_from_files(models: Mapping[str, str | Path], data_dir: str | Path, out: str | Path,
                              dataset: str, num_snapshots: int = 8, device: str = "auto") -> Path:
    """Fig. 3 for one dataset: one row per variant, same label map and same initial noise."""
    from sonodiff.train.loop import resolve_device

    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir / "manifest.csv", required=["sample_id", "split"])
    val = manifest[manifest["split"] == "val"]
    rows = (val if len(val) else manifest).sort_values("sample_id")
    label_path = rows["label"].iloc[0] if "label" in rows.columns and len(rows) and rows["label"].iloc[0] else None
    labels = F.load_labels(label_path) if label_path else None
    dev = resolve_device(device)
    snapshots, names = {}, None
    for variant, path in models.items():
        model, cfg, depth = load_trained(path, dev)
        names, frames = reverse_snapshots(model, cfg, depth, labels, num_snapshots, dev, seed=int(cfg["seed"]))
        snapshots[variant_title(variant)] = frames
    sector_id = read_json(data_dir / "dataset.json").get("sector_id")
    label_rgb = F.colorize_labels(labels, sector_id) if labels is not None else None
    return F.render_reverse_figure(snapshots, names, out, title=f"{dataset}: reverse process",
                                   label_map=label_rgb)
