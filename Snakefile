# sonodiff: synthetic ultrasound with B-map diffusion models, from data to report.
# Table of contents only: rules live in workflow/rules/*.smk, helpers in common.smk.

from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless a config is given with --configfile (which then replaces it
# rather than being merged into it, so config/paper.yaml does not inherit the phantoms).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/augment.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
        metrics_targets(),
        segment_targets(),
        report_targets(),
