"""Rule report_tables: every table CSV as an HTML page for the report."""

from sonodiff.report.tables_html import TABLE_TITLES, render_table_file
from sonodiff.rule import run_rule


def main(smk):
    for name in smk.output.keys():
        render_table_file(smk.input[name], smk.output[name], TABLE_TITLES.get(name, name))


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
