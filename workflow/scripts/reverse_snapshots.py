"""Rule reverse_snapshots: x_t along one reverse chain of a dataset/variant's model (fig. 3).

input: model, manifest, info, sector (the prepared dataset; x_0 is black outside the sector with
the model's sample.mask_sector); output: snapshots; params: device,
snapshots (the number of frames).
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.rule import run_rule
from sonodiff.sample import write_reverse_snapshots


def main(smk):
    dataset = PreparedDataset(smk.input.manifest, smk.input.info, smk.input.sector)
    write_reverse_snapshots(smk.input.model, dataset, smk.output.snapshots,
                            num_snapshots=int(smk.params.snapshots), device=smk.params.device, cfg=smk.params.cfg)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
