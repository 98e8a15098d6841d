"""Rule train_classifier: train the ResNet of one source for every seed; score the test sets.

snakemake.input:  manifest, info, sector (the prepared dataset); samples (zero or more sample
                  manifests of the source, with a class column); optional external_manifest,
                  external_info, external_sector (the external test set's prepared dataset)
snakemake.params: cfg (resolved config: classify, metrics, seed, device, dataset); optional
                  fraction (fraction of the train split the synthetic source's generator saw)
snakemake.output: record (classification record, JSON), scores (per-image scores, .npz)
snakemake.wildcards: source (real, real+synthetic_<variant>, synthetic_<variant>)
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.classify.train import run_classification
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.rule import run_rule


def main(smk):
    external = getattr(smk.input, "external_manifest", None)
    run_classification(
        dataset=PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector),
        source=smk.wildcards.source,
        samples=list(getattr(smk.input, "samples", [])),
        cfg=smk.params.cfg,
        record=smk.output.record,
        scores=smk.output.scores,
        external=PreparedDataset(external, smk.input.external_info, smk.input.external_sector) if external else None,
        fraction=getattr(smk.params, "fraction", None),
        threads=smk.threads,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
