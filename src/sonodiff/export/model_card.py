"""The model card (``README.md``) of an exported model, in the Hugging Face model-card style.

YAML front matter (``license``, ``library_name: sonodiff``, ``tags``, ``pipeline_tag``), then the
sections: the model, its training data, its training, its metrics (every figure with its 95%
bootstrap interval, "not computed" where absent), intended use, the training data's licence, and
how to load it. The licence is the dataset config's ``licence``: null says it is unknown (Hub
``license: unknown``) and that users must check the data's terms; a simulated dataset
(``source.simulate``) is sonodiff's own phantoms (``license: mit``); any other text is
``license: other`` with that text as ``license_name``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import pandas as pd
import yaml

from sonodiff.contracts.layout import Layout
from sonodiff.contracts.model_file import LoadedModel
from sonodiff.contracts.model_folder import sonodiff_version

SIMULATED_LICENCE = "simulated by sonodiff's phantoms (MIT)"
#: Physics rows left out of the card's table (reference values without an interval).
BASELINE_QUANTITY = "identical-distribution baseline"


def licence(data: Mapping[str, Any]) -> tuple[dict, str]:
    """The front-matter licence keys and the card's sentence for a dataset config ``data``."""
    if "simulate" in data.get("source", {}):
        return {"license": "mit"}, f"The training images were {SIMULATED_LICENCE}: no third-party terms apply."
    text = data.get("licence")
    if text is None:
        return {"license": "unknown"}, ("The licence of the training data is unknown (the dataset config's "
                                        "`licence` is not set). The weights derive from that data: check the "
                                        "data's terms before you use or share this model.")
    return ({"license": "other", "license_name": str(text)},
            f"The training data is licensed under: {text}. The weights derive from that data: its terms apply.")


def front_matter(loaded: LoadedModel, data: Mapping[str, Any]) -> str:
    """The YAML header of the card, between ``---`` lines."""
    kind = loaded.spec["kind"]
    b_min = float(loaded.config["diffusion"]["b_min"])
    tags = ["ultrasound", "diffusion", "sonodiff", "b-maps" if b_min < 1 else "ddpm",
            "semantic-image-synthesis" if kind == "semantic" else "unconditional-image-generation"]
    if loaded.config.get("dataset"):
        tags.append(str(loaded.config["dataset"]))
    head = {**licence(data)[0], "library_name": "sonodiff", "tags": tags,
            "pipeline_tag": "image-to-image" if kind == "semantic" else "unconditional-image-generation"}
    return "---\n" + yaml.safe_dump(head, sort_keys=False, allow_unicode=True) + "---\n"


def _num(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x):.4g}"


def _row(name: str, fig: Mapping[str, Any] | None) -> str:
    if not fig:
        return f"| {name} | not computed | |"
    if fig.get("status") != "ok":
        return f"| {name} | not computed ({fig.get('reason', 'n/a')}) | |"
    ci = fig.get("ci")
    interval = f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else "no interval"
    return f"| {name} | {_num(fig.get('value'))} | {interval} |"


def metrics_table(record: Mapping[str, Any] | None) -> str:
    """A markdown table of the record's FID and KID per Inception layer, paired metrics (mean over
    pairs) and physics rows, each value with its 95% interval; "not computed" without a record."""
    if record is None:
        return "Metrics: not computed (no metrics record was given to the export).\n"
    rows = ["| metric | value | 95% interval |", "| --- | ---: | --- |"]
    for kind in ("fid", "kid"):
        for dim, fig in sorted(record.get(kind, {}).items(), key=lambda kv: int(kv[0])):
            rows.append(_row(f"{kind.upper()} ({fig.get('layer', dim + ' features')})", fig))
    for metric, stats in sorted(record.get("paired", {}).items()):
        rows.append(_row(f"{metric.upper()} (mean over pairs)", stats.get("mean")))
    for r in record.get("physics", {}).get("rows", []):
        if BASELINE_QUANTITY not in str(r.get("quantity", "")):
            rows.append(_row(f"{r['metric']}, {r['region']}: {r['quantity']}", r))
    counts = record.get("counts", {})
    note = (f"\nOn {counts.get('synthetic_images', '?')} synthetic and {counts.get('real_images', '?')} real "
            f"(validation) images; {counts.get('pairs', 0)} pairs. Intervals: "
            f"{record.get('bootstrap', {}).get('method', 'bootstrap')}.\n") if counts else "\n"
    return "\n".join(rows) + "\n" + note


def _counts(info: Mapping[str, Any] | None) -> str:
    if not info:
        return "The prepared dataset's description was not given to the export: counts unknown.\n"
    c = info.get("counts", {})
    splits = ("train", "val", "test")
    images = ", ".join(f"{s} {c.get(s, '?')}" for s in splits)
    patients = ", ".join(f"{s} {c.get('patients_' + s, '?')}" for s in splits)
    labels = ", ".join(f"{k} = {v}" for k, v in sorted(info.get("labels", {}).items(), key=lambda kv: kv[1]))
    return (f"- images per split: {images}\n- patients per split: {patients}\n"
            f"- image size: {info.get('img_size')} px, probe: {info.get('probe', {}).get('type', '?')}\n"
            + (f"- label ids: {labels}\n" if labels else ""))


def _final_loss(log: pd.DataFrame | None) -> str:
    if log is None or log.empty or "loss" not in log:
        return "not recorded"
    last = log.iloc[-1]
    return f"{_num(last['loss'])} at step {int(last['step'])}" if "step" in log else _num(last["loss"])


def _load_snippet(loaded: LoadedModel) -> Sequence[str]:
    cfg = loaded.config
    maps = Layout()("labelmaps_manifest", dataset=cfg.get("dataset"))
    labels = f"--labels {maps}" if loaded.conditional else "--labels none"
    return ["```python",
            "from sonodiff.contracts.model_folder import load_model_folder",
            "from sonodiff.sample import generate",
            'loaded = load_model_folder("path/to/this/folder")  # safetensors + JSON, no pickle',
            "labels = None  # a semantic model: (B, H, W) torch.long label ids (config.json: labels)",
            "images = generate(loaded, labels, seeds=[0, 1], cfg=loaded.config)  # uint8 (B, 1, H, W)",
            "```", "",
            "or with the CLI, which takes the folder wherever it takes a model file (the config gives the sampler):", "",
            "```",
            f"sonodiff sample --model path/to/this/folder --config config/config.yaml --dataset {cfg.get('dataset')} "
            f"--variant {cfg.get('variant')} {labels} --set sample.mask_sector=false --out samples/",
            "```"]


def model_card(loaded: LoadedModel, data: Mapping[str, Any], dataset_info: Mapping[str, Any] | None = None,
               metrics: Mapping[str, Any] | None = None, train_log: pd.DataFrame | None = None) -> str:
    """The card of ``loaded`` (``data``: its dataset config; ``dataset_info``: the prepared dataset's
    ``dataset.json``; ``metrics``: its metrics record; ``train_log``: its training log)."""
    cfg, spec = loaded.config, loaded.spec
    name, variant = cfg.get("dataset", "?"), cfg.get("variant", "?")
    d, t = cfg["diffusion"], cfg.get("train", {})
    b_min = float(d["b_min"])
    params = sum(p.numel() for p in loaded.model.parameters())
    semantic = spec["kind"] == "semantic"
    what = ("a semantic diffusion model: it makes an ultrasound image from a label map (SPADE-conditioned UNet, "
            f"{spec['num_classes']} label ids, classifier-free guidance)" if semantic else
            "an unconditional diffusion model: it makes ultrasound images from noise alone")
    bmaps = (f"B-map diffusion with b_min = {b_min:g} (depth-dependent noise, Domínguez et al. 2024)" if b_min < 1
             else "b_min = 1: B-maps off, the ordinary DDPM (the baseline variant)")
    lines = [
        front_matter(loaded, data),
        f"# sonodiff {spec['kind']} model: {name} / {variant}", "",
        f"This is {what}. {bmaps}.", "",
        f"- network: {spec['kind']} UNet, channels {spec.get('channels')}, {params:,} parameters, "
        f"{spec['out_channels']} output channels ({'learned' if spec['out_channels'] > spec['in_channels'] else 'fixed'} variance)",
        f"- diffusion: T = {d['num_steps']} steps, {d['alpha_schedule']} noise schedule, "
        f"{d['bmap_schedule']} B-map schedule",
        f"- images: {loaded.output_shape[1]} x {loaded.output_shape[2]} px, {loaded.output_shape[0]} channel(s), "
        "8-bit grey",
        f"- exported at training step {loaded.step}, with sonodiff {sonodiff_version()}", "",
        "## Training data", "",
        f"Dataset `{name}` (format `{data.get('format', '?')}`"
        + (", simulated" if "simulate" in data.get("source", {}) else "") + ").", "",
        _counts(dataset_info),
        "## Training", "",
        f"- steps: {t.get('steps', '?')}, batch size {t.get('batch_size', '?')}, learning rate {t.get('lr', '?')}, "
        f"EMA rate {t.get('ema_rate', '?')} (the weights are the EMA weights)",
        f"- final training loss: {_final_loss(train_log)}", "",
        "## Metrics", "",
        "Synthetic images against the real validation images; 95% bootstrap intervals (see sonodiff's "
        "docs/metrics.md).", "",
        metrics_table(metrics),
        "## Intended use", "",
        "Research on synthetic ultrasound data (data augmentation, benchmarking, method development). "
        "Not for clinical use: the images are not diagnostic and must not inform any decision about a patient.", "",
        "## Licence of the training data", "",
        licence(data)[1], "",
        "## How to load", "",
        "The folder needs `safetensors` and sonodiff's network code, never `torch.load`:", "",
        *_load_snippet(loaded), "",
    ]
    return "\n".join(lines)

