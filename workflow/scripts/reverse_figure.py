"""Rule reverse_figure: the reverse process of each variant's model from its snapshots (fig. 3)."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.contracts.dataset import read_dataset_info
from sonodiff.report.paper_figures import render_reverse_from_files
from sonodiff.rule import run_rule


def main(smk):
    render_reverse_from_files(
        snapshots=dict(zip(smk.params.variants, smk.input.snapshots)),
        sector_id=read_dataset_info(smk.input.info).get("sector_id"),
        out=smk.output[0],
        dataset_name=smk.wildcards.dataset,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
