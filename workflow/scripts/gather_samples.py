"""Rule gather_samples: merge the shards into the samples manifest, images/ and config.yaml."""

from pathlib import Path

from sonodiff.rule import run_rule
from sonodiff.sample import gather, sampling_jobs


def main(smk):
    cfg = smk.params.cfg
    labels = smk.input.labels[0] if len(smk.input.labels) else None
    expected = sampling_jobs(cfg, labels)["sample_id"]
    gather(cfg, list(smk.input.shards), Path(smk.output.manifest).parent, expected=expected)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
