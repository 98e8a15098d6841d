# Sampling per dataset and variant, scattered over sample.shards jobs (GPU) and gathered.


rule sample_shard:
    input:
        unpack(sample_inputs),
    output:
        manifest=f"{RESULTS}/samples/{{dataset}}/{{variant}}/shards/{{shard}}/manifest.csv",
    wildcard_constraints:
        shard=r"\d+",
    params:
        cfg=job_config,
        shards=sample_shard_count,
    log:
        f"{RESULTS}/logs/sample_shard/{{dataset}}/{{variant}}/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample_shard/{{dataset}}/{{variant}}/{{shard}}.tsv"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["sample_runtime"],
        gpu=gpu_resources(),
    conda:
        env("torch")
    script:
        "../scripts/sample_shard.py"


rule gather_samples:
    input:
        shards=sample_shard_manifests,
        labels=sample_labels,
    output:
        manifest=f"{RESULTS}/samples/{{dataset}}/{{variant}}/manifest.csv",
    params:
        cfg=job_config,
    log:
        f"{RESULTS}/logs/gather_samples/{{dataset}}/{{variant}}.log",
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("torch")
    script:
        "../scripts/gather_samples.py"
