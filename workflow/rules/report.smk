# The HTML report: the papers' figures from our runs, sample grids, training curves, the depth
# profile, segmentation examples, every table, and the run's provenance. `snakemake --report`
# gathers every output wrapped in report(); the targets are report_targets() (report_helpers.smk).


include: "report_helpers.smk"


rule paper_figures:
    input:
        info=f"{RESULTS}/data/{{dataset}}/dataset.json",
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
    output:
        bmaps=report(
            f"{FIGURES}/bmaps/{{dataset}}.png",
            caption="../report/bmaps.rst",
            category=CAT_PAPER,
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig. 1 B-maps across time"},
        ),
        forward=report(
            f"{FIGURES}/forward/{{dataset}}.png",
            caption="../report/forward.rst",
            category=CAT_PAPER,
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig. 2 forward process"},
        ),
    params:
        cfg=paper_figure_config,
    log:
        f"{RESULTS}/logs/paper_figures/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/paper_figures/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("torch")
    script:
        "../scripts/paper_figures.py"


rule reverse_process:
    input:
        models=trained_models,
        info=f"{RESULTS}/data/{{dataset}}/dataset.json",
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
    output:
        report(
            f"{FIGURES}/reverse/{{dataset}}.png",
            caption="../report/reverse.rst",
            category=CAT_PAPER,
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig. 3 reverse process"},
        ),
    params:
        variants=VARIANTS,
        device=config["device"],
        snapshots=8,
    log:
        f"{RESULTS}/logs/reverse_process/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/reverse_process/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["sample_runtime"],
        gpu=gpu_resources(),
    conda:
        env("torch")
    script:
        "../scripts/reverse_process.py"


rule report_figures:
    input:
        info=f"{RESULTS}/data/{{dataset}}/dataset.json",
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        samples=samples_manifests,
        logs=train_logs,
    output:
        qualitative=report(
            f"{FIGURES}/qualitative/{{dataset}}.png",
            caption="../report/qualitative.rst",
            category=CAT_PAPER,
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig. 4 qualitative comparison"},
        ),
        training=report(
            f"{FIGURES}/training/{{dataset}}.png",
            caption="../report/training.rst",
            category=CAT_TRAINING,
            labels={"dataset": "{dataset}"},
        ),
        depth_profile=report(
            f"{FIGURES}/depth_profile/{{dataset}}.png",
            caption="../report/depth_profile.rst",
            category=CAT_PHYSICS,
            labels={"dataset": "{dataset}"},
        ),
        samples=sample_grid_outputs(),
    params:
        variants=VARIANTS,
    log:
        f"{RESULTS}/logs/report_figures/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report_figures/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("torch")
    script:
        "../scripts/report_figures.py"


rule report_tables:
    input:
        **table_inputs(),
    output:
        **table_outputs(),
    params:
        tables=REPORT_TABLES,
    log:
        f"{RESULTS}/logs/report_tables.log",
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("report")
    script:
        "../scripts/report_tables.py"


rule provenance:
    input:
        figures=figure_targets(),
        tables=[f"{REPORT}/tables/{t}.html" for t in REPORT_TABLES],
        segment=segment_examples(),
    output:
        html=report(
            f"{REPORT}/provenance.html",
            caption="../report/provenance.rst",
            category=CAT_PROVENANCE,
        ),
        json=f"{REPORT}/provenance.json",
    params:
        config=config,
        benchmarks=f"{RESULTS}/benchmarks",
    log:
        f"{RESULTS}/logs/provenance.log",
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("report")
    script:
        "../scripts/provenance.py"
