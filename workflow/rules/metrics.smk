# Metrics stage: pretrained weights (offline), real-set FID statistics, per-variant metrics, tables 1-3.

# Once weights are in place (fetched elsewhere, or metrics.weights set), delete
# results/metrics/weights.json: fetch_weights then reruns and every metric after it.

include: "metrics_helpers.smk"


rule fetch_weights:
    output:
        WEIGHTS_STATUS,
    localrule: True
    params:
        metrics=config["metrics"],
    log:
        f"{RESULTS}/logs/fetch_weights/fetch_weights.log",
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("metrics")
    script:
        "../scripts/fetch_weights.py"


rule real_fid_stats:
    input:
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        weights=WEIGHTS_STATUS,
    output:
        stats=f"{RESULTS}/metrics/{{dataset}}/real_fid_stats.npz",
    params:
        cfg=job_config,
    log:
        f"{RESULTS}/logs/real_fid_stats/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/real_fid_stats/{{dataset}}.tsv"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["runtime"],
        gpu=gpu_resources(),
    conda:
        env("metrics")
    script:
        "../scripts/real_fid_stats.py"


rule compute_metrics:
    input:
        samples=f"{RESULTS}/samples/{{dataset}}/{{variant}}/manifest.csv",
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        info=f"{RESULTS}/data/{{dataset}}/dataset.json",
        stats=f"{RESULTS}/metrics/{{dataset}}/real_fid_stats.npz",
        weights=WEIGHTS_STATUS,
        sector=prepared_sector,
    output:
        json=f"{RESULTS}/metrics/{{dataset}}/{{variant}}.json",
    params:
        cfg=job_config,
    log:
        f"{RESULTS}/logs/compute_metrics/{{dataset}}/{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/compute_metrics/{{dataset}}/{{variant}}.tsv"
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["runtime"],
        gpu=gpu_resources(),
    conda:
        env("metrics")
    script:
        "../scripts/compute_metrics.py"


rule make_tables:
    input:
        metrics=metrics_jsons(),
    output:
        **metrics_table_outputs(),
    params:
        formats=dataset_formats(),
        b_min=variant_b_min(),
    log:
        f"{RESULTS}/logs/make_tables/make_tables.log",
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("metrics")
    script:
        "../scripts/make_tables.py"
