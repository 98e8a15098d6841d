"""Rule segmentation_table: the table in Echo from noise's table-1 layout and contour figures."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.report.segmentation_table import write_segmentation_table
from sonodiff.rule import run_rule
from sonodiff.segment.figures import segment_figures


def main(smk):
    write_segmentation_table(smk.input.metrics, smk.output.csv, smk.output.md, smk.output.tex,
                             bootstrap=smk.params.bootstrap)
    segment_figures(smk.params.layout)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
