# Sampling per dataset and variant: a plan written once, scattered over sample.shards jobs (GPU),
# gathered; and one reverse chain's snapshots for the report's fig. 3.


rule plan_samples:
    input:
        labels=sample_labels,
    output:
        plan=L("sample_plan"),
    params:
        cfg=config_of("sample"),
    log:
        log_of("plan_samples", "{dataset}", "{variant}"),
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("torch")
    script:
        "../scripts/plan_samples.py"


rule sample_shard:
    input:
        model=L("model"),
        plan=L("sample_plan"),
        sector=L("dataset_sector"),
        labels=sample_labels,
    output:
        manifest=L("shard_manifest"),
    wildcard_constraints:
        shard=r"\d+",
    params:
        cfg=config_of("sample"),
        shards=sample_shard_count,
    log:
        log_of("sample_shard", "{dataset}", "{variant}", "{shard}"),
    benchmark:
        benchmark_of("sample_shard", "{dataset}", "{variant}", "{shard}")
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
        plan=L("sample_plan"),
    output:
        manifest=L("samples_manifest"),
    params:
        cfg=config_of("sample"),
    log:
        log_of("gather_samples", "{dataset}", "{variant}"),
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("torch")
    script:
        "../scripts/gather_samples.py"


rule reverse_snapshots:
    input:
        model=L("model"),
        **prepared_files(),
    output:
        snapshots=L("snapshots"),
    params:
        cfg=config_of("sample"),
        device=config["device"],
        snapshots=8,
    log:
        log_of("reverse_snapshots", "{dataset}", "{variant}"),
    benchmark:
        benchmark_of("reverse_snapshots", "{dataset}", "{variant}")
    threads: 1
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["sample_runtime"],
        gpu=gpu_resources(),
    conda:
        env("torch")
    script:
        "../scripts/reverse_snapshots.py"
