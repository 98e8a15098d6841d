# Sampling per dataset and variant: a plan written once, scattered over sample.shards jobs (GPU),
# gathered; and one reverse chain's snapshots for the report's fig. 3. A latent dataset's set is
# its ControlNet's (label map and prompt); its prompt-only sets are in latent.smk.


rule plan_samples:
    input:
        labels=sample_labels,
        classes=sample_classes,
    output:
        plan=L("sample_plan"),
    log:
        log_of("plan_samples", "{dataset}", "{variant}"),
    conda:
        env("torch")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=config_of("sample"),
    script:
        "../scripts/plan_samples.py"


rule sample_shard:
    input:
        model=sampling_model,
        plan=L("sample_plan"),
        sector=L("dataset_sector"),
        labels=sample_labels,
    output:
        manifest=L("shard_manifest"),
    log:
        log_of("sample_shard", "{dataset}", "{variant}", "{shard}"),
    benchmark:
        benchmark_of("sample_shard", "{dataset}", "{variant}", "{shard}")
    wildcard_constraints:
        shard=r"\d+",
    conda:
        env("torch")
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["sample_runtime"],
        gpu=gpu_resources(),
    params:
        cfg=config_of("sample"),
        shards=sample_shard_count,
    script:
        "../scripts/sample_shard.py"


rule gather_samples:
    input:
        shards=sample_shard_manifests,
        plan=L("sample_plan"),
    output:
        manifest=L("samples_manifest"),
    log:
        log_of("gather_samples", "{dataset}", "{variant}"),
    conda:
        env("torch")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=config_of("sample"),
    script:
        "../scripts/gather_samples.py"


rule reverse_snapshots:
    input:
        **prepared_files(),
        model=L("model"),
    output:
        snapshots=L("snapshots"),
    log:
        log_of("reverse_snapshots", "{dataset}", "{variant}"),
    benchmark:
        benchmark_of("reverse_snapshots", "{dataset}", "{variant}")
    conda:
        env("torch")
    threads: 1
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["sample_runtime"],
        gpu=gpu_resources(),
    params:
        cfg=config_of("sample"),
        device=config["device"],
        snapshots=8,
    script:
        "../scripts/reverse_snapshots.py"
