"""Rule download: fetch a dataset's raw files (url + sha256, or a local archive/folder)."""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.data.download import fetch_source
from sonodiff.rule import run_rule


def main(smk):
    cfg = smk.params.cfg
    fetch_source(
        cfg["data"]["source"],
        target=smk.output[0],
        cache=smk.params.cache,
        where=f"config key datasets.{cfg['dataset']}.source",
    )


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
