# The latent family (Freiche et al. 2025) per latent dataset {dataset} and variant {variant}:
# the tiny autoencoder (none with a pretrained Stable Diffusion folder), the prompt-conditioned
# latent UNet (train_latent_model, the variant's model.pt), the ControlNet on it (whose samples
# are the variant's sample set, sample.smk), the generator of classify.fraction of the train
# patients, and the prompt-only sample sets of both ({generator}: prompt | fraction).


if config["latent"]["pretrained"] and config["latent"]["pretrained_url"]:

    rule fetch_stable_diffusion:
        output:
            folder=directory(config["latent"]["pretrained"]),
        log:
            log_of("fetch_stable_diffusion", "weights"),
        localrule: True
        conda:
            env("torch")
        threads: 1
        resources:
            mem_mb=config["resources"]["cpu_mem_mb"],
            runtime=config["resources"]["runtime"],
        params:
            repo=config["latent"]["pretrained_url"],
        script:
            "../scripts/fetch_stable_diffusion.py"


rule train_autoencoder:
    input:
        **prepared_files(),
    output:
        model=L("autoencoder"),
    log:
        log_of("train_autoencoder", "{dataset}"),
    benchmark:
        benchmark_of("train_autoencoder", "{dataset}")
    wildcard_constraints:
        dataset=one_of(LATENT),
    conda:
        env("torch")
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["train_runtime"],
        gpu=min(gpu_resources(), 1),
    params:
        cfg=config_of("data", "latent"),
    script:
        "../scripts/train_autoencoder.py"


rule train_latent_model:
    input:
        **prepared_files(),
        autoencoder=latent_components,
    output:
        model=L("model"),
        log_csv=L("train_log"),
    log:
        log_of("train_latent_model", "{dataset}", "{variant}"),
    benchmark:
        benchmark_of("train_latent_model", "{dataset}", "{variant}")
    wildcard_constraints:
        dataset=one_of(LATENT),
    retries: 2
    conda:
        env("torch")
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["train_runtime"],
        gpu=min(gpu_resources(), 1),
    params:
        cfg=config_of("data", "diffusion", "train", "latent"),
        fraction=None,
    script:
        "../scripts/train_latent.py"


rule train_fraction_model:
    input:
        **prepared_files(),
        autoencoder=latent_components,
    output:
        model=L("fraction_model"),
        log_csv=L("fraction_log"),
    log:
        log_of("train_fraction_model", "{dataset}", "{variant}"),
    benchmark:
        benchmark_of("train_fraction_model", "{dataset}", "{variant}")
    wildcard_constraints:
        dataset=one_of(LATENT),
    retries: 2
    conda:
        env("torch")
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["train_runtime"],
        gpu=min(gpu_resources(), 1),
    params:
        cfg=config_of("data", "diffusion", "train", "latent", "classify"),
        fraction=classify_fraction,
    script:
        "../scripts/train_latent.py"


rule train_controlnet:
    input:
        **prepared_files(),
        base=L("model"),
    output:
        model=L("controlnet_model"),
        log_csv=L("controlnet_log"),
    log:
        log_of("train_controlnet", "{dataset}", "{variant}"),
    benchmark:
        benchmark_of("train_controlnet", "{dataset}", "{variant}")
    wildcard_constraints:
        dataset=one_of(LATENT),
    retries: 2
    conda:
        env("torch")
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["train_runtime"],
        gpu=min(gpu_resources(), 1),
    params:
        cfg=config_of("data", "diffusion", "train", "latent"),
    script:
        "../scripts/train_controlnet.py"


rule plan_prompt_samples:
    input:
        labels=[],
        classes=[prepared("{dataset}")],
    output:
        plan=L("prompt_plan"),
    log:
        log_of("plan_prompt_samples", "{dataset}", "{variant}", "{generator}"),
    wildcard_constraints:
        dataset=one_of(LATENT),
        generator=GENERATORS,
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


rule sample_prompt_shard:
    input:
        model=prompt_model,
        plan=L("prompt_plan"),
        sector=L("dataset_sector"),
    output:
        manifest=L("prompt_shard_manifest"),
    log:
        log_of("sample_prompt_shard", "{dataset}", "{variant}", "{generator}", "{shard}"),
    benchmark:
        benchmark_of("sample_prompt_shard", "{dataset}", "{variant}", "{generator}", "{shard}")
    wildcard_constraints:
        dataset=one_of(LATENT),
        generator=GENERATORS,
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


rule gather_prompt_samples:
    input:
        shards=prompt_shard_manifests,
        plan=L("prompt_plan"),
    output:
        manifest=L("prompt_samples_manifest"),
    log:
        log_of("gather_prompt_samples", "{dataset}", "{variant}", "{generator}"),
    wildcard_constraints:
        dataset=one_of(LATENT),
        generator=GENERATORS,
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


rule mask_fidelity:
    input:
        **prepared_files(),
        samples=L("samples_manifest"),
        segmenter=L("segment_model", source="real"),
        reference=L("segment_record", source="real"),
    output:
        record=L("fidelity_record"),
        figure=report(
            L("figure", kind="mask_fidelity", name="{dataset}/{variant}"),
            caption="../report/mask_fidelity.rst",
            category="5. Segmentation",
            labels={"dataset": "{dataset}", "variant": "{variant}"},
        ),
    log:
        log_of("mask_fidelity", "{dataset}", "{variant}"),
    wildcard_constraints:
        dataset=one_of(LATENT),
    conda:
        env("torch")
    threads: config["resources"]["threads"]
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=config_of("metrics", "segment"),
    script:
        "../scripts/mask_fidelity.py"


rule latent_figures:
    input:
        **prepared_files(),
        prompt=prompt_sets_per_variant,
        controlnet=samples_per_variant,
    output:
        classes=report(
            L("figure", kind="latent_classes", name="{dataset}"),
            caption="../report/latent_classes.rst",
            category="1. Paper figures",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Freiche et al. fig. 3"},
        ),
        masks=report(
            L("figure", kind="latent_masks", name="{dataset}"),
            caption="../report/latent_masks.rst",
            category="1. Paper figures",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Freiche et al. fig. 4"},
        ),
    log:
        log_of("latent_figures", "{dataset}"),
    wildcard_constraints:
        dataset=one_of(LATENT),
    conda:
        env("torch")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        variants=VARIANTS,
    script:
        "../scripts/latent_figures.py"
