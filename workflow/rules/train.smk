# Diffusion-model training per dataset and variant (GPU; data-parallel with resources.gpus > 1).
# The job resumes from its newest valid checkpoint (results/models/{dataset}/{variant}/checkpoints/,
# not a declared output, so Snakemake keeps it), which is how cluster `retries` recover a
# preempted or timed-out job.


rule train_model:
    input:
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        info=f"{RESULTS}/data/{{dataset}}/dataset.json",
        sector=f"{RESULTS}/data/{{dataset}}/sector.png",
    output:
        model=f"{RESULTS}/models/{{dataset}}/{{variant}}/model.pt",
        log_csv=f"{RESULTS}/models/{{dataset}}/{{variant}}/train_log.csv",
    params:
        cfg=job_config,
    log:
        f"{RESULTS}/logs/train_model/{{dataset}}/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_model/{{dataset}}/{{variant}}.tsv"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["train_runtime"],
        gpu=gpu_resources(),
    retries: 2
    conda:
        env("torch")
    script:
        "../scripts/train.py"
