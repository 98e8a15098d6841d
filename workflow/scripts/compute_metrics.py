"""Rule compute_metrics: FID, paired LPIPS/SSIM/PSNR and physics metrics of one dataset and variant."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

import torch

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.metrics.evaluate import compute_metrics
from sonodiff.rule import run_rule


def main(smk):
    torch.set_num_threads(smk.threads)
    compute_metrics(
        samples_manifest=smk.input.samples,
        dataset=PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector),
        real_stats=smk.input.stats,
        cfg=smk.params.cfg,
        out=smk.output.json,
        out_values=smk.output.values,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
