"""Rule augment_labels: random affine + elastic copies of the train/val label maps, and the val
maps undeformed (sonodiff.augment; augment may be set per dataset).

input.manifest, input.info and input.sector are the prepared dataset; output.manifest is the
augmented label maps' manifest (labels/ is written beside it); params.cfg the resolved job config.
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.augment import augment_dataset
from sonodiff.rule import run_rule


def main(smk):
    augment_dataset(smk.input.manifest, smk.input.info, smk.input.sector, smk.output.manifest, smk.params.cfg)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
