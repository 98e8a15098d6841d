# Downstream segmentation check (Echo from noise, section 2.2 and table 1): a MONAI UNet trained on
# each configured source (real, synthetic_<variant>, real+synthetic_<variant>), one job per source
# training every seed of segment.seeds in turn, and tested on the real test split, after a leakage
# guard; then the table in the paper's layout (patient-level intervals, paired rows) and contour figures.
# Also each real and synthetic training set as an nnU-Net v2 raw dataset (export_nnunet, docs/nnunet.md).


include: "segment_helpers.smk"


rule check_leakage:
    input:
        manifest=prepared("{dataset}"),
        augmented=labelmaps("{dataset}"),
        samples=dataset_samples,
    output:
        L("leakage_report"),
    log:
        log_of("check_leakage", "{dataset}"),
    conda:
        env("data")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        variants=dataset_sample_variants,
        sources=dataset_sources,
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
    log:
        log_of("train_segmenter", "{dataset}", "{source}"),
    benchmark:
        benchmark_of("train_segmenter", "{dataset}", "{source}")
    wildcard_constraints:
        source=one_of(sorted({s for _, s in segment_runs()})),
    conda:
        env("torch")
    threads: config["resources"]["threads"]
    resources:
        gpu=gpu_resources(),
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["train_runtime"],
    params:
        cfg=config_of("segment"),
        variants=source_sample_variants,
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
    log:
        log_of("segmentation_table"),
    conda:
        env("report")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        bootstrap=table_bootstrap(),
        layout=segment_layout(),
    script:
        "../scripts/segmentation_table.py"


rule export_nnunet:
    input:
        **prepared_files(),
        leakage_ok=L("leakage_report"),
        samples=nnunet_samples,
    output:
        directory(L("nnunet_dataset")),
    log:
        log_of("export_nnunet", "Dataset{nnunet_id}_{dataset}_{source}"),
    wildcard_constraints:
        nnunet_id=r"\d{3}",
        dataset=one_of(SEGMENT_DATASETS),
        source=one_of(NNUNET_SOURCES),
    conda:
        env("data")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=config_of("segment"),
        variants=source_sample_variants,
    script:
        "../scripts/export_nnunet.py"
