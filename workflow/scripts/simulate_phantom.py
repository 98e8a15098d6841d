"""Rule simulate_phantom: write a physics-simulated phantom dataset in its real layout.

params.cfg is the resolved job config (``datasets.<name>.source.simulate`` says which phantom,
how many patients, mode, size, slices and seed); output[0] is the raw folder results/raw/{dataset}.
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.phantom import simulate_phantom
from sonodiff.rule import run_rule


def main(smk):
    simulate_phantom(smk.params.cfg, smk.output[0])


run_rule(snakemake, main)  # noqa: F821
