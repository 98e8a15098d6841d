"""Rule mask_fidelity: segment a ControlNet sample set with the real-data segmenter, Dice vs its masks.

snakemake.input:  manifest, info, sector (the prepared dataset), samples (the ControlNet samples
                  manifest), segmenter (segment/{d}/real/model.pt), reference (optional: the real
                  segmenter's segmentation record, segment/{d}/real/metrics.json)
snakemake.params: cfg (resolved config: dataset, variant, seed, device, metrics.bootstrap,
                  segment.batch_size), n_examples (optional, rows of examples in the figure; 6)
snakemake.output: record (the mask-fidelity JSON), figure (PNG)
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.rule import run_rule
from sonodiff.segment.fidelity import run_mask_fidelity


def main(smk):
    run_mask_fidelity(
        dataset=PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector),
        samples=smk.input.samples,
        segmenter=smk.input.segmenter,
        cfg=smk.params.cfg,
        record=smk.output.record,
        figure_png=smk.output.figure,
        reference=smk.input.get("reference"),
        threads=smk.threads,
        n_examples=int(smk.params.get("n_examples", 6)),
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
