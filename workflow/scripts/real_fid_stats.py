"""Rule real_fid_stats: Inception statistics of the real validation images (npz)."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

import torch

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.metrics.evaluate import write_real_fid_stats
from sonodiff.rule import run_rule


def main(smk):
    torch.set_num_threads(smk.threads)
    dataset = PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector)
    write_real_fid_stats(dataset, smk.params.cfg, smk.output.stats)


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
