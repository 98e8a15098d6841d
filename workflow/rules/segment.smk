# Downstream segmentation check (Echo from noise, section 2.2 and table 1): a MONAI UNet trained on
# each configured source (real, synthetic_<variant>, real+synthetic_<variant>) and tested on the
# real test split, after a leakage guard; then the table in the paper's layout and contour figures.

include: "segment_helpers.smk"


rule check_leakage:
    input:
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        augmented=f"{RESULTS}/augment/{{dataset}}/manifest.csv",
        samples=dataset_samples,
    output:
        f"{RESULTS}/segment/{{dataset}}/leakage_ok.txt",
    params:
        variants=dataset_sample_variants,
        sources=dataset_sources,
    log:
        f"{RESULTS}/logs/check_leakage/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("data")
    script:
        "../scripts/check_leakage.py"


rule train_segmenter:
    input:
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.csv",
        info=f"{RESULTS}/data/{{dataset}}/dataset.json",
        leakage_ok=f"{RESULTS}/segment/{{dataset}}/leakage_ok.txt",
        samples=source_samples,
    output:
        metrics=f"{RESULTS}/segment/{{dataset}}/{{source}}/metrics.json",
        model=f"{RESULTS}/segment/{{dataset}}/{{source}}/model.pt",
        predictions=f"{RESULTS}/segment/{{dataset}}/{{source}}/predictions.npz",
    wildcard_constraints:
        source=one_of(sorted({s for d in SEGMENT_DATASETS for s in SEGMENT_SOURCES[d]})),
    params:
        cfg=job_config,
        variants=source_sample_variants,
    log:
        f"{RESULTS}/logs/train_segmenter/{{dataset}}/{{source}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_segmenter/{{dataset}}/{{source}}.tsv"
    threads: config["resources"]["threads"]
    resources:
        gpu=gpu_resources(),
        mem_mb=config["resources"]["gpu_mem_mb"],
        runtime=config["resources"]["train_runtime"],
    conda:
        env("torch")
    script:
        "../scripts/train_segmenter.py"


rule segmentation_table:
    input:
        metrics=segment_metrics(),
        predictions=segment_predictions(),
        manifests=[prepared(d) for d in SEGMENT_DATASETS],
    output:
        csv=f"{RESULTS}/tables/segmentation.csv",
        md=f"{RESULTS}/tables/segmentation.md",
        tex=f"{RESULTS}/tables/segmentation.tex",
        figures=segment_figures(),
    params:
        layout=segment_layout(),
    log:
        f"{RESULTS}/logs/segmentation_table.log",
    threads: 1
    resources:
        mem_mb=config["resources"]["cpu_mem_mb"],
        runtime=config["resources"]["runtime"],
    conda:
        env("report")
    script:
        "../scripts/segmentation_table.py"
