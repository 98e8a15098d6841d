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
    check_pretrained_folders,
    config_sections,
    reference_variant,
    resolve,
    validate_config,
    variant_b_min,
)
from sonodiff.contracts.layout import DATASET_INFO, MANIFEST, SECTOR, TABLE_FORMATS, Layout
from sonodiff.errors import InputError


def stop_on_input_error(build, *args):
    """``build(*args)``, run while the workflow loads: a bad input (InputError) stops it with one
    line naming the file or key, before any job and without a Python stack."""
    try:
        return build(*args)
    except InputError as err:
        sys.exit(f"error: {err}")


config.update(stop_on_input_error(validate_config, config))
stop_on_input_error(check_pretrained_folders, config)

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
#: Datasets of the latent family (Freiche et al.: prompt model, ControlNet, classification check).
LATENT = [d for d in DATASETS if config["datasets"][d].get("family") == "latent"]
#: Datasets of the pixel-space B-map models.
PIXEL = [d for d in DATASETS if d not in LATENT]


def is_latent(dataset):
    return dataset in LATENT


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


def sampling_model(wildcards):
    """The model a dataset's and variant's sample set comes from: the ControlNet of a latent dataset
    (label map and prompt), else the variant's model."""
    return L(
        "controlnet_model" if is_latent(wildcards.dataset) else "model",
        dataset=wildcards.dataset,
        variant=wildcards.variant,
    )


def sample_classes(wildcards):
    """The prepared manifest whose class column gives a latent model's prompts (none for the others)."""
    return [prepared(wildcards.dataset)] if is_latent(wildcards.dataset) else []


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
def exported_model(wildcards):
    """The model an export folder holds: the one its dataset's sample set and metrics come from."""
    return sampling_model(wildcards)


def exported_train_log(wildcards):
    """That model's training log."""
    kind = "controlnet_log" if is_latent(wildcards.dataset) else "train_log"
    return L(kind, dataset=wildcards.dataset, variant=wildcards.variant)


def export_targets():
    """Every dataset's and variant's exported model folder (none with export.models false)."""
    if not config["export"]["models"]:
        return []
    return [L("export_dir", dataset=d, variant=v) for d in DATASETS for v in VARIANTS]


# ---------------------------------------------------------------- latent family
#: A latent model's prompt-only sample sets: the variant's model, the fraction generator.
GENERATORS = "prompt|fraction"


def _latent_sections(dataset):
    resolved = resolve(config, dataset)
    return resolved["latent"], resolved["classify"]


#: The resolved latent and classify sections of each latent dataset, resolved once.
LATENT_SETTINGS = {d: _latent_sections(d) for d in LATENT}


def latent_settings(dataset):
    """The resolved latent and classify sections of a latent dataset."""
    return LATENT_SETTINGS[dataset]


def latent_components(wildcards):
    """What a latent UNet starts from: the trained autoencoder, or the pretrained folder when a
    rule fetches it (a folder already there is read directly)."""
    lat, _ = latent_settings(wildcards.dataset)
    if not lat["pretrained"]:
        return [L("autoencoder", dataset=wildcards.dataset)]
    return [lat["pretrained"]] if lat["pretrained_url"] else []


def classify_fraction(wildcards):
    """classify.fraction of a dataset (the fraction generator's share of the train patients)."""
    return latent_settings(wildcards.dataset)[1]["fraction"]


def prompt_model(wildcards):
    """The model of a prompt-only set: the variant's latent model, or its fraction generator."""
    kind = "fraction_model" if wildcards.generator == "fraction" else "model"
    return L(kind, dataset=wildcards.dataset, variant=wildcards.variant)


def prompt_shard_manifests(wildcards):
    """The manifests of every shard of one prompt-only set."""
    return [
        L(
            "prompt_shard_manifest",
            dataset=wildcards.dataset,
            variant=wildcards.variant,
            generator=wildcards.generator,
            shard=i,
        )
        for i in range(sample_shard_count(wildcards))
    ]


def prompt_sets(dataset):
    """(variant, generator) of every prompt-only set of a latent dataset: each variant's model, and
    the fraction generator when classify.fraction is set."""
    _, cls = latent_settings(dataset)
    sets = [(v, "prompt") for v in VARIANTS]
    return sets + ([(cls["fraction_variant"], "fraction")] if cls["fraction"] else [])


def latent_targets():
    """Every latent dataset's prompt-only sets, mask fidelity and figures."""
    sets = [L("prompt_samples_manifest", dataset=d, variant=v, generator=g) for d in LATENT for v, g in prompt_sets(d)]
    return sets + latent_check_targets()


def prompt_sets_per_variant(wildcards):
    """The prompt-only samples manifest of {dataset} per variant, in VARIANTS order."""
    return [L("prompt_samples_manifest", dataset=wildcards.dataset, variant=v, generator="prompt") for v in VARIANTS]


def latent_check_targets():
    """Mask fidelity per latent dataset and variant (needs the real segmenter) and figs. 3-4."""
    fidelity = [L("fidelity_record", dataset=d, variant=v) for d in LATENT for v in VARIANTS]
    return fidelity + [L("figure", kind=k, name=d) for d in LATENT for k in ("latent_classes", "latent_masks")]


# ---------------------------------------------------------------- classification check
#: Classifier sources: real, real+synthetic_<variant>, synthetic_<variant> (the fraction generator's).
CLASSIFY_SOURCE = r"real|real\+synthetic_[A-Za-z0-9_-]+|synthetic_[A-Za-z0-9_-]+"


def classify_sources(dataset):
    """The training sources of a latent dataset's classification check."""
    _, cls = latent_settings(dataset)
    sources = ["real"] + [f"real+synthetic_{v}" for v in cls["variants"]]
    return sources + ([f"synthetic_{cls['fraction_variant']}"] if cls["fraction"] else [])


def classify_runs():
    return [(d, s) for d in LATENT for s in classify_sources(d)]


def classifier_samples(wildcards):
    """The prompt-only sets a source adds: a variant's (real+synthetic_<v>) or the fraction generator's."""
    source = wildcards.source
    if source == "real":
        return []
    variant = source.split("synthetic_", 1)[1]
    generator = "prompt" if source.startswith("real+") else "fraction"
    return [L("prompt_samples_manifest", dataset=wildcards.dataset, variant=variant, generator=generator)]


def classifier_fraction(wildcards):
    """The fraction generator's share of the train patients (synthetic-only sources), else None."""
    return classify_fraction(wildcards) if wildcards.source.startswith("synthetic_") else None


def external_test_set():
    """The external prepared dataset (classify.external) as named inputs, when set."""
    folder = config["classify"]["external"]
    if not folder:
        return {}
    names = {"manifest": MANIFEST, "info": DATASET_INFO, "sector": SECTOR}
    return {f"external_{k}": os.path.join(folder, name) for k, name in names.items()}


def classify_targets():
    """The classification table (when a latent dataset exists)."""
    return [L("table", name="classification", fmt=fmt) for fmt in TABLE_FORMATS] if LATENT else []
