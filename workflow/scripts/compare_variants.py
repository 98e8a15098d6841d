"""Rule compare_variants: every figure of each variant minus the reference variant's, on one dataset."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.metrics.compare import compare_variants
from sonodiff.rule import run_rule


def main(smk):
    compare_variants(
        values_paths=dict(zip(smk.params.variants, smk.input.values)),
        reference=smk.params.reference,
        cfg=smk.params.cfg,
        out=smk.output[0],
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
