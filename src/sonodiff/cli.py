"""``sonodiff``: training and sampling outside Snakemake, on the same code and the same files.

    sonodiff train  --config config/config.yaml --dataset phantom_camus --variant bmaps
    sonodiff sample --config config/config.yaml --dataset phantom_camus --variant bmaps [--shard 0/2]
    sonodiff gather --config config/config.yaml --dataset phantom_camus --variant bmaps

Paths default to the workflow's layout under ``--results`` (``results/``,
:class:`sonodiff.contracts.layout.Layout`): the prepared dataset ``data/<d>``, the model
``models/<d>/<v>``, the augmented label maps ``augment/<d>`` and the samples ``samples/<d>/<v>``.
``sonodiff sample`` writes the sampling plan into the samples folder (the same plan every time
for the same config and label maps), then samples every shard and gathers them, or only the
shard ``--shard I/N``; ``sonodiff gather`` gathers the shards by the plan. ``--set key=value``
overrides config keys (YAML values, dotted keys, repeatable). Under torchrun, ``sonodiff train``
trains data-parallel; ``--nproc N`` starts torchrun itself.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import metadata
from pathlib import Path
from typing import Sequence

import yaml

from sonodiff.contracts import layout
from sonodiff.contracts.layout import Layout
from sonodiff.errors import InputError


def _apply_set(raw: dict, assignments: Sequence[str]) -> dict:
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError("--set", f"expected key=value, got {item!r}")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError("--set", f"{key}: {part} is not a section")
        node[parts[-1]] = yaml.safe_load(value)
    return raw


def job_config(args: argparse.Namespace) -> dict:
    """The resolved config of the job: ``--resolved-config`` as is, or ``--config`` resolved."""
    from sonodiff.config import resolve, validate_config

    if args.resolved_config:
        return yaml.safe_load(Path(args.resolved_config).read_text())
    if not (args.config and args.dataset and args.variant):
        raise InputError("sonodiff", "give --config, --dataset and --variant (or --resolved-config)")
    path = Path(args.config)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, f"cannot read config ({err})") from err
    cfg = validate_config(_apply_set(raw, args.set))
    return resolve(cfg, args.dataset, args.variant)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config YAML (e.g. config/config.yaml)")
    parser.add_argument("--dataset", help="dataset name in the config")
    parser.add_argument("--variant", help="variant name in the config (e.g. baseline, bmaps)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.steps=20 (repeatable)")
    parser.add_argument("--resolved-config", help="a resolved job config (YAML) instead of --config/--dataset/--variant")
    parser.add_argument("--results", default="results", help="results folder for default paths (default: results)")
    parser.add_argument("--device", help="cpu, cuda or auto (default: the config's device)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sonodiff", description=__doc__.replace("``", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sonodiff {metadata.version('sonodiff')}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train the diffusion model of a dataset and variant (resumes by itself)")
    _common(p)
    p.add_argument("--data", help="prepared dataset folder (default: RESULTS/data/DATASET)")
    p.add_argument("--manifest", help="the prepared dataset's manifest (default: in DATA)")
    p.add_argument("--info", help="the prepared dataset's description (default: in DATA)")
    p.add_argument("--sector", help="the prepared dataset's sector mask (default: in DATA)")
    p.add_argument("--out", help="model folder (default: RESULTS/models/DATASET/VARIANT)")
    p.add_argument("--model", help="model file to write (default: the model file in OUT)")
    p.add_argument("--nproc", type=int, default=1, help="processes (GPUs) for data-parallel training via torchrun")

    p = sub.add_parser("sample", help="sample synthetic images from a trained model (all, or one shard)")
    _common(p)
    p.add_argument("--model", help="model file (default: the one in RESULTS/models/DATASET/VARIANT)")
    p.add_argument("--labels", help="augmented label-map manifest (default: the one in RESULTS/augment/DATASET "
                                    "for a semantic model); 'none' for an unconditional model")
    p.add_argument("--sector", help="the prepared dataset's sector mask, used with sample.mask_sector "
                                    "(default: the one in RESULTS/data/DATASET)")
    p.add_argument("--out", help="samples folder (default: RESULTS/samples/DATASET/VARIANT)")
    p.add_argument("--shard", help="I/N: sample only shard I of N into OUT/shards/I (default: all, then gather)")

    p = sub.add_parser("gather", help="gather the shards of OUT/shards/* into the samples folder")
    _common(p)
    p.add_argument("--out", help="samples folder (default: RESULTS/samples/DATASET/VARIANT)")
    return parser


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError("--shard", f"expected I/N, got {text!r}") from None
    if not 0 <= i < n:
        raise InputError("--shard", f"need 0 <= I < N, got {text!r}")
    return i, n


def cmd_train(args: argparse.Namespace, cfg: dict) -> None:
    from sonodiff.contracts.dataset import PreparedDataset
    from sonodiff.train import train_job

    where, d, v = Layout(args.results), cfg["dataset"], str(cfg["variant"])
    found = PreparedDataset.in_dir(args.data or where("dataset_dir", dataset=d))
    dataset = PreparedDataset(args.manifest or found.manifest, args.info or found.info_path,
                              args.sector or found.sector_path)
    model = Path(args.model or (Path(args.out) / layout.MODEL if args.out else where("model", dataset=d, variant=v)))
    print(train_job(cfg, dataset, model, nproc=args.nproc, device=args.device, progress=not args.no_progress))


def _samples_manifest(args: argparse.Namespace, cfg: dict) -> Path:
    """The samples manifest of the job: in ``--out`` or the layout's samples folder."""
    out = args.out or Layout(args.results)("samples_dir", dataset=cfg["dataset"], variant=cfg["variant"])
    return Path(out) / layout.MANIFEST


def cmd_sample(args: argparse.Namespace, cfg: dict) -> None:
    from sonodiff.contracts.model_file import load_model
    from sonodiff.sample import sample_all, sample_shard, shard_manifest_path, write_sampling_plan

    shard = _parse_shard(args.shard) if args.shard else None
    where, d, v = Layout(args.results), cfg["dataset"], str(cfg["variant"])
    model = Path(args.model or where("model", dataset=d, variant=v))
    manifest = _samples_manifest(args, cfg)
    labels: Path | None
    if args.labels == "none":
        labels = None
    elif args.labels:
        labels = Path(args.labels)
    else:
        labels = Path(where("labelmaps_manifest", dataset=d)) if load_model(model).conditional else None
    sector = Path(args.sector or where("dataset_sector", dataset=d))
    progress = not args.no_progress
    if shard:
        i, n = shard
        plan = write_sampling_plan(cfg, labels, manifest.parent / layout.SAMPLE_PLAN)
        print(sample_shard(cfg, model, plan, shard_manifest_path(manifest, i), i, n, args.device, progress,
                           sector=sector))
    else:
        print(sample_all(cfg, model, labels, manifest, device=args.device, progress=progress, sector=sector))


def cmd_gather(args: argparse.Namespace, cfg: dict) -> None:
    from sonodiff.sample import gather

    manifest = _samples_manifest(args, cfg)
    shards = sorted((manifest.parent / layout.SHARDS).glob(f"*/{layout.MANIFEST}"), key=lambda p: int(p.parent.name))
    if not shards:
        raise InputError(manifest.parent / layout.SHARDS, "no shard manifests to gather")
    print(gather(cfg, shards, manifest.parent / layout.SAMPLE_PLAN, manifest))


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "gather": cmd_gather}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        COMMANDS[args.command](args, job_config(args))
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
