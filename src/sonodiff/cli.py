"""``sonodiff``: the workflow's stages by hand, on the same code and the same files.

    sonodiff prepare --config config/config.yaml --dataset phantom_camus
    sonodiff train   --config config/config.yaml --dataset phantom_camus --variant bmaps
    sonodiff sample  --config config/config.yaml --dataset phantom_camus --variant bmaps [--shard 0/2]
    sonodiff gather  --config config/config.yaml --dataset phantom_camus --variant bmaps
    sonodiff metrics --config config/config.yaml --dataset phantom_camus --variant bmaps
    sonodiff segment --config config/config.yaml --dataset phantom_camus --source synthetic_bmaps
    sonodiff export  --config config/config.yaml --dataset phantom_camus --variant bmaps
    sonodiff sample  --model results/export/models/phantom_camus/bmaps --out my_samples

Paths default to the workflow's layout under ``--results`` (``results/``,
:class:`sonodiff.contracts.layout.Layout`): the raw files ``raw/<d>``, the prepared dataset
``data/<d>``, the augmented label maps ``augment/<d>``, the model ``models/<d>/<v>``, the samples
``samples/<d>/<v>``, the metrics ``metrics/<d>``, the segmenters ``segment/<d>/<source>`` and the
exported model ``export/models/<d>/<v>``. ``sonodiff prepare`` simulates, downloads or copies the
raw files (unless ``raw/<d>`` exists), converts them and augments the label maps.
``sonodiff sample`` writes the sampling plan into the samples folder (the same plan every time
for the same config and label maps), then samples every shard and gathers them, or only the
shard ``--shard I/N``; ``sonodiff gather`` gathers the shards by the plan. An exported model
folder (``--model FOLDER``) samples with the config it carries. ``--set key=value`` overrides
config keys (YAML values, dotted keys, repeatable). Under torchrun, ``sonodiff train`` trains
data-parallel; ``--nproc N`` starts torchrun itself. Errors are one line (``--debug``: with the
traceback).
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
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise InputError("--set", f"{key}: not a YAML value ({' '.join(str(err).split())})") from None
    return raw


#: Commands that run per dataset and variant (the others per dataset).
NEEDS_VARIANT = {"train", "sample", "gather", "metrics", "export"}


def job_config(args: argparse.Namespace) -> dict:
    """The resolved config of the job: ``--resolved-config`` as is, the config an exported model
    folder carries (``sample --model FOLDER`` without ``--config``), or ``--config`` resolved."""
    from sonodiff.config import resolve, validate_config

    if args.resolved_config:
        return yaml.safe_load(Path(args.resolved_config).read_text())
    if args.command == "sample" and not args.config and args.model and Path(args.model).is_dir():
        from sonodiff.contracts.model_folder import load_model_folder

        return _apply_set(load_model_folder(args.model).config, args.set)
    variant = getattr(args, "variant", None)
    if not (args.config and args.dataset and (variant or args.command not in NEEDS_VARIANT)):
        needed = "--config, --dataset and --variant" if args.command in NEEDS_VARIANT else "--config and --dataset"
        raise InputError("sonodiff", f"give {needed} (or --resolved-config)")
    path = Path(args.config)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, f"cannot read config ({' '.join(str(err).split())})") from err
    cfg = validate_config(_apply_set(raw, args.set))
    return resolve(cfg, args.dataset, variant)


def _common(parser: argparse.ArgumentParser, variant: bool = True) -> None:
    parser.add_argument("--config", help="config YAML (e.g. config/config.yaml)")
    parser.add_argument("--dataset", help="dataset name in the config")
    if variant:
        parser.add_argument("--variant", help="variant name in the config (e.g. baseline, bmaps)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.steps=20 (repeatable)")
    parser.add_argument("--resolved-config", help="a resolved job config (YAML) instead of --config/--dataset/--variant")
    parser.add_argument("--results", default="results", help="results folder for default paths (default: results)")
    parser.add_argument("--device", help="cpu, cuda or auto (default: the config's device)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error, not one line")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sonodiff", description=__doc__.replace("``", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sonodiff {metadata.version('sonodiff')}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="fetch or simulate a dataset's raw files, convert them, augment its label maps")
    _common(p, variant=False)
    p.add_argument("--raw", help="raw files folder (default: RESULTS/raw/DATASET; fetched or simulated when absent)")

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
    p.add_argument("--model", help="model file or exported model folder (default: the model file in "
                                   "RESULTS/models/DATASET/VARIANT); a folder brings its own config")
    p.add_argument("--labels", help="augmented label-map manifest (default: the one in RESULTS/augment/DATASET "
                                    "for a semantic model); 'none' for an unconditional model")
    p.add_argument("--sector", help="the prepared dataset's sector mask, used with sample.mask_sector "
                                    "(default: the one in RESULTS/data/DATASET)")
    p.add_argument("--out", help="samples folder (default: RESULTS/samples/DATASET/VARIANT)")
    p.add_argument("--shard", help="I/N: sample only shard I of N into OUT/shards/I (default: all, then gather)")

    p = sub.add_parser("gather", help="gather the shards of OUT/shards/* into the samples folder")
    _common(p)
    p.add_argument("--out", help="samples folder (default: RESULTS/samples/DATASET/VARIANT)")

    p = sub.add_parser("metrics", help="FID, KID, paired and physics metrics of a variant's samples")
    _common(p)
    p.add_argument("--samples", help="samples manifest (default: the one in RESULTS/samples/DATASET/VARIANT)")

    p = sub.add_parser("segment", help="train and test the segmenter of one source (after the leakage check)")
    _common(p, variant=False)
    p.add_argument("--source", default="real", help="real, synthetic_VARIANT or real+synthetic_VARIANT (default: real)")

    p = sub.add_parser("export", help="write a model as a shareable folder (safetensors, config.json, model card)")
    _common(p)
    p.add_argument("--model", help="model file (default: the one in RESULTS/models/DATASET/VARIANT)")
    p.add_argument("--out", help="folder to write (default: RESULTS/export/models/DATASET/VARIANT)")
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
    sector: Path | None = Path(args.sector or where("dataset_sector", dataset=d))
    if model.is_dir() and not args.sector:  # an exported folder carries its sector mask
        from sonodiff.contracts.model_folder import folder_sector

        sector = folder_sector(model)
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


def cmd_prepare(args: argparse.Namespace, cfg: dict) -> None:
    from sonodiff.augment import augment_dataset
    from sonodiff.data.download import fetch_source
    from sonodiff.data.prepare import prepare_dataset
    from sonodiff.phantom import simulate_phantom

    where, d = Layout(args.results), cfg["dataset"]
    raw = Path(args.raw or where("raw", dataset=d))
    progress = not args.no_progress
    if not raw.is_dir():
        if "simulate" in cfg["data"]["source"]:
            simulate_phantom(cfg, raw, progress=progress)
        else:
            fetch_source(cfg["data"]["source"], target=raw, cache=where("downloads"),
                         where=f"config key datasets.{d}.source")
    files = {k: where(f"dataset_{k}", dataset=d) for k in ("manifest", "info", "sector")}
    prepare_dataset(raw, files["manifest"], files["info"], files["sector"], cfg, progress=progress)
    print(files["manifest"])
    if any(v != 0 for v in cfg["data"]["labels"].values()):
        out = where("labelmaps_manifest", dataset=d)
        augment_dataset(files["manifest"], files["info"], files["sector"], out, cfg, progress=progress)
        print(out)


def _prepared(where: Layout, dataset: str):
    from sonodiff.contracts.dataset import PreparedDataset

    return PreparedDataset.in_dir(where("dataset_dir", dataset=dataset))


def cmd_metrics(args: argparse.Namespace, cfg: dict) -> None:
    from sonodiff.metrics.evaluate import compute_metrics, write_real_fid_stats

    where, d, v = Layout(args.results), cfg["dataset"], str(cfg["variant"])
    dataset = _prepared(where, d)
    stats = where("real_fid_stats", dataset=d)
    progress = not args.no_progress
    write_real_fid_stats(dataset, cfg, stats, progress=progress)
    samples = args.samples or where("samples_manifest", dataset=d, variant=v)
    out = where("metrics_record", dataset=d, variant=v)
    compute_metrics(samples, dataset, stats, cfg, out, where("metrics_values", dataset=d, variant=v), progress)
    print(out)


def cmd_segment(args: argparse.Namespace, cfg: dict) -> None:
    from sonodiff.contracts.segmentation import write_leakage_report
    from sonodiff.segment.leakage import check_leakage
    from sonodiff.segment.sources import source_variants
    from sonodiff.segment.train import run_segmentation

    where, d = Layout(args.results), cfg["dataset"]
    dataset = _prepared(where, d)
    samples = {v: where("samples_manifest", dataset=d, variant=v) for v in source_variants([args.source])}
    report = check_leakage(dataset.manifest, where("labelmaps_manifest", dataset=d), samples, [args.source])
    write_leakage_report(where("leakage_report", dataset=d), report)
    out = {k: where(f"segment_{k}", dataset=d, source=args.source) for k in ("record", "model", "predictions")}
    run_segmentation(dataset, args.source, samples, cfg, out["record"], out["model"], out["predictions"],
                     threads=args.threads, progress=not args.no_progress)
    print(out["record"])


def cmd_export(args: argparse.Namespace, cfg: dict) -> None:
    from sonodiff.export.model import export_model

    where, d, v = Layout(args.results), cfg["dataset"], str(cfg["variant"])
    record = Path(where("metrics_record", dataset=d, variant=v))
    out = Path(args.out or where("export_dir", dataset=d, variant=v))
    export_model(args.model or where("model", dataset=d, variant=v), out,
                 dataset_info_path=where("dataset_info", dataset=d),
                 metrics_record_path=record if record.is_file() else None,
                 train_log_path=where("train_log", dataset=d, variant=v), cfg=cfg,
                 sector_path=where("dataset_sector", dataset=d))
    print(out)


COMMANDS = {"prepare": cmd_prepare, "train": cmd_train, "sample": cmd_sample, "gather": cmd_gather,
            "metrics": cmd_metrics, "segment": cmd_segment, "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        COMMANDS[args.command](args, job_config(args))
    except Exception as err:  # the one handler: a line for the user, the traceback with --debug
        if args.debug:
            raise
        if isinstance(err, InputError):
            print(f"error: {err}", file=sys.stderr)
        else:
            print(f"error: {type(err).__name__}: {' '.join(str(err).split())[:300]} (--debug shows where)",
                  file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
