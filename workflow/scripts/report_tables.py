"""Rule report_tables: every table (paper layout and all numbers) as an HTML page for the report."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.report.tables_html import TABLE_TITLES, render_table_file
from sonodiff.rule import run_rule


def main(smk):
    for name in smk.params.tables:
        render_table_file(smk.input[f"{name}_csv"], smk.output[name], TABLE_TITLES.get(name, name),
                          md_path=smk.input[f"{name}_md"])


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
