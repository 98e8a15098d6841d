"""Rule train_segmenter: train the UNet on one source, every seed in turn; test each on the real test split."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.rule import run_rule
from sonodiff.segment.train import run_segmentation


def main(smk):
    run_segmentation(
        dataset=PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector),
        source=smk.wildcards.source,
        samples_manifests=dict(zip(smk.params.variants, smk.input.samples)),
        cfg=smk.params.cfg,
        record=smk.output.metrics,
        model=smk.output.model,
        predictions=smk.output.predictions,
        threads=smk.threads,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
