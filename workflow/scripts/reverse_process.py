"""Rule reverse_process: snapshots along the reverse chain of each variant's model (fig. 3)."""

from pathlib import Path

from sonodiff.report.paper_figures import render_reverse_from_files
from sonodiff.rule import run_rule


def main(smk):
    render_reverse_from_files(
        models=dict(zip(smk.params.variants, smk.input.models)),
        data_dir=Path(smk.input.info).parent,
        out=smk.output[0],
        dataset=smk.wildcards.dataset,
        num_snapshots=int(smk.params.snapshots),
        device=smk.params.device,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
