# Shared helpers: config validation, wildcard lists and per-job config.
import os
import re
import sys

SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
# Rule scripts (run in their own interpreter, locally or on a cluster node) import sonodiff from here.
# (Set, not required from the user: so no envvars directive.)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))

from sonodiff.config import resolve, validate_config

config.update(validate_config(config))

RESULTS = "results"
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
    """Path of a rule group's conda environment file."""
    return os.path.join(workflow.basedir, "envs", f"{name}.yaml")


def job_config(wildcards):
    """The resolved config of one job: dataset overrides and variant merged in."""
    return resolve(config, wildcards.dataset, wildcards.get("variant"))


def has_labels(dataset):
    """Whether a dataset has label maps (semantic model) or not (unconditional model)."""
    ds = config["datasets"][dataset]
    return len([v for v in ds["labels"].values() if v != 0]) > 0


def gpu_resources():
    """GPUs a GPU rule asks for (0 runs it on the CPU)."""
    return config["resources"]["gpus"]


def prepared(dataset):
    return f"{RESULTS}/data/{dataset}/manifest.csv"


def prepare_targets():
    return [prepared(d) for d in DATASETS] + [
        f"{RESULTS}/augment/{d}/manifest.csv" for d in DATASETS if has_labels(d)
    ]


def all_targets():
    return prepare_targets() + [
        f"{RESULTS}/samples/{d}/{v}/manifest.csv" for d in DATASETS for v in VARIANTS
    ]


# ---------------------------------------------------------------- sample stage
def sample_inputs(wildcards):
    """The model, and the augmented label maps when the dataset has labels (semantic model)."""
    inputs = {"model": f"{RESULTS}/models/{wildcards.dataset}/{wildcards.variant}/model.pt"}
    if has_labels(wildcards.dataset):
        inputs["labels"] = f"{RESULTS}/augment/{wildcards.dataset}/manifest.csv"
    return inputs


def sample_labels(wildcards):
    """The augmented label maps of a dataset with labels (an empty list without)."""
    if has_labels(wildcards.dataset):
        return [f"{RESULTS}/augment/{wildcards.dataset}/manifest.csv"]
    return []


def sample_shard_count(wildcards):
    """sample.shards of this dataset and variant (datasets may override it)."""
    return job_config(wildcards)["sample"]["shards"]


def sample_shard_manifests(wildcards):
    """The manifests of every shard of one dataset and variant."""
    return [
        f"{RESULTS}/samples/{wildcards.dataset}/{wildcards.variant}/shards/{i}/manifest.csv"
        for i in range(sample_shard_count(wildcards))
    ]
