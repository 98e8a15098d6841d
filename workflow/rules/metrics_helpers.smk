# Helpers of the metrics stage (workflow/rules/metrics.smk): paths, targets, table parameters.

METRIC_TABLES = ["fid", "paired", "physics"]
WEIGHTS_STATUS = f"{RESULTS}/metrics/weights.json"


def metrics_targets():
    """The metrics stage's final outputs: tables 1-3 (fid, paired, physics) as CSV, Markdown, LaTeX."""
    return [f"{RESULTS}/tables/{t}.{ext}" for t in METRIC_TABLES for ext in ("csv", "md", "tex")]


def metrics_jsons():
    """Every dataset's and variant's metrics JSON."""
    return [f"{RESULTS}/metrics/{d}/{v}.json" for d in DATASETS for v in VARIANTS]


def metrics_table_outputs():
    """Named outputs of make_tables: <table>_<format>."""
    return {
        f"{t}_{ext}": f"{RESULTS}/tables/{t}.{ext}"
        for t in METRIC_TABLES
        for ext in ("csv", "md", "tex")
    }


def dataset_formats():
    """Dataset name -> format (maps our datasets to the paper's)."""
    return {d: config["datasets"][d]["format"] for d in DATASETS}


def variant_b_min():
    """Variant name -> its diffusion.b_min (1 = baseline, < 1 = B-maps)."""
    return {v: {**config["diffusion"], **config["variants"][v]}["b_min"] for v in VARIANTS}


def prepared_sector(wildcards):
    """The prepared dataset's sector mask (written by prepare_dataset beside dataset.json)."""
    return f"{RESULTS}/data/{wildcards.dataset}/sector.png"
