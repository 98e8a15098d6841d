# Shared helpers: config validation, wildcard lists, per-job config and every results path.
# Paths come from sonodiff.contracts.layout (the one spelling of each contract's file name);
# the functions below only choose which of them a rule needs.
import os
import re
import sys

# sonodiff from this checkout's src/ when the workflow runs from one (found from this file, so
# also when the workflow is used as a module from elsewhere); else the installed package. Rule
# scripts find it the same way themselves (scripts/sonodiff_path.py): no PYTHONPATH needed,
# which --use-conda would delete.
_CHECKOUT_SRC = os.path.join(str(workflow.current_basedir), "..", "..", "src")
if os.path.isdir(os.path.join(_CHECKOUT_SRC, "sonodiff")):
    sys.path.insert(0, os.path.abspath(_CHECKOUT_SRC))

from sonodiff.config import (
    bmaps_variant,
    config_sections,
    reference_variant,
    resolve,
    validate_config,
    variant_b_min,
)
from sonodiff.contracts.layout import TABLE_FORMATS, Layout
from sonodiff.errors import InputError


def stop_on_input_error(build, *args):
    """``build(*args)``, run while the workflow loads: a bad input (InputError) stops it with one
    line naming the file or key, before any job and without a Python stack."""
    try:
        return build(*args)
    except InputError as err:
        sys.exit(f"error: {err}")


config.update(stop_on_input_error(validate_config, config))

RESULTS = "results"
L = Layout(RESULTS)
DATASETS = sorted(config["datasets"])
VARIANTS = sorted(config["variants"])
SIMULATED = [d for d in DATASETS if "simulate" in config["datasets"][d]["source"]]
FETCHED = [d for d in DATASETS if d not in SIMULATED]


def one_of(names):
    """A wildcard regex matching exactly these names (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


wildcard_constraints:
    dataset=one_of(DATASETS),
    variant=one_of(VARIANTS),


def env(name):
    """A rule group's conda environment file, relative to the rule files (workflow/envs/)."""
    return f"../envs/{name}.yaml"


def job_config(wildcards):
    """The resolved config of one job: dataset overrides and variant merged in."""
    return resolve(config, wildcards.dataset, wildcards.get("variant"))


def config_of(*sections, descriptive=False):
    """A params function: the job's resolved config cut to the sections its rule reads, so that an
    edit of another section does not re-run the job (Snakemake re-runs a job whose params change).
    ``descriptive``: keep the data's descriptive keys (its licence), which only the model card reads."""

    def job_sections(wildcards):
        return config_sections(job_config(wildcards), sections, descriptive)

    return job_sections


def has_labels(dataset):
    """Whether a dataset has label maps (semantic model) or not (unconditional model)."""
    ds = config["datasets"][dataset]
    return len([v for v in ds["labels"].values() if v != 0]) > 0


#: Datasets with label maps (semantic models, the segmentation check); the others are unconditional.
LABELLED = [d for d in DATASETS if has_labels(d)]
#: The metrics stage's tables (Domínguez et al. tables 1-2 and the physics table).
METRIC_TABLES = ["fid", "paired", "physics"]


def gpu_resources():
    """GPUs a GPU rule asks for (0 runs it on the CPU)."""
    return config["resources"]["gpus"]


def log_of(rule, *parts):
    """The log file of one job of ``rule`` (``parts``: its wildcards)."""
    return L.log(rule, *parts)


def benchmark_of(rule, *parts):
    """The benchmark file of one job of ``rule``."""
    return L.benchmark(rule, *parts)


# ---------------------------------------------------------------- data stage
def prepared_files(dataset="{dataset}"):
    """The prepared dataset's three contract files, as named inputs manifest, info, sector."""
    return {
        "manifest": L("dataset_manifest", dataset=dataset),
        "info": L("dataset_info", dataset=dataset),
        "sector": L("dataset_sector", dataset=dataset),
    }


def prepared(dataset):
    """A prepared dataset's manifest (the file that stands for the whole dataset)."""
    return L("dataset_manifest", dataset=dataset)


def labelmaps(dataset):
    """The augmented label maps of a dataset with labels."""
    return L("labelmaps_manifest", dataset=dataset)


def prepare_targets():
    return [prepared(d) for d in DATASETS] + [labelmaps(d) for d in LABELLED]


def all_targets():
    return prepare_targets() + [L("samples_manifest", dataset=d, variant=v) for d in DATASETS for v in VARIANTS]


# ---------------------------------------------------------------- sample stage
def sample_labels(wildcards):
    """The augmented label maps of a dataset with labels (an empty list without)."""
    return [labelmaps(wildcards.dataset)] if has_labels(wildcards.dataset) else []


def sample_shard_count(wildcards):
    """sample.shards of this dataset and variant (datasets may override it)."""
    return job_config(wildcards)["sample"]["shards"]


def sample_shard_manifests(wildcards):
    """The manifests of every shard of one dataset and variant."""
    return [
        L("shard_manifest", dataset=wildcards.dataset, variant=wildcards.variant, shard=i)
        for i in range(sample_shard_count(wildcards))
    ]


def samples_per_variant(wildcards):
    """Samples manifest of {dataset} per variant, in VARIANTS order."""
    return [L("samples_manifest", dataset=wildcards.dataset, variant=v) for v in VARIANTS]


def metrics_per_variant(wildcards):
    """Metrics record of {dataset} per variant, in VARIANTS order."""
    return [L("metrics_record", dataset=wildcards.dataset, variant=v) for v in VARIANTS]


# ---------------------------------------------------------------- variants
def variants_b_min():
    """Variant name -> its diffusion.b_min (1 = baseline, < 1 = B-maps)."""
    return {v: variant_b_min(config, v) for v in VARIANTS}


def bmaps_job_config(wildcards):
    """The diffusion section of {dataset} with its strongest B-map variant (the papers' figs. 1-2)."""
    resolved = resolve(config, wildcards.dataset, bmaps_variant(config, wildcards.dataset))
    return config_sections(resolved, ["diffusion"])


# ---------------------------------------------------------------- export stage
def export_targets():
    """Every dataset's and variant's exported model folder (none with export.models false)."""
    if not config["export"]["models"]:
        return []
    return [L("export_dir", dataset=d, variant=v) for d in DATASETS for v in VARIANTS]
