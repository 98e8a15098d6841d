"""Rule classification_table: AUC per training source, paired differences, Freiche et al.'s values.

snakemake.input:  records (classification records), scores (their score files, in the same order)
snakemake.params: bootstrap ({resamples: metrics.bootstrap, seed: the master seed})
snakemake.output: csv, md, tex
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.classify.evaluate import compare_sources
from sonodiff.report.classification_table import write_classification_table
from sonodiff.rule import run_rule


def main(smk):
    summaries = compare_sources(list(smk.input.records), list(smk.input.scores), bootstrap=smk.params.bootstrap)
    write_classification_table(summaries, smk.output.csv, smk.output.md, smk.output.tex)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
