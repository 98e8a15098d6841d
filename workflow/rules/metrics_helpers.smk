# Helpers of the metrics stage (workflow/rules/metrics.smk): targets and table parameters.


def metrics_targets():
    """The metrics stage's final outputs: tables 1-3 (fid, paired, physics) as CSV, Markdown, LaTeX."""
    return list(metrics_table_outputs().values())


def metrics_records():
    """Every dataset's and variant's metrics record."""
    return [L("metrics_record", dataset=d, variant=v) for d in DATASETS for v in VARIANTS]


def weights_config():
    """The metrics keys fetch_weights reads (so that another metrics key does not re-run it)."""
    return {k: config["metrics"][k] for k in ("weights", "missing_weights")}


def dataset_reference_variant(wildcards):
    """The variant the others of {dataset} are compared with (the baseline)."""
    return reference_variant(config, wildcards.dataset)


def metrics_table_outputs():
    """Named outputs of make_tables: <table>_<format>."""
    return {f"{t}_{fmt}": L("table", name=t, fmt=fmt) for t in METRIC_TABLES for fmt in TABLE_FORMATS}


def dataset_formats():
    """Dataset name -> format (maps our datasets to the paper's)."""
    return {d: config["datasets"][d]["format"] for d in DATASETS}
