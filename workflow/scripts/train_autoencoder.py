"""Rule train_autoencoder: train a latent dataset's tiny autoencoder (none with a pretrained folder).

input: manifest, info, sector (the prepared dataset); output: model (a model file of kind
autoencoder); params: cfg (the resolved job config).
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

import torch

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.device import resolve_device
from sonodiff.rule import run_rule
from sonodiff.train.latent import train_autoencoder


def main(smk):
    torch.set_num_threads(smk.threads)
    dataset = PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector)
    train_autoencoder(smk.params.cfg, dataset, smk.output.model, device=resolve_device(smk.params.cfg["device"]))


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
