# The HTML report: the papers' figures from our runs, sample grids, training curves, the depth
# profile, segmentation examples, every table, and the run's provenance. `snakemake --report`
# gathers every output wrapped in report(); the targets are report_targets() (report_helpers.smk).
# The report reads files only: prepared data, samples, snapshots, training logs, metrics, tables.


include: "report_helpers.smk"


rule paper_figures:
    input:
        **prepared_files(),
    output:
        bmaps=paper_figure("bmaps", "bmaps.rst", "Fig. 1 B-maps across time"),
        forward=paper_figure("forward", "forward.rst", "Fig. 2 forward process"),
    log:
        log_of("paper_figures", "{dataset}"),
    benchmark:
        benchmark_of("paper_figures", "{dataset}")
    conda:
        env("torch")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        cfg=bmaps_job_config,
    script:
        "../scripts/paper_figures.py"


rule reverse_figure:
    input:
        snapshots=snapshots_per_variant,
        info=L("dataset_info"),
    output:
        paper_figure("reverse", "reverse.rst", "Fig. 3 reverse process"),
    log:
        log_of("reverse_figure", "{dataset}"),
    conda:
        env("report")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        variants=VARIANTS,
    script:
        "../scripts/reverse_figure.py"


rule report_figures:
    input:
        **prepared_files(),
        samples=samples_per_variant,
        logs=train_logs,
        metrics=metrics_per_variant,
    output:
        qualitative=paper_figure("qualitative", "qualitative.rst", "Fig. 4 qualitative comparison"),
        training=for_report(
            L("figure", kind="training", name="{dataset}"),
            "training.rst",
            CAT_TRAINING,
            labels={"dataset": "{dataset}"},
        ),
        depth_profile=for_report(
            L("figure", kind="depth_profile", name="{dataset}"),
            "depth_profile.rst",
            CAT_PHYSICS,
            labels={"dataset": "{dataset}"},
        ),
        samples=sample_grid_outputs(),
    log:
        log_of("report_figures", "{dataset}"),
    benchmark:
        benchmark_of("report_figures", "{dataset}")
    conda:
        env("report")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        variants=VARIANTS,
    script:
        "../scripts/report_figures.py"


rule report_tables:
    input:
        **table_inputs(),
    output:
        **table_outputs(),
    log:
        log_of("report_tables"),
    conda:
        env("report")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        tables=REPORT_TABLES,
    script:
        "../scripts/report_tables.py"


rule front_page:
    input:
        differences=[L("metrics_differences", dataset=d) for d in DATASETS],
        figures=[L("figure", kind="depth_profile", name=d) for d in DATASETS],
        segmentation=front_page_segmentation(),
    output:
        **verdict_tables(),
        html=L("front_page"),
    log:
        log_of("front_page"),
    conda:
        env("report")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        datasets=DATASETS,
    script:
        "../scripts/front_page.py"


rule provenance:
    input:
        figures=figure_targets(),
        tables=[L("report_table", name=t) for t in REPORT_TABLES],
        segment=segment_examples(),
    output:
        html=for_report(L("provenance", fmt="html"), "provenance.rst", CAT_PROVENANCE),
        json=L("provenance", fmt="json"),
    log:
        log_of("provenance"),
    conda:
        env("report")
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        config=config,
        benchmarks=L("benchmarks"),
    script:
        "../scripts/provenance.py"
