"""Rule train_model: train one dataset/variant's diffusion model (resuming from its checkpoints)."""

from pathlib import Path

import torch

from sonodiff.rule import run_rule
from sonodiff.train import train_job


def main(smk):
    torch.set_num_threads(smk.threads)
    out_dir = Path(smk.output.model).parent
    train_job(smk.params.cfg, Path(smk.input.manifest).parent, out_dir, nproc=max(int(smk.resources.gpu), 1))
    assert Path(smk.output.log_csv).is_file()


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
