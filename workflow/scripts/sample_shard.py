"""Rule sample_shard: sample one shard of a dataset/variant's synthetic images from its plan.

input: model, plan (labels only as a dependency: the plan names the label maps), sector (the
prepared dataset's sector mask, applied with sample.mask_sector); output: manifest (the
shard's); params: cfg, shards; wildcards: shard.
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

import torch

from sonodiff.rule import run_rule
from sonodiff.sample import sample_shard


def main(smk):
    torch.set_num_threads(smk.threads)
    sample_shard(smk.params.cfg, smk.input.model, smk.input.plan, smk.output.manifest,
                 shard=int(smk.wildcards.shard), shards=int(smk.params.shards), sector=smk.input.sector)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
