"""Rule gather_samples: merge the shards into the samples manifest, images/ and config.yaml.

input: shards (the shard manifests), plan; output: manifest (the set's); params: cfg.
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.rule import run_rule
from sonodiff.sample import gather


def main(smk):
    gather(smk.params.cfg, list(smk.input.shards), smk.input.plan, smk.output.manifest)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
