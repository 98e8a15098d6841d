# Raw data (simulated phantoms or downloads) and prepared 2D datasets.


localrules:
    download,


rule simulate_phantom:
    output:
        directory(L("raw")),
    log:
        log_of("simulate_phantom", "{dataset}"),
    benchmark:
        benchmark_of("simulate_phantom", "{dataset}")
    wildcard_constraints:
        dataset=one_of(SIMULATED),
    conda:
        env("data")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=config_of("data", "split"),
    script:
        "../scripts/simulate_phantom.py"


rule download:
    output:
        directory(L("raw")),
    log:
        log_of("download", "{dataset}"),
    wildcard_constraints:
        dataset=one_of(FETCHED),
    retries: 3
    conda:
        env("data")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=config_of("data"),
        cache=L("downloads"),
    script:
        "../scripts/download.py"


rule prepare_dataset:
    input:
        raw=L("raw"),
    output:
        **prepared_files(),
    log:
        log_of("prepare_dataset", "{dataset}"),
    benchmark:
        benchmark_of("prepare_dataset", "{dataset}")
    conda:
        env("data")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=config_of("data", "split"),
    script:
        "../scripts/prepare_dataset.py"
