"""Rule prepare_dataset: raw files -> manifest.csv, PNGs, sector.png, dataset.json."""

from pathlib import Path

from sonodiff.data.prepare import prepare_dataset
from sonodiff.rule import run_rule


def main(smk):
    out_dir = Path(smk.output.manifest).parent
    prepare_dataset(smk.input.raw, out_dir, smk.params.cfg)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
