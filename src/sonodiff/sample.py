"""Batched, sharded, seeded generation of synthetic images from a trained model.

    jobs = sampling_jobs(cfg, "results/augment/camus/manifest.csv")   # one row per image
    sample_shard(cfg, "model.pt", jobs, "results/samples/camus/bmaps/shards/0", shard=0, shards=2)
    gather(cfg, [".../shards/0/manifest.csv", ".../shards/1/manifest.csv"], "results/samples/camus/bmaps")

Jobs. A semantic model samples one image per augmented label map (``augment.splits``, train and
val), at most ``sample.max_label_maps`` of them (a seeded subset); an unconditional model samples
``sample.count`` images (``split`` = val, the rows metrics compare with the real val images).

Seeds and shards. Image ``i`` gets the seed ``derive_seed(seed, "sample", sample_id_i)``; its
initial noise and every step's noise come from a generator with that seed alone
(``sonodiff.diffusion.sampling``). Jobs, sorted by ``sample_id``, are cut into batches of
``sample.batch_size`` *before* sharding, and shard i of n takes batches i, i+n, i+2n, ...: every
image is computed in the same batch, with the same neighbours, sharded or not, so the gathered
set is pixel-identical to an unsharded run (on a deterministic device; a batch-size-independent
model would not even need this).

Each step evaluates ``eps_hat = eps(x|y) + s (eps(x|y) - eps(x|null))`` (classifier-free
guidance, ``sample.guidance_scale`` = s; s = 0 evaluates the conditional model alone) and runs
ancestral steps (``full`` or ``N`` respaced steps) or DDIM steps (``ddimN``, ``sample.eta``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import yaml
from PIL import Image
from tqdm import tqdm

from sonodiff.diffusion.guidance import classifier_free
from sonodiff.diffusion.sampling import sample_loop
from sonodiff.errors import InputError
from sonodiff.io import atomic_dir, write_text
from sonodiff.manifest import SAMPLES_COLUMNS, read_manifest, write_manifest
from sonodiff.models import build_model
from sonodiff.train.data import read_png, to_uint8
from sonodiff.train.loop import autocast_dtype, make_diffusion, resolve_device
from sonodiff.train.seeds import derive_seed

log = logging.getLogger(__name__)

AUGMENT_COLUMNS = ("sample_id", "source_sample_id", "patient_id", "split", "label", "real_image")


@dataclass
class LoadedModel:
    """A ``model.pt``: the EMA network (eval mode), its B-map process, spec, config and step."""

    model: torch.nn.Module
    diffusion: Any
    spec: dict
    config: dict
    step: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        height, width = self.diffusion.depth.shape[-2:]
        return (self.spec["in_channels"], int(height), int(width))


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load ``model.pt`` (``weights_only=True``) and rebuild its network and process."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(path, f"unreadable model ({' '.join(str(err).split())[:200]})") from err
    missing = [k for k in ("state_dict", "spec", "config", "step", "depth") if k not in payload]
    if missing:
        raise InputError(path, f"not a sonodiff model (missing {missing})")
    model = build_model(payload["spec"])
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    diffusion = make_diffusion(payload["config"], payload["depth"]).to(device)
    return LoadedModel(model, diffusion, dict(payload["spec"]), dict(payload["config"]), int(payload["step"]))


def parse_steps(steps: int | str) -> tuple[int | str, bool]:
    """``sample.steps`` -> (respacing spec, DDIM?): ``ddimN`` is DDIM, ``full`` and N ancestral."""
    text = str(steps).strip().lower()
    return (text if text == "full" or text.startswith("ddim") else int(text)), text.startswith("ddim")


def sampling_jobs(cfg: Mapping[str, Any], labels_manifest: str | Path | None) -> pd.DataFrame:
    """One row per image to sample, sorted by ``sample_id`` (module docstring), with its seed."""
    scfg = cfg["sample"]
    if labels_manifest is not None:
        df = read_manifest(labels_manifest, required=AUGMENT_COLUMNS)
        df = df[list(AUGMENT_COLUMNS)].sort_values("sample_id").reset_index(drop=True)
        if df.empty:
            raise InputError(labels_manifest, "no label maps to sample from")
        cap = int(scfg["max_label_maps"])
        if 0 < cap < len(df):
            order = np.random.default_rng(derive_seed(cfg["seed"], "max_label_maps")).permutation(len(df))
            df = df.iloc[np.sort(order[:cap])].reset_index(drop=True)
    else:
        n = int(scfg["count"])
        df = pd.DataFrame({"sample_id": [f"sample_{i:06d}" for i in range(n)], "source_sample_id": "",
                           "patient_id": "", "split": "val", "label": "", "real_image": ""})
    df["seed"] = [derive_seed(cfg["seed"], "sample", sid) for sid in df["sample_id"]]
    return df


def shard_jobs(jobs: pd.DataFrame, shard: int, shards: int, batch_size: int) -> list[pd.DataFrame]:
    """The batches of shard ``shard`` of ``shards``: batches k = shard, shard + shards, ..."""
    if not 0 <= shard < shards:
        raise InputError("shard", f"shard {shard} of {shards} does not exist")
    batches = [jobs.iloc[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
    return batches[shard::shards]


def guided_fn(loaded: LoadedModel, cond: torch.Tensor | None, scale: float, amp: torch.dtype | None):
    """``model_fn(x_t, t)`` of the guided prediction ``eps(x|y) + s (eps(x|y) - eps(x|null))``.

    For s = 0 (or an unconditional model) only ``eps(x|y)`` is evaluated. Otherwise the
    conditional and null halves run as one batch of 2B.
    """
    model = loaded.model
    use_guidance = scale != 0 and cond is not None
    autocast = (lambda: torch.autocast(loaded.diffusion.device.type, dtype=amp)) if amp else contextlib.nullcontext

    def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with autocast():
            if not use_guidance:
                return model(x_t, t, cond).float()
            out = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, model.null(cond)])).float()
        out_cond, out_null = out.chunk(2)
        return classifier_free(out_cond, out_null, scale, learn_sigma=loaded.spec["out_channels"] > loaded.spec["in_channels"])

    return model_fn


def read_label_maps(paths: Sequence[str], loaded: LoadedModel) -> torch.Tensor:
    """Label-map PNGs as a (B, H, W) long tensor, checked against the model's size and labels."""
    labels = torch.from_numpy(np.stack([read_png(p) for p in paths])).long()
    if tuple(labels.shape[1:]) != loaded.image_shape[1:]:
        raise InputError(paths[0], f"label map is {tuple(labels.shape[1:])}, the model makes {loaded.image_shape[1:]}")
    if int(labels.max()) >= loaded.spec["num_classes"]:
        raise InputError(paths[0], f"label id {int(labels.max())} unknown to the model")
    return labels


def generate(loaded: LoadedModel, labels: torch.Tensor | None, seeds: Sequence[int], cfg: Mapping[str, Any],
             progress: bool = False) -> torch.Tensor:
    """Sample one batch: image i from ``labels[i]`` (None: unconditional) and ``seeds[i]``.

    Returns uint8 images (B, C, H, W) on the CPU.
    """
    scfg = cfg["sample"]
    device = loaded.diffusion.device
    spec, ddim = parse_steps(scfg["steps"])
    process = loaded.diffusion.respace(spec)
    cond = loaded.model.condition(labels.to(device) if labels is not None else None)
    amp = autocast_dtype(loaded.config["train"]["precision"], device)
    model_fn = guided_fn(loaded, cond, float(scfg["guidance_scale"]), amp)
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    x0 = sample_loop(process, model_fn, (len(seeds), *loaded.image_shape), generators, ddim=ddim,
                     eta=float(scfg["eta"]), clip_x0=bool(scfg["clip_x0"]), progress=progress)
    return to_uint8(x0).cpu()


def sample_shard(cfg: Mapping[str, Any], model_path: str | Path, jobs: pd.DataFrame, out_dir: str | Path,
                 shard: int = 0, shards: int = 1, device: str | None = None, progress: bool = True) -> Path:
    """Sample shard ``shard`` of ``shards`` into ``out_dir`` (``images/``, then ``manifest.csv``)."""
    out_dir = Path(out_dir)
    dev = resolve_device(device or cfg["device"])
    loaded = load_model(model_path, dev)
    if loaded.model.conditional and (jobs["label"] == "").any():
        raise InputError(model_path, "a semantic model needs label maps (give the augment manifest)")
    batches = shard_jobs(jobs, shard, shards, int(cfg["sample"]["batch_size"]))
    rows = []
    with atomic_dir(out_dir / "images") as tmp:
        total = sum(len(b) for b in batches)
        bar = tqdm(total=total, desc=f"sample {cfg.get('dataset')}/{cfg.get('variant')} shard {shard}/{shards}",
                   disable=not progress, dynamic_ncols=True)
        for batch in batches:
            labels = read_label_maps(list(batch["label"]), loaded) if loaded.model.conditional else None
            images = generate(loaded, labels, list(batch["seed"]), cfg)
            for (_, job), img in zip(batch.iterrows(), images):
                Image.fromarray(img[0].numpy()).save(tmp / f"{job['sample_id']}.png")
                rows.append({**{k: job[k] for k in ("sample_id", "label", "real_image", "source_sample_id",
                                                      "patient_id", "split", "seed")},
                             "image": str(out_dir / "images" / f"{job['sample_id']}.png")})
            bar.update(len(batch))
        bar.close()
    manifest = pd.DataFrame(rows, columns=list(SAMPLES_COLUMNS))
    write_manifest(manifest, out_dir / "manifest.csv")
    log.info("shard %d/%d: %d images in %s", shard, shards, len(manifest), out_dir)
    return out_dir / "manifest.csv"


def _link_or_copy(src: str | Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def gather(cfg: Mapping[str, Any], shard_manifests: Sequence[str | Path], out_dir: str | Path,
           expected: Iterable[str] | None = None) -> Path:
    """Merge shard outputs into the samples contract: ``images/``, ``config.yaml``, ``manifest.csv``.

    ``expected``: the sample ids the shards must hold together (checked when given).
    """
    out_dir = Path(out_dir)
    frames = [read_manifest(p, required=SAMPLES_COLUMNS) for p in shard_manifests]
    df = pd.concat(frames, ignore_index=True).sort_values("sample_id").reset_index(drop=True)
    if df["sample_id"].duplicated().any():
        raise InputError(shard_manifests[0], f"sample ids in two shards: {df['sample_id'][df['sample_id'].duplicated()].tolist()[:3]}")
    if expected is not None:
        missing = sorted(set(expected) - set(df["sample_id"]))
        if missing:
            raise InputError(out_dir, f"{len(missing)} samples missing from the shards, e.g. {missing[:3]}")
    with atomic_dir(out_dir / "images") as tmp:
        for src in df["image"]:
            _link_or_copy(src, tmp / Path(src).name)
    df["image"] = [str(out_dir / "images" / Path(p).name) for p in df["image"]]
    write_text(out_dir / "config.yaml", yaml.safe_dump(_plain(cfg), sort_keys=False))
    write_manifest(df[list(SAMPLES_COLUMNS)], out_dir / "manifest.csv")
    return out_dir / "manifest.csv"


def sample_all(cfg: Mapping[str, Any], model_path: str | Path, labels_manifest: str | Path | None,
               out_dir: str | Path, shards: int | None = None, device: str | None = None, progress: bool = True) -> Path:
    """Every shard in turn into ``out_dir/shards/<i>``, then :func:`gather` (the CLI without --shard)."""
    out_dir = Path(out_dir)
    jobs = sampling_jobs(cfg, labels_manifest)
    n = int(shards or cfg["sample"]["shards"])
    manifests = [sample_shard(cfg, model_path, jobs, out_dir / "shards" / str(i), i, n, device, progress)
                 for i in range(n)]
    return gather(cfg, manifests, out_dir, expected=jobs["sample_id"])


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
