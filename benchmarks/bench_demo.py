"""The demo run in figures: seconds per stage, and how ultrasound-like the samples are.

    .venv/bin/python benchmarks/bench_demo.py [results] [--json]

Reads a results tree written by ``make run`` (through :mod:`sonodiff.contracts`) and prints

- per stage (data, augment, train, sample, metrics, segment, report): the number of jobs, the
  sum and the max of their wall seconds (column ``s`` of Snakemake's ``benchmarks/<rule>/...tsv``)
  and the sum of their CPU seconds (``cpu_time``). A rule's stage is the rule file that defines
  it (``workflow/rules/<stage>.smk``); rules no longer defined there are looked up in
  :data:`RENAMED`. Rules without a ``benchmark:`` (the quick ones) are not counted;
- per dataset and variant: the mean grey level (0-255) outside the sector mask of the samples
  and of the real val images, the depth-profile L1 of the metrics record
  (``physics.depth_profile.l1``), and the segmentation check's ratio synthetic / real of the
  mean Dice over structures (segmentation records, else ``tables/segmentation.csv``).

Missing files print as ``n/a``: the script also reads a partial tree.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.layout import Layout
from sonodiff.contracts.metrics_record import read_metrics_record
from sonodiff.contracts.samples import read_samples
from sonodiff.contracts.segmentation import read_segment_record
from sonodiff.io import read_pngs

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("data", "augment", "train", "sample", "metrics", "segment", "report")
#: Rules of older results trees under their stage (the rule was renamed since).
RENAMED = {"reverse_process": "sample"}
REAL_SPLIT = "val"


def rule_stages(rules_dir: Path = ROOT / "workflow" / "rules") -> dict[str, str]:
    """Rule name -> stage, from ``rule <name>:`` lines of ``<stage>.smk`` / ``<stage>_helpers.smk``."""
    stages = dict(RENAMED)
    for path in sorted(rules_dir.glob("*.smk")):
        stage = path.stem.removesuffix("_helpers")
        for name in re.findall(r"^rule\s+(\w+)\s*:", path.read_text(), flags=re.M):
            stages[name] = stage
    return stages


def stage_seconds(layout: Layout) -> pd.DataFrame:
    """One row per stage: jobs, sum_s, max_s, cpu_s (stages without benchmarked jobs: 0 jobs)."""
    folder = Path(layout("benchmarks"))
    stages = rule_stages()
    rows = []
    for tsv in sorted(folder.glob("*/**/*.tsv")):
        rule = tsv.relative_to(folder).parts[0]
        table = pd.read_csv(tsv, sep="\t")
        if table.empty:
            continue
        rows.append({"stage": stages.get(rule, "other"), "rule": rule, "s": float(table["s"].iloc[-1]),
                     "cpu_s": float(table["cpu_time"].iloc[-1]) if "cpu_time" in table else math.nan})
    jobs = pd.DataFrame(rows, columns=["stage", "rule", "s", "cpu_s"])
    order = list(STAGES) + sorted(set(jobs["stage"]) - set(STAGES))
    out = []
    for stage in order:
        mine = jobs[jobs["stage"] == stage]
        out.append({"stage": stage, "jobs": len(mine), "sum_s": mine["s"].sum(), "max_s": mine["s"].max(),
                    "cpu_s": mine["cpu_s"].sum(), "rules": ",".join(sorted(set(mine["rule"])))})
    return pd.DataFrame(out)


def sample_sets(layout: Layout) -> list[tuple[str, str]]:
    """(dataset, variant) of every gathered sample set in the tree."""
    found = sorted(Path(p) for p in glob.glob(layout("samples_manifest", dataset="*", variant="*")))
    return [(p.parent.parent.name, p.parent.name) for p in found]


def outside_grey(images: np.ndarray, sector: np.ndarray) -> float:
    """Mean grey level (0-255) of the pixels outside the sector over ``images`` (N, H, W); NaN when
    there are none (e.g. a linear probe whose sector is the whole image)."""
    if images.size == 0 or images.shape[1:] != sector.shape or sector.all():
        return math.nan
    return float(images[:, ~sector].mean())


def dice_ratio(layout: Layout, dataset: str, variant: str) -> float:
    """Mean Dice over structures of ``synthetic_<variant>`` / ``real`` (records, else the table)."""
    source = f"synthetic_{variant}"
    try:
        means = [float(read_segment_record(layout("segment_record", dataset=dataset, source=s))
                       ["dice"]["structure_mean"]["mean"]) for s in ("real", source)]
        return means[1] / means[0]
    except (OSError, KeyError, ValueError):
        pass
    table = Path(layout("table", name="segmentation", fmt="csv"))
    if not table.is_file():
        return math.nan
    df = pd.read_csv(table)
    rows = df[(df["dataset"] == dataset) & (df["kind"] == "ours")].set_index("source")["mean_mean"]
    return float(rows[source] / rows["real"]) if {"real", source} <= set(rows.index) else math.nan


def sample_quality(layout: Layout) -> pd.DataFrame:
    rows = []
    for dataset, variant in sample_sets(layout):
        data = PreparedDataset.in_dir(layout("dataset_dir", dataset=dataset))
        sector = data.sector()
        real = data.images(data.rows(REAL_SPLIT))
        samples = read_samples(layout("samples_manifest", dataset=dataset, variant=variant))
        if (samples["split"] != "").any():
            samples = samples[samples["split"] == REAL_SPLIT]
        syn = read_pngs(list(samples["image"]), layout("samples_manifest", dataset=dataset, variant=variant))
        try:
            record = read_metrics_record(layout("metrics_record", dataset=dataset, variant=variant))
            l1 = record["physics"]["depth_profile"]["l1"]["value"]
            l1 = math.nan if l1 is None else float(l1)
        except (OSError, KeyError, ValueError):
            l1 = math.nan
        rows.append({"dataset": dataset, "variant": variant, "n_samples": len(syn),
                     "outside_grey_samples": outside_grey(syn, sector), "outside_grey_real": outside_grey(real, sector),
                     "depth_profile_l1": l1, "dice_synthetic_over_real": dice_ratio(layout, dataset, variant)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", default="results", help="results folder (default: results)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args()
    layout = Layout(args.results.rstrip("/"))
    stages, quality = stage_seconds(layout), sample_quality(layout)
    if args.json:
        print(json.dumps({"stages": stages.to_dict("records"), "samples": quality.to_dict("records")}, default=str))
        return
    pd.set_option("display.width", 200)
    print(f"job seconds per stage in {args.results} (Snakemake benchmark records)")
    print(stages.to_string(index=False, float_format=lambda v: f"{v:.1f}", na_rep="-"))
    print(f"all stages: {stages['sum_s'].sum():.1f} job-s, {stages['cpu_s'].sum():.1f} CPU-s, "
          f"{int(stages['jobs'].sum())} jobs")
    print()
    print("sample quality (grey 0-255 outside the sector; L1 of the depth profiles; Dice synthetic / real)")
    print(quality.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="n/a") if len(quality)
          else "no sample sets")


if __name__ == "__main__":
    main()
