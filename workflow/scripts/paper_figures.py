"""Rule paper_figures: B-maps across time and the forward process of one dataset (figs. 1-2)."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.report.paper_figures import render_process_figures
from sonodiff.rule import run_rule


def main(smk):
    dataset = PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector)
    render_process_figures(smk.params.cfg, dataset, smk.output.bmaps, smk.output.forward)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
