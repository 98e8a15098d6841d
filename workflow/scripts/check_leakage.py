"""Rule check_leakage: fail the DAG if a test patient reaches augmentation, samples or training sets."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.contracts.segmentation import write_leakage_report
from sonodiff.rule import run_rule
from sonodiff.segment.leakage import check_leakage


def main(smk):
    samples = dict(zip(smk.params.variants, smk.input.samples))
    report = check_leakage(smk.input.manifest, smk.input.augmented, samples, smk.params.sources)
    print(report, end="")
    write_leakage_report(smk.output[0], report)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
