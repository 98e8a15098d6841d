# Raw data (simulated phantoms or downloads) and prepared 2D datasets.


localrules:
    download,


rule simulate_phantom:
    output:
        directory(L("raw")),
    wildcard_constraints:
        dataset=one_of(SIMULATED),
    params:
        cfg=config_of("data", "split"),
    log:
        log_of("simulate_phantom", "{dataset}"),
    benchmark:
        benchmark_of("simulate_phantom", "{dataset}")
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
        directory(L("raw")),
    wildcard_constraints:
        dataset=one_of(FETCHED),
    params:
        cfg=config_of("data"),
        cache=L("downloads"),
    log:
        log_of("download", "{dataset}"),
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
        raw=L("raw"),
    output:
        **prepared_files(),
    params:
        cfg=config_of("data", "split"),
    log:
        log_of("prepare_dataset", "{dataset}"),
    benchmark:
        benchmark_of("prepare_dataset", "{dataset}")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("data")
    script:
        "../scripts/prepare_dataset.py"
