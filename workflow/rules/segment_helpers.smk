# Helpers of the segment stage (workflow/rules/segment.smk): sources, paths, targets.

from sonodiff.segment.sources import check_network, parse_source, source_variants


def segment_settings(dataset):
    """The `segment` section one dataset sees (its overrides applied)."""
    return resolve(config, dataset)["segment"]


def checked_sources(dataset):
    """A dataset's training sources, checked (names, variants, UNet shape) when the DAG is built."""
    seg = segment_settings(dataset)
    where = f"datasets.{dataset}.segment" if "segment" in config["datasets"][dataset] else "segment"
    check_network(config["datasets"][dataset]["img_size"], seg, where=where)
    return [parse_source(s, VARIANTS).name for s in seg["sources"]]


SEGMENT_DATASETS = [d for d in DATASETS if has_labels(d)]
SEGMENT_SOURCES = {d: checked_sources(d) for d in SEGMENT_DATASETS}


def segment_dir(dataset, source):
    return f"{RESULTS}/segment/{dataset}/{source}"


def samples_manifest(dataset, variant):
    return f"{RESULTS}/samples/{dataset}/{variant}/manifest.csv"


def source_samples(wildcards):
    """Samples manifests of the variants that one source trains on."""
    return [
        samples_manifest(wildcards.dataset, v) for v in source_variants([wildcards.source])
    ]


def source_sample_variants(wildcards):
    """The variants of source_samples, in the same order."""
    return source_variants([wildcards.source])


def dataset_sample_variants(wildcards):
    """Every variant whose samples some source of the dataset trains on."""
    return source_variants(SEGMENT_SOURCES[wildcards.dataset])


def dataset_samples(wildcards):
    """Samples manifests of dataset_sample_variants, in the same order."""
    return [
        samples_manifest(wildcards.dataset, v) for v in dataset_sample_variants(wildcards)
    ]


def dataset_sources(wildcards):
    return SEGMENT_SOURCES[wildcards.dataset]


def segment_metrics():
    return [
        f"{segment_dir(d, s)}/metrics.json"
        for d in SEGMENT_DATASETS
        for s in SEGMENT_SOURCES[d]
    ]


def segment_predictions():
    return [
        f"{segment_dir(d, s)}/predictions.npz"
        for d in SEGMENT_DATASETS
        for s in SEGMENT_SOURCES[d]
    ]


def segment_figures():
    return [f"{RESULTS}/figures/segment/{d}.png" for d in SEGMENT_DATASETS]


def segment_layout():
    """Per dataset: prepared manifest, figure path, and per source its metrics and predictions."""
    return {
        d: {
            "manifest": prepared(d),
            "figure": f"{RESULTS}/figures/segment/{d}.png",
            "metrics": {s: f"{segment_dir(d, s)}/metrics.json" for s in SEGMENT_SOURCES[d]},
            "predictions": {
                s: f"{segment_dir(d, s)}/predictions.npz" for s in SEGMENT_SOURCES[d]
            },
        }
        for d in SEGMENT_DATASETS
    }


def segment_targets():
    """The segmentation table and the contour figures (nothing without labelled datasets)."""
    if not SEGMENT_DATASETS:
        return []
    tables = [f"{RESULTS}/tables/segmentation.{ext}" for ext in ("csv", "md", "tex")]
    return tables + segment_figures()
