"""Rule sample_shard: sample one shard of a dataset/variant's synthetic images."""

from pathlib import Path

import torch

from sonodiff.rule import run_rule
from sonodiff.sample import sample_shard, sampling_jobs


def main(smk):
    torch.set_num_threads(smk.threads)
    cfg = smk.params.cfg
    labels = smk.input.get("labels")
    jobs = sampling_jobs(cfg, labels)
    sample_shard(cfg, smk.input.model, jobs, Path(smk.output.manifest).parent,
                 shard=int(smk.wildcards.shard), shards=int(smk.params.shards))


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
