"""Rule export_model: one dataset/variant's model as a shareable folder with its model card.

input: model, train_log, info (the prepared dataset's description), sector, metrics (the metrics record);
output: folder (the exported model folder); params: cfg (the job config: its data and sample sections).
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

import torch

from sonodiff.export.model import export_model
from sonodiff.rule import run_rule


def main(smk):
    torch.set_num_threads(smk.threads)
    export_model(
        model_path=smk.input.model,
        folder=smk.output.folder,
        dataset_info_path=smk.input.info,
        metrics_record_path=smk.input.metrics,
        train_log_path=smk.input.train_log,
        cfg=smk.params.cfg,
        sector_path=smk.input.sector,
    )


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
