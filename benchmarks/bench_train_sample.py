"""Training and sampling throughput (images/s) of a config's model on a device.

Uses the prepared dataset ``results/data/<dataset>`` when it exists (``--data``; read through
:class:`sonodiff.contracts.dataset.PreparedDataset`), otherwise
random images and label maps at the dataset's ``img_size`` with a synthetic convex sector, so
it also runs before the DAG (e.g. at the paper's 128 px on a GPU). Training: ``--train-steps``
optimiser steps of the real loop (``Trainer.step``: the B-map loss, AdamW, clipping, EMA,
the config's precision/compile/channels_last) after ``--warmup`` steps. Sampling:
``--sample-batches`` batches of ``sample.batch_size`` images with ``sample.sampler``,
``sample.steps`` and ``sample.guidance_scale`` (and the sector mask of a prepared dataset with
``sample.mask_sector``), after one warm-up batch.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train_sample.py \\
        --config config/config.yaml --dataset phantom_camus --device cpu
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from sonodiff.config import load_config, resolve
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.layout import Layout
from sonodiff.contracts.model_file import LoadedModel
from sonodiff.device import resolve_device
from sonodiff.diffusion import BMapDiffusion, convex_depth
from sonodiff.sample import generate, read_sector_mask
from sonodiff.train import Trainer
from sonodiff.train.data import TrainingSet, load_training_set


def synthetic_set(cfg: dict, n: int = 64) -> tuple[TrainingSet, torch.Tensor]:
    """Random uint8 images and label maps (background, structures, sector) with a convex fan."""
    size = int(cfg["data"].get("img_size", 128))
    depth = convex_depth(size, size, apex=(-0.2 * size, (size - 1) / 2), radius=1.2 * size, opening_angle=70)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, size, size), generator=gen, dtype=torch.uint8)
    structures = [v for v in cfg["data"]["labels"].values() if v != 0]
    classes = len(cfg["data"]["labels"]) + 1 if structures else None
    labels = torch.randint(0, classes, (n, size, size), generator=gen, dtype=torch.uint8) if classes else None
    return TrainingSet(images, labels, classes, [str(i) for i in range(n)]), depth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--variant", default=None, help="default: the config's last variant (e.g. bmaps)")
    parser.add_argument("--device", default=None, help="cpu | cuda | auto (default: the config's device)")
    parser.add_argument("--data", default=None, help="prepared dataset folder (default: results/data/DATASET)")
    parser.add_argument("--synthetic", action="store_true", help="random data even if the prepared dataset exists")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--sample-batches", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    config = load_config(args.config)
    variant = args.variant or sorted(config["variants"])[-1]
    cfg = resolve(config, args.dataset, variant)
    device = resolve_device(args.device or cfg["device"])
    dataset = PreparedDataset.in_dir(args.data or Layout()("dataset_dir", dataset=args.dataset))
    if not args.synthetic and dataset.manifest.is_file():
        data, depth, source = load_training_set(dataset), dataset.depth_map(), str(dataset.folder)
    else:
        (data, depth), source = synthetic_set(cfg), "synthetic"
    trainer = Trainer(cfg, data, BMapDiffusion.from_config(cfg["diffusion"], depth), device)
    batch = cfg["train"]["batch_size"]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for step in range(args.warmup):
        trainer.step(step)
    sync()
    t0 = time.perf_counter()
    for step in range(args.warmup, args.warmup + args.train_steps):
        trainer.step(step)
    sync()
    train_ips = args.train_steps * batch / (time.perf_counter() - t0)

    loaded = LoadedModel(trainer.ema.module.eval(), BMapDiffusion.from_config(cfg["diffusion"], depth).to(device),
                         trainer.spec, cfg, args.warmup + args.train_steps)
    sb = cfg["sample"]["batch_size"]
    labels = data.labels[torch.arange(sb) % len(data)].long() if data.labels is not None else None
    real = source != "synthetic" and cfg["sample"]["mask_sector"]
    sector = read_sector_mask(dataset.sector_path, loaded) if real else None
    generate(loaded, labels, list(range(sb)), cfg, sector=sector)  # warm-up
    sync()
    t0 = time.perf_counter()
    for k in range(args.sample_batches):
        generate(loaded, labels, [sb * (k + 1) + i for i in range(sb)], cfg, sector=sector)
    sync()
    sample_ips = args.sample_batches * sb / (time.perf_counter() - t0)

    params = sum(p.numel() for p in trainer.model.parameters())
    result = {
        "dataset": args.dataset, "variant": variant, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "data": source, "img_size": int(depth.shape[-1]),
        "model": trainer.spec["kind"], "parameters": params, "precision": cfg["train"]["precision"],
        "train_batch": batch, "train_images_per_s": round(train_ips, 3),
        "sampler": cfg["sample"]["sampler"], "sample_steps": cfg["sample"]["steps"], "sample_batch": sb, "guidance_scale": cfg["sample"]["guidance_scale"],
        "sample_images_per_s": round(sample_ips, 3),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.dataset}/{variant} on {result['device_name']} ({result['threads']} threads), "
          f"{result['model']} UNet {params / 1e6:.2f} M parameters, {result['img_size']} px, data: {source}")
    print(f"training: {train_ips:.2f} images/s (batch {batch}, {args.train_steps} steps, precision {cfg['train']['precision']})")
    print(f"sampling: {sample_ips:.2f} images/s ({cfg['sample']['sampler']}, steps {cfg['sample']['steps']}, batch {sb}, "
          f"guidance {cfg['sample']['guidance_scale']})")


if __name__ == "__main__":
    main()
