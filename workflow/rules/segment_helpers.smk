# Helpers of the segment stage (workflow/rules/segment.smk): sources, inputs, targets.

from sonodiff.segment.sources import check_network, nnunet_ids, nnunet_sources, parse_source, source_variants


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
SEGMENT_SOURCES = {d: stop_on_input_error(checked_sources, d) for d in SEGMENT_DATASETS}


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


# ---------------------------------------------------------------- nnU-Net export
#: Sources exported as nnU-Net v2 raw datasets: real and synthetic_<v> of every variant.
NNUNET_SOURCES = nnunet_sources(VARIANTS)
#: (dataset, source) -> nnU-Net dataset id, labelled datasets only (none when the export is off).
NNUNET_IDS = (
    stop_on_input_error(nnunet_ids, SEGMENT_DATASETS, VARIANTS, config["export"]["nnunet_first_id"])
    if config["export"]["nnunet"]
    else {}
)


def nnunet_dataset(dataset, source):
    """The nnU-Net raw dataset folder of one (dataset, source) pair, under its assigned id."""
    nnunet_id = f"{NNUNET_IDS[(dataset, source)]:03d}"
    return L("nnunet_dataset", nnunet_id=nnunet_id, dataset=dataset, source=source)


def nnunet_samples(wildcards):
    """Samples manifests of the exported source (source_samples), after checking that the folder's
    id is the one nnunet_ids assigns to its (dataset, source)."""
    assigned = NNUNET_IDS.get((wildcards.dataset, wildcards.source))
    if assigned is None or f"{assigned:03d}" != wildcards.nnunet_id:
        raise ValueError(
            f"nnU-Net dataset Dataset{wildcards.nnunet_id}_{wildcards.dataset}_{wildcards.source}: "
            f"the id of ({wildcards.dataset}, {wildcards.source}) is {assigned} (export.nnunet_first_id, "
            f"export.nnunet); ask for the folders of nnunet_targets()"
        )
    return source_samples(wildcards)


def nnunet_targets():
    """Every exported nnU-Net raw dataset folder (export.nnunet; labelled datasets only)."""
    return [nnunet_dataset(d, s) for d, s in NNUNET_IDS]
