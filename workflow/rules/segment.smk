# Downstream segmentation check (Echo from noise, section 2.2 and table 1): a MONAI UNet trained on
# each configured source (real, synthetic_<variant>, real+synthetic_<variant>), one job per source
# training every seed of segment.seeds in turn, and tested on the real test split, after a leakage
# guard; then the table in the paper's layout (patient-level intervals, paired rows) and contour figures.


include: "segment_helpers.smk"


rule check_leakage:
    input:
        manifest=prepared("{dataset}"),
        augmented=labelmaps("{dataset}"),
        samples=dataset_samples,
    output:
        L("leakage_report"),
    params:
        variants=dataset_sample_variants,
        sources=dataset_sources,
    log:
        log_of("check_leakage", "{dataset}"),
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("data")
    script:
        "../scripts/check_leakage.py"


rule train_segmenter:
    input:
        **prepared_files(),
        leakage_ok=L("leakage_report"),
        samples=source_samples,
    output:
        metrics=L("segment_record"),
        model=L("segment_model"),
        predictions=L("segment_predictions"),
    wildcard_constraints:
        source=one_of(sorted({s for _, s in segment_runs()})),
    params:
        cfg=config_of("segment"),
        variants=source_sample_variants,
    log:
        log_of("train_segmenter", "{dataset}", "{source}"),
    benchmark:
        benchmark_of("train_segmenter", "{dataset}", "{source}")
    threads: config["resources"]["threads"]
    resources:
        gpu=gpu_resources(),
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["train_runtime"],
    conda:
        env("torch")
    script:
        "../scripts/train_segmenter.py"


rule segmentation_table:
    input:
        metrics=[L("segment_record", dataset=d, source=s) for d, s in segment_runs()],
        predictions=[L("segment_predictions", dataset=d, source=s) for d, s in segment_runs()],
        manifests=[prepared(d) for d in SEGMENT_DATASETS],
    output:
        **segmentation_tables(),
        figures=segment_figures(),
    params:
        bootstrap=table_bootstrap(),
        layout=segment_layout(),
    log:
        log_of("segmentation_table"),
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("report")
    script:
        "../scripts/segmentation_table.py"
