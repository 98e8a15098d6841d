"""Export one trained model (``model.pt``) as a shareable folder with its model card.

    export_model("results/models/camus/bmaps/model.pt", "results/export/models/camus/bmaps",
                 dataset_info_path=..., metrics_record_path=..., train_log_path=..., cfg=job_cfg)

The folder is :mod:`sonodiff.contracts.model_folder`'s (weights and depth map as safetensors,
``config.json``, ``README.md``); the card is :func:`sonodiff.export.model_card.model_card`. The
job's config ``cfg`` (its ``data`` and ``sample`` sections), when given, takes precedence over the
one stored in ``model.pt``: its dataset entry gives the card's licence (``licence``, which may be
set after training) and its ``sample`` section is the sampler the metrics were computed with (a
model trained by the workflow stores no ``sample`` section). The prepared dataset's description
adds the label names and ids, structures, sector id and counts to ``config.json``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Mapping

from sonodiff.contracts.dataset import read_dataset_info
from sonodiff.contracts.metrics_record import read_metrics_record
from sonodiff.contracts.model_file import load_model, read_training_log
from sonodiff.contracts.model_folder import write_model_folder
from sonodiff.errors import InputError
from sonodiff.export.model_card import model_card

log = logging.getLogger(__name__)

#: Sections of the job's config that replace the model file's own.
JOB_SECTIONS = ("data", "sample")


def dataset_extra(info: Mapping[str, Any] | None) -> dict:
    """The ``config.json`` keys taken from a prepared dataset's ``dataset.json`` (none without one)."""
    if info is None:
        return {}
    return {"labels": {str(k): int(v) for k, v in info.get("labels", {}).items()},
            "structures": info.get("structures"), "sector_id": info.get("sector_id"),
            "dataset_counts": info.get("counts")}


def export_model(model_path: str | Path, folder: str | Path, dataset_info_path: str | Path | None = None,
                 metrics_record_path: str | Path | None = None, train_log_path: str | Path | None = None,
                 cfg: Mapping[str, Any] | None = None, sector_path: str | Path | None = None) -> Path:
    """Write the exported folder of ``model_path`` to ``folder`` (replacing an old one) and return
    it; ``sector_path``: the prepared dataset's sector mask, which the folder then carries."""
    loaded = load_model(model_path)
    job = {k: cfg[k] for k in JOB_SECTIONS if cfg is not None and k in cfg}
    loaded = dataclasses.replace(loaded, config={**loaded.config, **job})
    if "sample" not in loaded.config:
        raise InputError(model_path, "the model file holds no sample section: pass the job's config (cfg)")
    info = read_dataset_info(dataset_info_path) if dataset_info_path else None
    metrics = read_metrics_record(metrics_record_path) if metrics_record_path else None
    train_log = read_training_log(train_log_path) if train_log_path else None
    card = model_card(loaded, loaded.config.get("data", {}), info, metrics, train_log)
    out = write_model_folder(folder, loaded, dataset_extra(info), card, sector=sector_path)
    log.info("exported %s to %s", model_path, out)
    return out
