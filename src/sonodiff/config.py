"""Config: validation against ``src/sonodiff/schema.yaml`` and resolution per dataset and variant.

The schema is the single source of keys, types and defaults. :func:`validate_config` fills the
defaults and raises :class:`~sonodiff.errors.InputError` naming the offending key;
:func:`resolve` deep-merges a dataset's overrides and a variant's diffusion keys over the
top-level sections, so every stage sees one flat, fully specified dict. :func:`guidance_weight`
is the one place the two spellings of the guidance scale become one number.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import string
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import jsonschema
import yaml

from sonodiff.errors import InputError

SCHEMA_PATH = Path(__file__).resolve().with_name("schema.yaml")
#: Sections a dataset may override with a sub-dict of the same name.
OVERRIDABLE = ("augment", "diffusion", "model", "train", "sample", "segment", "latent", "classify")


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The JSON schema (YAML), parsed once per file and process (a copy: callers may change it).

    :func:`resolve` runs for every job while Snakemake builds the DAG; parsing the schema each
    time cost 47 ms of its 52."""
    return copy.deepcopy(_parsed_schema(str(Path(path).resolve())))


@functools.lru_cache(maxsize=4)
def _parsed_schema(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def load_config(path: str | Path, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Read and validate a YAML config file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise InputError(path, f"cannot read config ({err})") from err
    return validate_config(raw, schema_path)


def _is_integer(checker: Any, instance: Any) -> bool:
    """JSON Schema's integer, without the floats it admits (``4.0`` would reach ``range()``)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_finite_number(checker: Any, instance: Any) -> bool:
    """JSON Schema's number, without NaN and the infinities (which pass every bound)."""
    return isinstance(instance, (int, float)) and not isinstance(instance, bool) and math.isfinite(instance)


#: Draft 7 with the two stricter types: every schema validation in sonodiff uses it.
StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_integer, "number": _is_finite_number}),
)


def _reason(error: jsonschema.ValidationError) -> str:
    """A user's reading of one schema error."""
    instance = error.instance
    if error.validator == "additionalProperties":
        return "unknown key"
    if error.validator == "required":
        return "required key is missing"
    if "propertyNames" in error.schema_path:
        return f"{instance!r} is not a valid name (letters, digits, _ and -, starting with a letter or digit)"
    if isinstance(instance, float) and not math.isfinite(instance):
        return f"must be a finite number, got {instance}"
    if error.validator in ("type", "anyOf") and isinstance(instance, float) and "integer" in str(error.schema):
        return f"must be an integer, got {instance}"
    return error.message


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            parts.append(str(extra[0]))
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in (error.instance or {})]
        if missing:
            parts.append(str(missing[0]))
    return ".".join(parts) or "<root>"


def _raise_first(validator: jsonschema.Validator, instance: Any, prefix: str = "") -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise InputError(f"config key {prefix}{_key_path(err)}", _reason(err))


def _fill_defaults(schema: Mapping, instance: Any, root: Mapping) -> Any:
    """Fill ``default`` values of object properties, recursing through ``$ref``."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = root["$defs"][name]
    if not isinstance(instance, dict) or schema.get("type") != "object":
        return instance
    for key, sub in schema.get("properties", {}).items():
        target = root["$defs"][sub["$ref"].split("/")[-1]] if "$ref" in sub else sub
        if key not in instance and "default" in target:
            instance[key] = copy.deepcopy(target["default"])
        if key in instance:
            instance[key] = _fill_defaults(sub, instance[key], root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in instance:
            if key not in schema.get("properties", {}):
                instance[key] = _fill_defaults(extra, instance[key], root)
    return instance


def _refuse_old_forms(config: Mapping) -> None:
    """The one-string sampler of old configs (``sample.steps: ddimN``), at the top level or in a
    dataset's overrides, is refused with a message naming ``sample.sampler`` and ``sample.steps``."""
    sections = [("sample", config.get("sample"))] + [
        (f"datasets.{name}.sample", ds.get("sample")) for name, ds in (config.get("datasets") or {}).items()
        if isinstance(ds, Mapping)]
    for where, section in sections:
        steps = section.get("steps") if isinstance(section, Mapping) else None
        match = re.fullmatch(r"ddim(\d+)", str(steps).strip().lower()) if isinstance(steps, str) else None
        if match:
            raise InputError(f"config key {where}.steps", f"{steps!r} is the old form; "
                             f"set {where}.sampler: ddim and {where}.steps: {int(match.group(1))}")


def validate_config(config: Mapping, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Return a validated copy of ``config`` with defaults filled in.

    Raises :class:`InputError` ``"config key <dotted.key>: <reason>"`` on the first problem.
    """
    schema = load_schema(schema_path)
    validator = StrictValidator(schema)
    config = copy.deepcopy(dict(config))
    _refuse_old_forms(config)
    _raise_first(validator, config)
    config = _fill_defaults(schema, config, schema)
    _raise_first(validator, config)
    for name, ds in config.get("datasets", {}).items():
        sources = [k for k in ("simulate", "url", "path") if k in ds["source"]]
        if len(sources) != 1:
            raise InputError(f"config key datasets.{name}.source", "give exactly one of simulate, url, path")
        if "url" in ds["source"] and "sha256" not in ds["source"]:
            raise InputError(f"config key datasets.{name}.source.sha256", "a url needs its sha256")
        for variant in config["variants"]:
            check_cross_keys(resolve(config, name, variant, schema=schema), ds, sorted(config["variants"]))
    guidance_weight(config["sample"])
    fractions = config["split"]["fractions"]
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise InputError("config key split.fractions", f"fractions sum to {sum(fractions.values())}, not 1")
    return config


def check_cross_keys(resolved: Mapping, ds: Mapping, variants: Sequence[str] = ()) -> None:
    """Constraints between keys, checked before any job runs (each would otherwise fail deep
    inside one): the image size against the UNet's depth, the sampler's steps against the
    process's. ``ds``: the dataset's entry (to name the key that was set).

    The diffusion UNet halves the image ``len(model.channels) - 1`` times, so ``img_size`` must be
    a multiple of ``2 ** (len(model.channels) - 1)``; respaced sampling picks ``sample.steps`` of
    the ``diffusion.num_steps`` steps, so it can pick at most that many.
    """
    name, data = resolved["dataset"], resolved["data"]
    levels = len(resolved["model"]["channels"])
    factor = 2 ** (levels - 1)
    if data["img_size"] % factor:
        raise InputError(f"config key datasets.{name}.img_size",
                         f"{data['img_size']} is not a multiple of {factor}: the diffusion UNet's {levels} levels "
                         f"(model.channels) halve the image {levels - 1} time{'s' if levels > 2 else ''}")
    if data.get("family") == "latent":
        check_latent_keys(resolved, ds, variants)
    steps, total = resolved["sample"]["steps"], resolved["diffusion"]["num_steps"]
    if isinstance(steps, int) and steps > total:
        where = f"datasets.{name}.sample.steps" if "steps" in ds.get("sample", {}) else "sample.steps"
        raise InputError(f"config key {where}", f"{steps} sampling steps exceed the {total} steps of the "
                         f"process (diffusion.num_steps)")


_SOURCE = re.compile(r"^(?P<real>real)?(?:(?(real)\+)synthetic_(?P<variant>[A-Za-z0-9_.-]+))?$")


@dataclass(frozen=True)
class Source:
    """A training source of the downstream checks (segmentation, classification): whether it uses
    the real train split, and which variant's synthetic images."""

    name: str
    real: bool
    variant: str | None

    @property
    def synthetic(self) -> bool:
        return self.variant is not None

    @property
    def kind(self) -> str:
        """``real``, ``real+synthetic`` or ``synthetic``."""
        return "real+synthetic" if self.real and self.synthetic else ("real" if self.real else "synthetic")


def parse_source(name: str, variants: Iterable[str] | None = None,
                 where: str = "config key segment.sources") -> Source:
    """Parse ``real``, ``synthetic_<variant>`` or ``real+synthetic_<variant>``.

    ``variants`` (config ``variants``), when given, must contain the named variant.
    """
    m = _SOURCE.match(name or "")
    if not name or m is None or not (m["real"] or m["variant"]):
        raise InputError(where, f"{name!r} is not real, synthetic_<variant> or real+synthetic_<variant>")
    variant = m["variant"]
    if variant is not None and variants is not None and variant not in set(variants):
        raise InputError(where, f"{name!r} names no configured variant {variant!r}")
    return Source(name=name, real=bool(m["real"]), variant=variant)


#: Parts of a Stable Diffusion folder (diffusers' layout) the latent family reads.
STABLE_DIFFUSION_PARTS = ("model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler")


def missing_stable_diffusion_parts(folder: str | Path) -> list[str]:
    """The :data:`STABLE_DIFFUSION_PARTS` that ``folder`` lacks."""
    return [p for p in STABLE_DIFFUSION_PARTS if not (Path(folder) / p).exists()]


def check_latent_keys(resolved: Mapping, ds: Mapping, variants: Sequence[str] = ()) -> None:
    """The latent family's constraints: classify's variants among ``variants``; the real
    segmenter (mask fidelity) among the segmentation sources; a pretrained folder that is there
    (or a ``pretrained_url`` to fetch it from), else tiny components whose sizes fit: ``img_size``
    a multiple of the autoencoder's and the UNet's downsampling together, and a ControlNet
    embedding that downsamples the label map to the latent grid."""
    name, data, lat, cls = resolved["dataset"], resolved["data"], resolved["latent"], resolved["classify"]
    if variants:
        unknown = [v for v in [*cls["variants"], cls["fraction_variant"]] if v not in variants]
        if unknown:
            raise InputError("config key classify.variants" if unknown[0] in cls["variants"] else
                             "config key classify.fraction_variant",
                             f"no variant named {unknown[0]!r} (variants: {', '.join(variants)})")
    if "real" not in resolved["segment"]["sources"]:
        raise InputError(f"config key datasets.{name}.segment.sources",
                         "a latent dataset needs the real source: its segmenter measures the ControlNet's mask fidelity")
    fields = {field for _, field, _, _ in string.Formatter().parse(lat["prompt"]) if field is not None}
    if fields - {"class"}:
        raise InputError("config key latent.prompt", f"the only field a prompt template may use is {{class}}, "
                         f"not {sorted(fields - {'class'})}")
    if lat["pretrained"]:
        if resolved["diffusion"]["alpha_schedule"] != "scaled_linear":
            raise InputError(f"config key datasets.{name}.diffusion.alpha_schedule",
                             "a pretrained Stable Diffusion UNet was trained with scaled_linear; keep that schedule")
        if resolved["diffusion"]["learn_sigma"]:
            raise InputError(f"config key datasets.{name}.diffusion.learn_sigma",
                             "a pretrained Stable Diffusion UNet predicts the noise only; set it to false")
        return
    ae = len(lat["autoencoder"]["channels"]) - 1
    factor = 2 ** (ae + len(lat["unet"]["channels"]) - 1)
    if data["img_size"] % factor:
        raise InputError(f"config key datasets.{name}.img_size",
                         f"{data['img_size']} is not a multiple of {factor}: the autoencoder "
                         f"(latent.autoencoder.channels) and the latent UNet (latent.unet.channels) halve it "
                         f"{ae} and {len(lat['unet']['channels']) - 1} times")
    if len(lat["controlnet"]["conditioning_channels"]) - 1 != ae:
        raise InputError("config key latent.controlnet.conditioning_channels",
                         f"needs {ae + 1} entries: the label map is {2 ** ae} times the latent grid "
                         f"(latent.autoencoder.channels has {ae + 1} levels)")


def check_pretrained_folders(config: Mapping) -> None:
    """Every latent dataset's ``latent.pretrained`` folder is a Stable Diffusion folder in diffusers'
    layout, or ``latent.pretrained_url`` says where a rule fetches it from (checked by the workflow
    when it loads, relative to its working directory)."""
    for name, ds in config["datasets"].items():
        if ds.get("family") != "latent":
            continue
        lat = resolve(config, name)["latent"]
        if not lat["pretrained"] or lat["pretrained_url"]:
            continue
        folder = Path(lat["pretrained"])
        missing = missing_stable_diffusion_parts(folder)
        if missing:
            where = f"datasets.{name}.latent.pretrained" if "pretrained" in ds.get("latent", {}) else "latent.pretrained"
            raise InputError(f"config key {where} ({folder})",
                             f"no Stable Diffusion folder here (missing {', '.join(missing)}); put one in "
                             f"diffusers' layout there, or set latent.pretrained_url to fetch it")


def _deep_merge(base: Mapping, override: Mapping) -> dict:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve(config: Mapping, dataset: str, variant: str | None = None, schema: Mapping | None = None) -> dict:
    """The config one job sees: top-level sections with the dataset's and variant's overrides.

    Returns a dict with keys ``seed``, ``device``, ``dataset`` (name), ``variant`` (name or None),
    ``data`` (the dataset entry), and the sections ``split``, ``augment``, ``diffusion``,
    ``model``, ``train``, ``sample``, ``metrics``, ``segment``, ``latent``, ``classify``.
    """
    schema = schema or load_schema()
    if dataset not in config["datasets"]:
        raise InputError("config key datasets", f"no dataset named {dataset!r}")
    ds = config["datasets"][dataset]
    out: dict[str, Any] = {
        "seed": config["seed"],
        "device": config["device"],
        "dataset": dataset,
        "variant": variant,
        "data": {k: copy.deepcopy(v) for k, v in ds.items() if k not in OVERRIDABLE},
    }
    for section in ("split", "augment", "diffusion", "model", "train", "sample", "metrics", "segment", "latent",
                    "classify"):
        merged = _deep_merge(config[section], ds.get(section, {}))
        if section == "diffusion" and variant is not None:
            if variant not in config["variants"]:
                raise InputError("config key variants", f"no variant named {variant!r}")
            merged = _deep_merge(merged, config["variants"][variant])
        sub_validator = StrictValidator(schema["$defs"][section])
        where = f"datasets.{dataset}.{section}" if section in ds else (
            f"variants.{variant}" if section == "diffusion" and variant else section)
        _raise_first(sub_validator, merged, prefix=f"{where} -> ")
        if section == "sample":
            guidance_weight(merged, where)
        out[section] = merged
    return out


def guidance_weight(sample: Mapping[str, Any], where: str = "sample") -> float:
    """The classifier-free guidance weight w of a ``sample`` section, in Ho & Salimans' convention

        eps_hat = (1 + w) eps(x|y) - w eps(x|null)                   (w = ``guidance_scale``)

    SDM's ``guidance_scale_sdm`` s, eps_hat = eps(x|null) + s (eps(x|y) - eps(x|null)), is the
    same prediction at s = w + 1, so it gives w = s - 1. Setting both (s not null and w not its
    default 0) raises :class:`InputError` naming both keys under ``where``. A section without
    ``guidance_scale_sdm`` (an older model's config) reads ``guidance_scale`` alone.
    """
    w, s = float(sample["guidance_scale"]), sample.get("guidance_scale_sdm")
    if s is None:
        return w
    if w != 0:
        raise InputError(f"config key {where}.guidance_scale_sdm",
                         f"set {where}.guidance_scale (w, Ho & Salimans) or {where}.guidance_scale_sdm "
                         f"(s = w + 1, SDM), not both")
    return float(s) - 1.0


#: Keys of a resolved config that every job keeps (which job it is, and the master seed).
IDENTITY_KEYS = ("seed", "device", "dataset", "variant")
#: Keys of ``datasets.<d>`` that describe the data to people and change no computation: only jobs
#: that write them out (the model card) receive them, so editing one re-runs nothing else.
DESCRIPTIVE_DATA_KEYS = ("licence",)


def config_sections(resolved: Mapping, sections: Sequence[str], descriptive: bool = False) -> dict:
    """``resolved`` (see :func:`resolve`) cut to :data:`IDENTITY_KEYS` and ``sections``, the
    ``data`` section without :data:`DESCRIPTIVE_DATA_KEYS` unless ``descriptive``.

    A rule passes only what its job reads as ``params``, so that Snakemake, which re-runs a job
    whose params changed, does not re-run it when another section is edited.
    """
    unknown = [s for s in sections if s not in resolved]
    if unknown:
        raise KeyError(f"no config sections {unknown} (known: {sorted(resolved)})")
    cut = {k: resolved[k] for k in (*IDENTITY_KEYS, *sections)}
    if "data" in cut and not descriptive:
        cut["data"] = {k: v for k, v in cut["data"].items() if k not in DESCRIPTIVE_DATA_KEYS}
    return cut


#: A key absent from one side of :func:`first_difference`.
_MISSING = object()


def first_difference(want: Any, got: Any, prefix: str = "") -> str | None:
    """Where ``got`` first differs from ``want`` (nested mappings, keys in ``want``'s order, then
    the keys only ``got`` has), as ``"<dotted key>: <want> here, <got> in the checkpoint"``
    (``missing`` for an absent key); None when they are equal."""
    if isinstance(want, Mapping) and isinstance(got, Mapping):
        for key in [*want, *(k for k in got if k not in want)]:
            diff = first_difference(want.get(key, _MISSING), got.get(key, _MISSING), f"{prefix}{key}.")
            if diff:
                return diff
        return None
    if want is _MISSING or got is _MISSING or want != got:
        def show(v: Any) -> str:
            return "missing" if v is _MISSING else repr(v)[:80]
        return f"{prefix[:-1] or 'the state'}: {show(want)} here, {show(got)} in the checkpoint"
    return None


def variant_b_min(config: Mapping, variant: str, dataset: str | None = None) -> float:
    """``diffusion.b_min`` of a variant (with ``dataset``'s overrides): 1 = baseline, < 1 = B-maps.

    The one place rules and code turn a variant name into its B-map strength.
    """
    if variant not in config["variants"]:
        raise InputError("config key variants", f"no variant named {variant!r}")
    diffusion = dict(config["diffusion"])
    if dataset is not None:
        diffusion.update(config["datasets"][dataset].get("diffusion", {}))
    diffusion.update(config["variants"][variant])
    return float(diffusion["b_min"])


def bmaps_variant(config: Mapping, dataset: str | None = None) -> str:
    """The variant with the strongest B-maps (smallest ``b_min``; ties broken by name)."""
    return min(sorted(config["variants"]), key=lambda v: variant_b_min(config, v, dataset))


def reference_variant(config: Mapping, dataset: str | None = None) -> str:
    """The variant every other is compared with: the largest ``b_min`` (the baseline, 1), ties by name."""
    return max(sorted(config["variants"], reverse=True), key=lambda v: variant_b_min(config, v, dataset))


def schema_keys(schema: Mapping | None = None) -> list[tuple[str, Any, str]]:
    """Every key of the schema as (dotted key, default, description), in schema order."""
    schema = schema or load_schema()
    rows: list[tuple[str, Any, str]] = []

    def walk(node: Mapping, prefix: str) -> None:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].split("/")[-1]]
        for key, sub in node.get("properties", {}).items():
            target = schema["$defs"][sub["$ref"].split("/")[-1]] if "$ref" in sub else sub
            dotted = f"{prefix}{key}"
            rows.append((dotted, target.get("default", "(required)" if key in node.get("required", []) else ""),
                         " ".join(str(target.get("description", "")).split())))
            walk(target, dotted + ".")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and ("$ref" in extra or "properties" in extra):
            walk(extra, prefix + "<name>.")

    walk(schema, "")
    return rows


def schema_markdown(schema: Mapping | None = None) -> str:
    """A Markdown table of every config key with its default and description."""
    lines = ["| key | default | description |", "| --- | --- | --- |"]
    for key, default, description in schema_keys(schema):
        description = description.replace("|", "\\|")
        shown = yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip() if default != "" else ""
        lines.append(f"| `{key}` | `{shown}` | {description} |" if shown else f"| `{key}` | | {description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m sonodiff.config > config/README.md keys table
    print(schema_markdown(), end="")
