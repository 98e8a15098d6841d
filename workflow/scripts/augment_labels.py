"""Rule augment_labels: random affine + elastic copies of the train/val label maps."""

from sonodiff.augment import augment_dataset
from sonodiff.rule import run_rule


def main(smk):
    augment_dataset(smk.input.manifest, smk.input.info, smk.output.manifest, smk.params.cfg)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
