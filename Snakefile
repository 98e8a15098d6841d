# sonodiff's workflow lives in workflow/Snakefile (the Snakemake workflow catalog's layout).
include: "workflow/Snakefile"


# An include keeps the rules but not the default target: this file's target is the workflow's.
rule default:
    default_target: True
    input:
        rules.all.input,
