"""Rule latent_figures: the latent models' samples per class and per conditioning mask (Freiche et al. figs. 3-4).

snakemake.input:  manifest, info, sector (the prepared dataset, with its class column),
                  prompt (one prompt-only samples manifest per variant), controlnet (one ControlNet
                  samples manifest per variant), both in the order of params.variants
snakemake.params: variants (names, e.g. [baseline, bmaps]), n_columns (samples per class and
                  variant; 4), n_masks (rows of the mask figure; 4), per_mask (samples per mask and
                  variant, at most; 3); the three counts are optional
snakemake.output: classes (PNG, fig. 3), masks (PNG, fig. 4)
snakemake.wildcards: dataset
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.report.latent_figures import render_latent_figures
from sonodiff.rule import run_rule


def main(smk):
    variants = list(smk.params.variants)
    render_latent_figures(
        dataset=smk.wildcards.dataset,
        prepared=PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector),
        prompt=list(zip(variants, smk.input.prompt)),
        controlnet=list(zip(variants, smk.input.controlnet)),
        outputs={"classes": smk.output.classes, "masks": smk.output.masks},
        n_columns=int(smk.params.get("n_columns", 4)),
        n_masks=int(smk.params.get("n_masks", 4)),
        per_mask=int(smk.params.get("per_mask", 3)),
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
