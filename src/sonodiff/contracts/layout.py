"""Where every contract lives in the results tree: the single spelling of each path.

The rules build their inputs and outputs from these functions (called with wildcard strings such
as ``"{dataset}"`` they give Snakemake patterns), the CLI finds a job's files with them, and no
other module spells a contract's file name. Every function returns a POSIX string.
"""

from __future__ import annotations

from dataclasses import dataclass

#: File names of the contracts (read and written only through ``sonodiff.contracts``).
MANIFEST = "manifest.csv"
DATASET_INFO = "dataset.json"
SECTOR = "sector.png"
IMAGES = "images"
LABELS = "labels"
MODEL = "model.pt"
TRAIN_LOG = "train_log.csv"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
SAMPLE_PLAN = "plan.csv"
SAMPLE_CONFIG = "config.yaml"
SNAPSHOTS = "snapshots.npz"
SHARDS = "shards"
REAL_FID_STATS = "real_fid_stats.npz"
WEIGHTS_STATUS = "weights.json"
SEGMENT_RECORD = "metrics.json"
SEGMENT_MODEL = "model.pt"
PREDICTIONS = "predictions.npz"
LEAKAGE_REPORT = "leakage_ok.txt"
TABLE_FORMATS = ("csv", "md", "tex")
#: The exported model folder (loadable with safetensors alone: ``contracts.model_folder``).
EXPORTED_WEIGHTS = "model.safetensors"
EXPORTED_DEPTH = "depth.safetensors"
EXPORTED_CONFIG = "config.json"
MODEL_CARD = "README.md"
#: nnU-Net v2's raw dataset description (its own format, inside each ``Dataset<ID>_<name>`` folder).
NNUNET_DATASET_JSON = "dataset.json"


#: Every path of the results tree, relative to its root, as a template over the wildcards it
#: depends on (Snakemake's wildcard syntax, so a template left unfilled is a rule's pattern).
TEMPLATES = {
    # data stage
    "raw": "raw/{dataset}",
    "downloads": "downloads",
    "dataset_dir": "data/{dataset}",
    "dataset_manifest": f"data/{{dataset}}/{MANIFEST}",
    "dataset_info": f"data/{{dataset}}/{DATASET_INFO}",
    "dataset_sector": f"data/{{dataset}}/{SECTOR}",
    "labelmaps_manifest": f"augment/{{dataset}}/{MANIFEST}",
    "prepare_done": "prepare.done",
    # train stage
    "model_dir": "models/{dataset}/{variant}",
    "model": f"models/{{dataset}}/{{variant}}/{MODEL}",
    "train_log": f"models/{{dataset}}/{{variant}}/{TRAIN_LOG}",
    # the latent family (Freiche et al.): its autoencoder (tiny configs), the ControlNet on each
    # variant's prompt model, and the generator of classify.fraction of the train patients
    "autoencoder": f"models/{{dataset}}/autoencoder/{MODEL}",
    "controlnet_model": f"models/{{dataset}}/{{variant}}/controlnet/{MODEL}",
    "controlnet_log": f"models/{{dataset}}/{{variant}}/controlnet/{TRAIN_LOG}",
    "fraction_model": f"models/{{dataset}}/{{variant}}/fraction/{MODEL}",
    "fraction_log": f"models/{{dataset}}/{{variant}}/fraction/{TRAIN_LOG}",
    # sample stage: the plan (every image with its seed and batch, read by every shard), the
    # shards, the gathered set, and one reverse chain's snapshots (Domínguez et al. fig. 3)
    "samples_dir": "samples/{dataset}/{variant}",
    "sample_plan": f"samples/{{dataset}}/{{variant}}/{SAMPLE_PLAN}",
    "shard_manifest": f"samples/{{dataset}}/{{variant}}/{SHARDS}/{{shard}}/{MANIFEST}",
    "samples_manifest": f"samples/{{dataset}}/{{variant}}/{MANIFEST}",
    "snapshots": f"samples/{{dataset}}/{{variant}}/{SNAPSHOTS}",
    # a latent model's prompt-only sets ({generator}: prompt, the variant's model; fraction, the
    # fraction generator's), beside the variant's ControlNet set above
    "prompt_plan": f"samples/{{dataset}}/{{variant}}/{{generator}}/{SAMPLE_PLAN}",
    "prompt_shard_manifest": f"samples/{{dataset}}/{{variant}}/{{generator}}/{SHARDS}/{{shard}}/{MANIFEST}",
    "prompt_samples_manifest": f"samples/{{dataset}}/{{variant}}/{{generator}}/{MANIFEST}",
    # metrics stage; tables are csv, md or tex
    "weights_status": f"metrics/{WEIGHTS_STATUS}",
    "real_fid_stats": f"metrics/{{dataset}}/{REAL_FID_STATS}",
    "metrics_record": "metrics/{dataset}/{variant}.json",
    "metrics_values": "metrics/{dataset}/{variant}_values.npz",
    "metrics_differences": "metrics/{dataset}/differences.json",
    "table": "tables/{name}.{fmt}",
    # segment stage
    "segment_dir": "segment/{dataset}/{source}",
    "segment_record": f"segment/{{dataset}}/{{source}}/{SEGMENT_RECORD}",
    "segment_model": f"segment/{{dataset}}/{{source}}/{SEGMENT_MODEL}",
    "segment_predictions": f"segment/{{dataset}}/{{source}}/{PREDICTIONS}",
    "leakage_report": f"segment/{{dataset}}/{LEAKAGE_REPORT}",
    # mask fidelity of a latent dataset's ControlNet set: the real segmenter's Dice vs its masks
    "fidelity_record": "segment/{dataset}/fidelity_{variant}.json",
    # classification check (latent datasets): one record and its per-image scores per source
    "classify_record": "classify/{dataset}/{source}/record.json",
    "classify_scores": "classify/{dataset}/{source}/scores.npz",
    # export stage: shareable model folders and nnU-Net v2 raw datasets (nnUNet_raw = nnunet_raw)
    "export_dir": "export/models/{dataset}/{variant}",
    "exported_weights": f"export/models/{{dataset}}/{{variant}}/{EXPORTED_WEIGHTS}",
    "exported_depth": f"export/models/{{dataset}}/{{variant}}/{EXPORTED_DEPTH}",
    "exported_config": f"export/models/{{dataset}}/{{variant}}/{EXPORTED_CONFIG}",
    "model_card": f"export/models/{{dataset}}/{{variant}}/{MODEL_CARD}",
    "exported_sector": f"export/models/{{dataset}}/{{variant}}/{SECTOR}",
    "nnunet_raw": "export/nnunet_raw",
    "nnunet_dataset": "export/nnunet_raw/Dataset{nnunet_id}_{dataset}_{source}",
    "nnunet_dataset_json": f"export/nnunet_raw/Dataset{{nnunet_id}}_{{dataset}}_{{source}}/{NNUNET_DATASET_JSON}",
    # report stage (a figure's name may hold a /)
    "figure": "figures/{kind}/{name}.png",
    "report_table": "report/tables/{name}.html",
    "provenance": "report/provenance.{fmt}",
    "front_page": "report/front_page.html",
    "report": "report.html",
    "benchmarks": "benchmarks",
}


class _KeepMissing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class Layout:
    """The results tree under ``root`` (``results`` by default).

    ``layout("model", dataset="camus", variant="bmaps")`` is ``results/models/camus/bmaps/model.pt``;
    wildcards left out stay in braces, so ``layout("model")`` is the rule pattern
    ``results/models/{dataset}/{variant}/model.pt``.
    """

    root: str = "results"

    def __call__(self, contract: str, /, **wildcards: object) -> str:
        if contract not in TEMPLATES:
            raise KeyError(f"no contract path named {contract!r}")
        filled = TEMPLATES[contract].format_map(_KeepMissing({k: str(v) for k, v in wildcards.items()}))
        return f"{self.root}/{filled}"

    def log(self, rule: str, *parts: object) -> str:
        """The log of one job of ``rule``: ``logs/<rule>/<part>/.../<last part>.log``."""
        return self._per_job("logs", rule, parts, ".log")

    def benchmark(self, rule: str, *parts: object) -> str:
        """The benchmark record of one job of ``rule`` (``.tsv``)."""
        return self._per_job("benchmarks", rule, parts, ".tsv")

    def _per_job(self, kind: str, rule: str, parts: tuple, suffix: str) -> str:
        names = [rule, *(str(p) for p in parts)]
        return "/".join([self.root, kind, *names[:-1], names[-1] + suffix])
