# The classification check of Freiche et al. 2025 per latent dataset {dataset} and training source
# {source}: real, real+synthetic_<variant> (the variant's prompt-only images added), and
# synthetic_<variant> (only the images of the generator trained on classify.fraction of the train
# patients); AUC on the real test split (and classify.external), then one table.


rule train_classifier:
    input:
        **prepared_files(),
        **external_test_set(),
        samples=classifier_samples,
    output:
        record=L("classify_record"),
        scores=L("classify_scores"),
    log:
        log_of("train_classifier", "{dataset}", "{source}"),
    benchmark:
        benchmark_of("train_classifier", "{dataset}", "{source}")
    wildcard_constraints:
        dataset=one_of(LATENT),
        source=CLASSIFY_SOURCE,
    conda:
        env("torch")
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["train_runtime"],
        gpu=min(gpu_resources(), 1),
    params:
        cfg=config_of("classify", "metrics"),
        fraction=classifier_fraction,
    script:
        "../scripts/train_classifier.py"


rule classification_table:
    input:
        records=[L("classify_record", dataset=d, source=s) for d, s in classify_runs()],
        scores=[L("classify_scores", dataset=d, source=s) for d, s in classify_runs()],
    output:
        **{fmt: L("table", name="classification", fmt=fmt) for fmt in TABLE_FORMATS},
    log:
        log_of("classification_table", "all"),
    conda:
        env("torch")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        bootstrap={"resamples": config["metrics"]["bootstrap"], "seed": config["seed"]},
    script:
        "../scripts/classification_table.py"
