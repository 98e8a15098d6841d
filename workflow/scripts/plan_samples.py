"""Rule plan_samples: write the sampling plan (every image, its seed and batch) of a dataset/variant.

input: labels (a list: the augmented label-map manifest, or empty for an unlabelled dataset or a
prompt-only set), classes (a list: the prepared manifest whose class column a latent model's
prompts come from, or empty);
output: plan; params: cfg (the resolved job config).
"""

import sonodiff_path  # noqa: F401  (first: puts sonodiff on sys.path where nothing else does)

from sonodiff.rule import run_rule
from sonodiff.sample import write_sampling_plan


def main(smk):
    labels = smk.input.labels[0] if len(smk.input.labels) else None
    classes = smk.input.classes[0] if len(getattr(smk.input, "classes", [])) else None
    write_sampling_plan(smk.params.cfg, labels, smk.output.plan, classes_from=classes)


run_rule(snakemake, main)  # noqa: F821 (snakemake is injected)
