# Label-map augmentation for inference (Echo from noise, section 2.2).


rule augment_labels:
    input:
        **prepared_files(),
    output:
        manifest=labelmaps("{dataset}"),
    log:
        log_of("augment_labels", "{dataset}"),
    benchmark:
        benchmark_of("augment_labels", "{dataset}")
    conda:
        env("data")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=config_of("augment"),
    script:
        "../scripts/augment_labels.py"


rule prepare:
    input:
        prepare_targets(),
    output:
        touch(L("prepare_done")),
    log:
        log_of("prepare"),
    conda:
        env("data")
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    shell:
        "echo prepared {input} > {log}"
