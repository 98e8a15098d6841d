# Raw data (simulated phantoms or downloads) and prepared 2D datasets.


localrules:
    download,


rule simulate_phantom:
    output:
        directory(f"{RESULTS}/raw/{{dataset}}"),
    wildcard_constraints:
        dataset=one_of(SIMULATED),
    params:
        cfg=job_config,
    log:
        f"{RESULTS}/logs/simulate_phantom/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/simulate_phantom/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("data")
    script:
        "../scripts/simulate_phantom.py"


rule download:
    output:
        directory(f"{RESULTS}/raw/{{dataset}}"),
    wildcard_constraints:
        dataset=one_of(FETCHED),
    params:
        cfg=job_config,
        cache=f"{RESULTS}/downloads",
    log:
        f"{RESULTS}/logs/download/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    retries: 3
    conda:
        env("data")
    script:
        "../scripts/download.py"


rule prepare_dataset:
    input:
        raw=f"{RESULTS}/raw/{{dataset}}",
    output:
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        info=f"{RESULTS}/data/{{dataset}}/dataset.json",
        sector=f"{RESULTS}/data/{{dataset}}/sector.png",
    params:
        cfg=job_config,
    log:
        f"{RESULTS}/logs/prepare_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_dataset/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("data")
    script:
        "../scripts/prepare_dataset.py"
