"""Rule train_segmenter: train the UNet on one source, test it on the real test split."""

from sonodiff.rule import run_rule
from sonodiff.segment.train import run_segmentation


def main(smk):
    run_segmentation(
        prepared_manifest=smk.input.manifest,
        info_json=smk.input.info,
        source=smk.wildcards.source,
        samples_manifests=dict(zip(smk.params.variants, smk.input.samples)),
        cfg=smk.params.cfg,
        metrics_json=smk.output.metrics,
        model_pt=smk.output.model,
        predictions_npz=smk.output.predictions,
        threads=smk.threads,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
