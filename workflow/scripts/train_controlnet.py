"""Rule train_controlnet: the ControlNet of a latent dataset's variant on its frozen prompt model.

input: manifest, info, sector (the prepared dataset), base (the variant's latent model);
output: model, log_csv; params: cfg (the resolved job config).
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from pathlib import Path

import torch

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.rule import run_rule
from sonodiff.train.latent import train_controlnet


def main(smk):
    torch.set_num_threads(smk.threads)
    dataset = PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector)
    train_controlnet(smk.params.cfg, dataset, smk.input.base, smk.output.model)
    if not Path(smk.output.log_csv).is_file():
        raise RuntimeError(f"training wrote no log at {smk.output.log_csv}")


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
