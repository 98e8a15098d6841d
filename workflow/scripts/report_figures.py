"""Rule report_figures: one dataset's qualitative grid, sample grids, training curves and depth profile."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.report.dataset_figures import render_dataset_figures
from sonodiff.rule import run_rule


def main(smk):
    variants = list(smk.params.variants)
    render_dataset_figures(
        dataset=smk.wildcards.dataset,
        prepared=PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector),
        samples=dict(zip(variants, smk.input.samples)),
        train_logs=dict(zip(variants, smk.input.logs)),
        metrics=dict(zip(variants, smk.input.metrics)),
        outputs={k: smk.output[k] for k in ("qualitative", "training", "depth_profile")},
        sample_grids=dict(zip(variants, smk.output.samples)),
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
