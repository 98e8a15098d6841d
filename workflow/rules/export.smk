# Export stage: every trained model as a shareable folder (results/export/models/{d}/{v}/:
# model.safetensors, depth.safetensors, config.json and a model card), loadable with safetensors
# alone (sonodiff.contracts.model_folder). The card reports the model's metrics, so the folder
# waits for compute_metrics.


rule export_model:
    input:
        model=L("model"),
        train_log=L("train_log"),
        info=L("dataset_info"),
        sector=L("dataset_sector"),
        metrics=L("metrics_record"),
    output:
        folder=directory(L("export_dir")),
    log:
        log_of("export_model", "{dataset}", "{variant}"),
    conda:
        env("torch")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=config_of("data", "sample", descriptive=True),
    script:
        "../scripts/export_model.py"
