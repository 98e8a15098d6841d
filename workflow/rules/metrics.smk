# Metrics stage: pretrained weights (offline), real-set FID statistics, per-variant metrics, tables 1-3.

# Once weights are in place (fetched elsewhere, or metrics.weights set), delete the weights status
# file (results/metrics/weights.json): fetch_weights then reruns and every metric after it.


include: "metrics_helpers.smk"


rule fetch_weights:
    output:
        L("weights_status"),
    log:
        log_of("fetch_weights", "fetch_weights"),
    localrule: True
    conda:
        env("metrics")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        metrics=weights_config(),
    script:
        "../scripts/fetch_weights.py"


rule real_fid_stats:
    input:
        **prepared_files(),
        weights=L("weights_status"),
    output:
        stats=L("real_fid_stats"),
    log:
        log_of("real_fid_stats", "{dataset}"),
    benchmark:
        benchmark_of("real_fid_stats", "{dataset}")
    conda:
        env("metrics")
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["runtime"],
        gpu=gpu_resources(),
    params:
        cfg=config_of("metrics"),
    script:
        "../scripts/real_fid_stats.py"


rule compute_metrics:
    input:
        **prepared_files(),
        samples=L("samples_manifest"),
        stats=L("real_fid_stats"),
        weights=L("weights_status"),
    output:
        json=L("metrics_record"),
        values=L("metrics_values"),
    log:
        log_of("compute_metrics", "{dataset}", "{variant}"),
    benchmark:
        benchmark_of("compute_metrics", "{dataset}", "{variant}")
    conda:
        env("metrics")
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["runtime"],
        gpu=gpu_resources(),
    params:
        cfg=config_of("metrics"),
    script:
        "../scripts/compute_metrics.py"


rule compare_variants:
    input:
        values=[L("metrics_values", variant=v) for v in VARIANTS],
    output:
        L("metrics_differences"),
    log:
        log_of("compare_variants", "{dataset}"),
    benchmark:
        benchmark_of("compare_variants", "{dataset}")
    conda:
        env("metrics")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=config_of("metrics"),
        variants=VARIANTS,
        reference=dataset_reference_variant,
    script:
        "../scripts/compare_variants.py"


rule make_tables:
    input:
        metrics=metrics_records(),
        differences=[L("metrics_differences", dataset=d) for d in DATASETS],
    output:
        **metrics_table_outputs(),
    log:
        log_of("make_tables", "make_tables"),
    conda:
        env("metrics")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        formats=dataset_formats(),
        b_min=variants_b_min(),
    script:
        "../scripts/make_tables.py"
