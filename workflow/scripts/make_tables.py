"""Rule make_tables: tables 1-3 (fid, paired, physics) as CSV, Markdown and LaTeX."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.report.tables import make_tables
from sonodiff.rule import run_rule


def main(smk):
    outputs = {}
    for key, path in smk.output.items():
        table, fmt = key.rsplit("_", 1)
        outputs.setdefault(table, {})[fmt] = path
    make_tables(smk.input.metrics, smk.input.differences, smk.params.formats, smk.params.b_min, outputs)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
