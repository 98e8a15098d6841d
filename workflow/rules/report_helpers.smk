# Helpers of the report stage (workflow/rules/report.smk): paths, categories, targets.

FIGURES = f"{RESULTS}/figures"
REPORT = f"{RESULTS}/report"
#: Tables written by the metrics and segment stages, shown in the report as HTML pages.
REPORT_TABLES = ["fid", "paired", "physics"] + (
    ["segmentation"] if any(has_labels(d) for d in DATASETS) else []
)
CAT_PAPER = "1. Paper figures"
CAT_SAMPLES = "2. Samples"
CAT_TRAINING = "3. Training"
CAT_PHYSICS = "4. Depth profile"
CAT_SEGMENT = "5. Segmentation"
CAT_TABLES = "6. Tables"
CAT_PROVENANCE = "7. Provenance"


def bmaps_variant():
    """The variant whose B-maps the paper figures show: the one with the smallest b_min."""
    by_bmin = sorted((resolve(config, DATASETS[0], v)["diffusion"]["b_min"], v) for v in VARIANTS)
    return by_bmin[0][1]


def paper_figure_config(wildcards):
    """Resolved config of {dataset} with the B-map variant (figs. 1-2)."""
    return resolve(config, wildcards.dataset, bmaps_variant())


def samples_manifests(wildcards):
    """Samples manifest of {dataset} per variant, in VARIANTS order."""
    return [f"{RESULTS}/samples/{wildcards.dataset}/{v}/manifest.csv" for v in VARIANTS]


def train_logs(wildcards):
    """Training log of {dataset} per variant, in VARIANTS order."""
    return [f"{RESULTS}/models/{wildcards.dataset}/{v}/train_log.csv" for v in VARIANTS]


def trained_models(wildcards):
    """Trained model of {dataset} per variant, in VARIANTS order."""
    return [f"{RESULTS}/models/{wildcards.dataset}/{v}/model.pt" for v in VARIANTS]


def for_report(path, caption, category, **kwargs):
    """``path`` flagged for the report with a caption from workflow/report/."""
    return report(path, caption=f"../report/{caption}", category=category, **kwargs)


def sample_grid_outputs():
    """One report-flagged sample grid per variant of {dataset}."""
    return [
        for_report(
            f"{FIGURES}/samples/{{dataset}}/{v}.png",
            "samples.rst",
            CAT_SAMPLES,
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "variant": v},
        )
        for v in VARIANTS
    ]


def table_inputs():
    """Each table's CSV (every number) and Markdown (the paper's layout): <table>_csv, <table>_md."""
    return {
        f"{t}_{ext}": f"{RESULTS}/tables/{t}.{ext}"
        for t in REPORT_TABLES
        for ext in ("csv", "md")
    }


def table_outputs():
    """One report-flagged HTML page per table, each with its own caption."""
    return {
        t: for_report(
            f"{REPORT}/tables/{t}.html",
            f"table_{t}.rst",
            CAT_TABLES,
            labels={"table": t},
        )
        for t in REPORT_TABLES
    }


def segment_examples():
    """The segment stage's example figures, flagged for the report (datasets with labels)."""
    return [
        for_report(
            f"{FIGURES}/segment/{d}.png",
            "segment_examples.rst",
            CAT_SEGMENT,
            labels={"dataset": d},
        )
        for d in DATASETS
        if has_labels(d)
    ]


def figure_targets():
    """Every figure of the report's own rules."""
    per_dataset = ["bmaps", "forward", "reverse", "qualitative", "training", "depth_profile"]
    return [f"{FIGURES}/{kind}/{d}.png" for kind in per_dataset for d in DATASETS] + [
        f"{FIGURES}/samples/{d}/{v}.png" for d in DATASETS for v in VARIANTS
    ]


def report_targets():
    """All outputs of the report stage; `rule all` asks for these."""
    return (
        figure_targets()
        + [f"{REPORT}/tables/{t}.html" for t in REPORT_TABLES]
        + [f"{REPORT}/provenance.html", f"{REPORT}/provenance.json"]
    )
