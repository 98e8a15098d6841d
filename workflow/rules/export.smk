# Export stage: every trained model as a shareable folder (results/export/models/{d}/{v}/:
# model.safetensors, depth.safetensors, config.json and a model card), loadable with safetensors
# alone (sonodiff.contracts.model_folder). The card reports the model's metrics, so the folder
# waits for compute_metrics. A latent dataset exports its ControlNet (which holds the prompt
# model, autoencoder and text encoder it runs on: the model of its sample set and metrics).


rule export_model:
    input:
        model=exported_model,
        train_log=exported_train_log,
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
