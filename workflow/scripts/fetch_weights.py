"""Rule fetch_weights (localrule): download the metric networks' weights ahead of a cluster run.

Missing files go to ``metrics.weights.<name>`` or the torch hub cache. Without internet this
fails with the file names and where to put them (``missing_weights: fail``), or writes a status
file saying what is missing (``na``).
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.contracts.metrics_record import write_weights_status
from sonodiff.metrics.weights import fetch_weights
from sonodiff.rule import run_rule


def main(smk):
    write_weights_status(smk.output[0], fetch_weights(smk.params.metrics))


run_rule(snakemake, main)  # noqa: F821 (injected by Snakemake)
