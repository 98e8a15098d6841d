"""Rule provenance: resolved config, software versions, device and wall time per stage."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.report.provenance import write_provenance
from sonodiff.rule import run_rule


def main(smk):
    write_provenance(dict(smk.params.config), smk.params.benchmarks, smk.output.html, smk.output.json)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
