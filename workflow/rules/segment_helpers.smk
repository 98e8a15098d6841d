# Helpers of the segment stage (workflow/rules/segment.smk): sources, inputs, targets.

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


SEGMENT_DATASETS = LABELLED
SEGMENT_SOURCES = {d: checked_sources(d) for d in SEGMENT_DATASETS}


def source_sample_variants(wildcards):
    """The variants whose samples one source trains on."""
    return source_variants([wildcards.source])


def source_samples(wildcards):
    """Samples manifests of source_sample_variants, in the same order."""
    return [L("samples_manifest", dataset=wildcards.dataset, variant=v) for v in source_sample_variants(wildcards)]


def dataset_sample_variants(wildcards):
    """Every variant whose samples some source of the dataset trains on."""
    return source_variants(SEGMENT_SOURCES[wildcards.dataset])


def dataset_samples(wildcards):
    """Samples manifests of dataset_sample_variants, in the same order."""
    return [L("samples_manifest", dataset=wildcards.dataset, variant=v) for v in dataset_sample_variants(wildcards)]


def dataset_sources(wildcards):
    return SEGMENT_SOURCES[wildcards.dataset]


def segment_runs():
    """Every (dataset, source) pair that trains a segmenter."""
    return [(d, s) for d in SEGMENT_DATASETS for s in SEGMENT_SOURCES[d]]


def segment_figures():
    return [L("figure", kind="segment", name=d) for d in SEGMENT_DATASETS]


def segment_layout():
    """Per dataset: the prepared dataset's files, figure path, and per source its record and predictions."""
    return {
        d: {
            "manifest": L("dataset_manifest", dataset=d),
            "info": L("dataset_info", dataset=d),
            "sector": L("dataset_sector", dataset=d),
            "figure": L("figure", kind="segment", name=d),
            "metrics": {s: L("segment_record", dataset=d, source=s) for s in SEGMENT_SOURCES[d]},
            "predictions": {s: L("segment_predictions", dataset=d, source=s) for s in SEGMENT_SOURCES[d]},
        }
        for d in SEGMENT_DATASETS
    }


def table_bootstrap():
    """The segmentation table's interval settings (the training jobs do not read them)."""
    return {"resamples": config["metrics"]["bootstrap"], "seed": config["seed"]}


def segmentation_tables():
    """The segmentation table's files, by format."""
    return {fmt: L("table", name="segmentation", fmt=fmt) for fmt in TABLE_FORMATS}


def segment_targets():
    """The segmentation table and the contour figures (nothing without labelled datasets)."""
    if not SEGMENT_DATASETS:
        return []
    return list(segmentation_tables().values()) + segment_figures()
