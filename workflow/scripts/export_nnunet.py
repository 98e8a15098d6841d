"""Rule export_nnunet: write one source's training set (and the real test split) as an nnU-Net v2 raw dataset."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.rule import run_rule
from sonodiff.segment.nnunet import write_nnunet_dataset


def main(smk):
    write_nnunet_dataset(
        folder=smk.output[0],
        dataset=PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector),
        source=smk.wildcards.source,
        samples_manifests=dict(zip(smk.params.variants, smk.input.samples)),
        cfg=smk.params.cfg,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
