"""Rules train_latent_model and train_fraction_model: a latent dataset's prompt-conditioned UNet
(resuming from its checkpoints), on all train patients or on params.fraction of them.

input: manifest, info, sector (the prepared dataset), autoencoder (a list: the trained
autoencoder, or empty with a pretrained folder); output: model, log_csv; params: cfg, fraction.
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from pathlib import Path

import torch

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.rule import run_rule
from sonodiff.train.latent import train_latent


def main(smk):
    torch.set_num_threads(smk.threads)
    dataset = PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector)
    cfg = smk.params.cfg
    autoencoder = None if cfg["latent"]["pretrained"] else smk.input.autoencoder[0]
    train_latent(cfg, dataset, smk.output.model, autoencoder=autoencoder, fraction=smk.params.fraction)
    if not Path(smk.output.log_csv).is_file():
        raise RuntimeError(f"training wrote no log at {smk.output.log_csv}")


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
