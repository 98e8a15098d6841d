# Diffusion-model training per dataset and variant (GPU; data-parallel with resources.gpus > 1).
# The job resumes from its newest valid checkpoint (the checkpoints folder beside model.pt, not a
# declared output, so Snakemake keeps it), which is how cluster `retries` recover a preempted or
# timed-out job.


rule train_model:
    input:
        **prepared_files(),
    output:
        model=L("model"),
        log_csv=L("train_log"),
    log:
        log_of("train_model", "{dataset}", "{variant}"),
    benchmark:
        benchmark_of("train_model", "{dataset}", "{variant}")
    wildcard_constraints:
        dataset=one_of(PIXEL),
    retries: 2
    conda:
        env("torch")
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["train_runtime"],
        gpu=gpu_resources(),
    params:
        cfg=config_of("data", "diffusion", "model", "train"),
    script:
        "../scripts/train.py"
