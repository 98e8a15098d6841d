"""Rule prepare_dataset: raw files -> the prepared dataset (manifest, dataset.json, sector mask, PNGs).

input.raw is the raw folder; output.manifest, output.info and output.sector are the dataset's three
contract files (one folder, which also receives images/ and labels/); params.cfg the resolved job config.
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.data.prepare import prepare_dataset
from sonodiff.rule import run_rule


def main(smk):
    prepare_dataset(smk.input.raw, smk.output.manifest, smk.output.info, smk.output.sector, smk.params.cfg)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
