"""Shards of a sampling plan and their gathering into the samples contract.

``sample_shard`` computes the plan's batches b with b mod n = i (:func:`sonodiff.sample.plan.shard_batches`)
into ``shards/<i>/`` (with ``sample.mask_sector``, black outside the sector mask given as
``sector``, the prepared dataset's ``sector.png``); ``gather`` checks that the shards hold every planned image once, links the
images into the set's ``images/`` and writes ``config.yaml`` and the manifest
(:mod:`sonodiff.contracts.samples`). ``sample_all`` does the three in one process (the CLI).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from tqdm import tqdm

from sonodiff.contracts import layout
from sonodiff.contracts.model_file import load_model
from sonodiff.contracts.samples import (
    OPTIONAL_COLUMNS, SAMPLES_COLUMNS, images_folder, read_plan, read_samples, sample_image_path, write_sample_config, write_samples,
)
from sonodiff.device import resolve_device
from sonodiff.errors import InputError
from sonodiff.io import atomic_dir, write_png
from sonodiff.models import LABEL_KINDS
from sonodiff.sample.generate import configured_mask, generate, prompt_classes, read_label_maps
from sonodiff.sample.plan import shard_batches, write_sampling_plan

log = logging.getLogger(__name__)

#: zlib level of the sample PNGs (PIL's default, which the sample sets have always used).
PNG_COMPRESS_LEVEL = 6
#: Plan columns a shard copies into its manifest.
CARRIED = ("sample_id", "label", "real_image", "source_sample_id", "patient_id", "split", "seed")


def shard_manifest_path(set_manifest: str | Path, shard: int) -> Path:
    """Where shard ``shard`` of the set whose manifest is ``set_manifest`` writes its manifest."""
    return Path(set_manifest).parent / layout.SHARDS / str(shard) / layout.MANIFEST


def sample_shard(cfg: Mapping[str, Any], model_path: str | Path, plan_path: str | Path, out_manifest: str | Path,
                 shard: int = 0, shards: int = 1, device: str | None = None, progress: bool = True,
                 sector: str | Path | None = None) -> Path:
    """Sample shard ``shard`` of ``shards`` of the plan: ``images/`` beside ``out_manifest``, then it.

    ``sector``: the prepared dataset's sector mask file, required with ``sample.mask_sector``.
    """
    out_manifest = Path(out_manifest)
    out_dir = out_manifest.parent
    plan = read_plan(plan_path)
    batches = shard_batches(plan, shard, shards)
    loaded = load_model(model_path, resolve_device(device or cfg["device"]))
    needs_maps = loaded.spec["kind"] in LABEL_KINDS
    if needs_maps and (plan["label"] == "").any():
        raise InputError(model_path, f"a {loaded.spec['kind']} model needs label maps (give the augment manifest)")
    carried = CARRIED + tuple(c for c in OPTIONAL_COLUMNS if c in plan.columns)
    mask = configured_mask(cfg["sample"], sector, loaded)
    rows = []
    with atomic_dir(images_folder(out_manifest)) as tmp:
        bar = tqdm(total=sum(len(b) for b in batches), disable=not progress, dynamic_ncols=True,
                   desc=f"sample {cfg.get('dataset')}/{cfg.get('variant')} shard {shard}/{shards}")
        for batch in batches:
            labels = read_label_maps(list(batch["label"]), loaded) if loaded.conditional and needs_maps else None
            classes = prompt_classes(loaded, batch, plan_path)
            images = generate(loaded, labels, list(batch["seed"]), cfg, sector=mask, classes=classes)
            for (_, job), img in zip(batch.iterrows(), images):
                image = sample_image_path(out_dir, job["sample_id"])
                write_png(tmp / image.name, img[0].numpy(), compress_level=PNG_COMPRESS_LEVEL)
                rows.append({**{k: job[k] for k in carried}, "image": str(image)})
            bar.update(len(batch))
        bar.close()
    write_samples(pd.DataFrame(rows, columns=list(SAMPLES_COLUMNS) + list(carried[len(CARRIED):])), out_manifest)
    log.info("shard %d/%d: %d images in %s", shard, shards, len(rows), out_dir)
    return out_manifest


def _link_or_copy(src: str | Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def gather(cfg: Mapping[str, Any], shard_manifests: Sequence[str | Path], plan_path: str | Path,
           out_manifest: str | Path) -> Path:
    """Merge shard outputs into the samples contract: ``images/``, ``config.yaml``, the manifest.

    Every image of the plan must be in exactly one shard, and no shard may hold another.
    """
    out_manifest = Path(out_manifest)
    planned = set(read_plan(plan_path)["sample_id"])
    frames = [read_samples(p) for p in shard_manifests]
    df = pd.concat(frames, ignore_index=True).sort_values("sample_id").reset_index(drop=True)
    twice = df["sample_id"][df["sample_id"].duplicated()].tolist()
    if twice:
        raise InputError(shard_manifests[0], f"sample ids in two shards: {twice[:3]}")
    missing = sorted(planned - set(df["sample_id"]))
    if missing:
        raise InputError(plan_path, f"{len(missing)} samples missing from the shards, e.g. {missing[:3]}")
    unplanned = sorted(set(df["sample_id"]) - planned)
    if unplanned:
        raise InputError(plan_path, f"{len(unplanned)} samples of the shards are not in the plan, e.g. {unplanned[:3]}")
    images = images_folder(out_manifest)
    with atomic_dir(images) as tmp:
        for src in df["image"]:
            _link_or_copy(src, tmp / Path(src).name)
    df["image"] = [str(images / Path(p).name) for p in df["image"]]
    write_sample_config(out_manifest, cfg)
    write_samples(df, out_manifest)
    return out_manifest


def sample_all(cfg: Mapping[str, Any], model_path: str | Path, labelmaps: str | Path | None,
               out_manifest: str | Path, shards: int | None = None, device: str | None = None,
               progress: bool = True, sector: str | Path | None = None, classes_from: str | Path | None = None) -> Path:
    """The plan beside ``out_manifest``, every shard in turn into ``shards/<i>/``, then :func:`gather`.
    ``classes_from``: the prepared manifest whose classes a latent model's prompts are."""
    out_manifest = Path(out_manifest)
    plan = write_sampling_plan(cfg, labelmaps, out_manifest.parent / layout.SAMPLE_PLAN, classes_from)
    n = int(shards or cfg["sample"]["shards"])
    manifests = [sample_shard(cfg, model_path, plan, shard_manifest_path(out_manifest, i), i, n, device, progress,
                              sector) for i in range(n)]
    return gather(cfg, manifests, plan, out_manifest)
