"""Rule train_model: train one dataset/variant's diffusion model (resuming from its checkpoints).

input: manifest, info, sector (the prepared dataset); output: model, log_csv (written beside
the model); params: cfg (the resolved job config); resources: gpu (processes under torchrun).
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from pathlib import Path

import torch

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.rule import run_rule
from sonodiff.train import train_job


def main(smk):
    torch.set_num_threads(smk.threads)
    dataset = PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector)
    train_job(smk.params.cfg, dataset, smk.output.model, nproc=max(int(smk.resources.gpu), 1))
    if not Path(smk.output.log_csv).is_file():
        raise RuntimeError(f"training wrote no log at {smk.output.log_csv}")


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
