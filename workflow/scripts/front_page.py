"""Rule front_page: the verdict table (paired differences per dataset) and the depth-profile figures."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.report.front_page import write_front_page
from sonodiff.rule import run_rule


def main(smk):
    write_front_page(
        differences_paths=smk.input.differences,
        figures=dict(zip(smk.params.datasets, smk.input.figures)),
        out_html=smk.output.html,
        tables={fmt: smk.output[fmt] for fmt in ("csv", "md", "tex")},
        segmentation_csv=smk.input.segmentation[0] if smk.input.segmentation else None,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
