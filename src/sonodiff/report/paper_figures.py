"""The papers' process figures for one dataset: B-maps across time and the forward process
(Domínguez et al. figs. 1-2, drawn by :mod:`sonodiff.diffusion.figures`) and the reverse process
from noise (fig. 3: snapshots x_t along the sampler's chain of each trained model).

The reverse figure runs each variant's model (``model.pt``, loaded by the sampling stage's
:func:`sonodiff.sample.load_model`) with the sampling stage's guided prediction, from the same
initial noise :math:`x_T \\sim N(0, I)` (seeded by the config's seed) on
one validation label map, with the sampler of the model's ``sample`` config (respaced ancestral
or DDIM-N), keeping :math:`x_t` at evenly spaced steps and the final :math:`x_0`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch

from sonodiff.errors import InputError
from sonodiff.io import read_json
from sonodiff.manifest import read_manifest
from sonodiff.report import figures as F
from sonodiff.report.dataset_figures import variant_title

if TYPE_CHECKING:
    from sonodiff.sample import LoadedModel


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


def reverse_snapshots(loaded: "LoadedModel", labels: np.ndarray | None, num_snapshots: int,
                      seed: int) -> tuple[list[int | str], np.ndarray]:
    """Column names and snapshots (K, H, W) in [-1, 1] of one reverse chain (module docstring).

    ``loaded`` is a :class:`sonodiff.sample.LoadedModel`; the sampler, guidance scale, eta and
    clipping are those of its ``sample`` config, as in the sampling stage.
    """
    from sonodiff.diffusion.sampling import sample_loop
    from sonodiff.sample import guided_fn, parse_steps

    scfg = loaded.config["sample"]
    spec, ddim = parse_steps(scfg["steps"])
    diffusion = loaded.diffusion.respace(spec)
    device = diffusion.device
    n = diffusion.num_steps
    every = max(1, (n - 1) // max(num_snapshots - 2, 1))
    cond_labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)[None].to(device)
    cond = loaded.model.condition(cond_labels)
    model_fn = guided_fn(loaded, cond, float(scfg["guidance_scale"]), None)
    noise = torch.randn((1, *loaded.image_shape), generator=torch.Generator().manual_seed(int(seed)))
    x0, snaps = sample_loop(diffusion, model_fn, noise, [torch.Generator().manual_seed(int(seed) + 1)],
                            ddim=ddim, eta=float(scfg["eta"]), clip_x0=bool(scfg["clip_x0"]),
                            progress=True, snapshot_every=every)
    keep = [snaps[i] for i in sorted({int(round(v)) for v in np.linspace(0, len(snaps) - 1, num_snapshots - 1)})]
    names: list[int | str] = [s.step for s in keep] + ["x_0"]
    frames = np.stack([s.x_t[0].mean(0).numpy() for s in keep] + [x0[0].mean(0).detach().cpu().numpy()])
    return names, frames


def render_reverse_from_files(models: Mapping[str, str | Path], data_dir: str | Path, out: str | Path,
                              dataset: str, num_snapshots: int = 8, device: str = "auto") -> Path:
    """Fig. 3 for one dataset: one row per variant, same label map and same initial noise."""
    from sonodiff.sample import load_model
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
        loaded = load_model(path, dev)
        names, frames = reverse_snapshots(loaded, labels, num_snapshots, seed=int(loaded.config["seed"]))
        snapshots[variant_title(variant)] = frames
    sector_id = read_json(data_dir / "dataset.json").get("sector_id")
    label_rgb = F.colorize_labels(labels, sector_id) if labels is not None else None
    return F.render_reverse_figure(snapshots, names, out, title=f"{dataset}: reverse process",
                                   label_map=label_rgb)
