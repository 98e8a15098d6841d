"""Rule compute_metrics: FID, paired LPIPS/SSIM/PSNR and physics metrics of one dataset and variant."""

import torch

from sonodiff.metrics.evaluate import compute_metrics
from sonodiff.rule import run_rule


def main(smk):
    torch.set_num_threads(smk.threads)
    compute_metrics(
        samples_manifest=smk.input.samples,
        dataset_manifest=smk.input.manifest,
        dataset_json=smk.input.info,
        sector_png=smk.input.sector,
        real_stats=smk.input.stats,
        cfg=smk.params.cfg,
        out=smk.output.json,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
