# Helpers of the report stage (workflow/rules/report.smk): categories, inputs, targets.

#: Tables written by the metrics and segment stages, shown in the report as HTML pages.
REPORT_TABLES = METRIC_TABLES + (["segmentation"] if LABELLED else []) + (["classification"] if LATENT else [])
CAT_PAPER = "1. Paper figures"
CAT_SAMPLES = "2. Samples"
CAT_TRAINING = "3. Training"
CAT_PHYSICS = "4. Depth profile"
CAT_SEGMENT = "5. Segmentation"
CAT_TABLES = "6. Tables"
CAT_PROVENANCE = "7. Provenance"
#: Per-dataset figures of the report's own rules.
DATASET_FIGURES = ["bmaps", "forward", "reverse", "qualitative", "training", "depth_profile"]


def train_logs(wildcards):
    """Training log of {dataset} per variant, in VARIANTS order."""
    return [L("train_log", dataset=wildcards.dataset, variant=v) for v in VARIANTS]


def snapshots_per_variant(wildcards):
    """Reverse-process snapshots of {dataset} per variant, in VARIANTS order."""
    return [L("snapshots", dataset=wildcards.dataset, variant=v) for v in VARIANTS]


def for_report(path, caption, category, **kwargs):
    """``path`` flagged for the report with a caption from workflow/report/."""
    return report(path, caption=f"../report/{caption}", category=category, **kwargs)


def paper_figure(kind, caption, figure):
    """One of the papers' figures of {dataset}, flagged for the report."""
    return for_report(
        L("figure", kind=kind, name="{dataset}"),
        caption,
        CAT_PAPER,
        subcategory="{dataset}",
        labels={"dataset": "{dataset}", "figure": figure},
    )


def sample_grid_outputs():
    """One report-flagged sample grid per variant of {dataset}."""
    return [
        for_report(
            L("figure", kind="samples", name=f"{{dataset}}/{v}"),
            "samples.rst",
            CAT_SAMPLES,
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "variant": v},
        )
        for v in VARIANTS
    ]


def table_inputs():
    """Each table's CSV (every number) and Markdown (the paper's layout): <table>_csv, <table>_md."""
    return {f"{t}_{fmt}": L("table", name=t, fmt=fmt) for t in REPORT_TABLES for fmt in ("csv", "md")}


def table_outputs():
    """One report-flagged HTML page per table, each with its own caption."""
    return {
        t: for_report(L("report_table", name=t), f"table_{t}.rst", CAT_TABLES, labels={"table": t})
        for t in REPORT_TABLES
    }


def segment_examples():
    """The segment stage's example figures, flagged for the report (datasets with labels)."""
    return [
        for_report(L("figure", kind="segment", name=d), "segment_examples.rst", CAT_SEGMENT, labels={"dataset": d})
        for d in LABELLED
    ]


def figure_targets():
    """Every figure of the report's own rules."""
    return [L("figure", kind=kind, name=d) for kind in DATASET_FIGURES for d in DATASETS] + [
        L("figure", kind="samples", name=f"{d}/{v}") for d in DATASETS for v in VARIANTS
    ]


def verdict_tables():
    """The front page's verdict table, by format."""
    return {fmt: L("table", name="verdict", fmt=fmt) for fmt in TABLE_FORMATS}


def front_page_segmentation():
    """The segmentation table's CSV (its paired rows go on the front page), if any dataset is labelled."""
    return [L("table", name="segmentation", fmt="csv")] if LABELLED else []


def report_targets():
    """All outputs of the report stage; `rule all` asks for these."""
    return (
        figure_targets()
        + [L("front_page")]
        + [L("report_table", name=t) for t in REPORT_TABLES]
        + [L("provenance", fmt="html"), L("provenance", fmt="json")]
    )
