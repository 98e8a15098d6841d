# Label-map augmentation for inference (Echo from noise, section 2.2).


rule augment_labels:
    input:
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        info=f"{RESULTS}/data/{{dataset}}/dataset.json",
    output:
        manifest=f"{RESULTS}/augment/{{dataset}}/manifest.csv",
    params:
        cfg=job_config,
    log:
        f"{RESULTS}/logs/augment_labels/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/augment_labels/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("data")
    script:
        "../scripts/augment_labels.py"


rule prepare:
    input:
        prepare_targets(),
    output:
        touch(f"{RESULTS}/prepare.done"),
    log:
        f"{RESULTS}/logs/prepare.log",
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    conda:
        env("data")
    shell:
        "echo prepared {input} > {log}"
