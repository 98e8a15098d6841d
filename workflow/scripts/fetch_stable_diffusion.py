"""Rule fetch_stable_diffusion (localrule): download the pretrained Stable Diffusion folder that
latent.pretrained names from the Hugging Face repository latent.pretrained_url (needs internet).

output: folder; params: repo.
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.rule import run_rule
from sonodiff.train.latent import fetch_stable_diffusion


def main(smk):
    fetch_stable_diffusion(smk.params.repo, smk.output.folder)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
