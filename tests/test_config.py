"""Config validation: defaults filled, bad keys and types named, README in sync, paper config valid."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import ROOT

from sonodiff.config import guidance_weight, load_config, resolve, schema_markdown, validate_config
from sonodiff.errors import InputError


def test_default_and_paper_configs_validate(repo_root):
    default = load_config(repo_root / "config" / "config.yaml")
    paper = load_config(repo_root / "config" / "paper.yaml")
    assert {"baseline", "bmaps"} <= set(default["variants"])
    assert paper["diffusion"]["num_steps"] == 2000
    assert (paper["sample"]["sampler"], paper["sample"]["steps"]) == ("ancestral", "full")
    assert resolve(paper, "camus", "bmaps")["train"]["steps"] == 28000
    assert resolve(paper, "segthy", "bmaps")["train"]["steps"] == 50000
    assert resolve(paper, "liver", "baseline")["train"]["steps"] == 36000


def test_defaults_are_filled_from_the_schema(default_config):
    cfg = copy.deepcopy(default_config)
    del cfg["train"]["grad_clip"]
    del cfg["datasets"]["phantom_camus"]["pad_square"]
    filled = validate_config(cfg)
    assert filled["train"]["grad_clip"] == 1.0
    assert filled["datasets"]["phantom_camus"]["pad_square"] is False


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["train"].update(stpes=3), "config key train.stpes: unknown key"),
        (lambda c: c["train"].update(steps="many"), "config key train.steps:"),
        (lambda c: c["diffusion"].update(b_min=1.5), "config key diffusion.b_min:"),
        (lambda c: c["diffusion"].update(alpha_schedule="quadratic"), "config key diffusion.alpha_schedule:"),
        (lambda c: c["datasets"]["phantom_camus"].update(train={"steps": 0}), "config key datasets.phantom_camus.train -> steps:"),
        (lambda c: c["variants"].update(odd={"b_min": 0}), "config key variants.odd -> b_min:"),
        (lambda c: c["datasets"]["phantom_camus"]["source"].update(url="http://x/y.zip"), "config key datasets.phantom_camus.source:"),
        (lambda c: c["split"]["fractions"].update(test=0.5), "config key split.fractions:"),
        (lambda c: c["datasets"]["phantom_camus"].pop("labels"), "config key datasets.phantom_camus.labels: required key is missing"),
    ],
)
def test_bad_config_names_the_key(default_config, edit, key):
    cfg = copy.deepcopy(default_config)
    edit(cfg)
    with pytest.raises(InputError) as err:
        validate_config(cfg)
    message = str(err.value)
    assert message.startswith(key), message
    assert "\n" not in message


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c["sample"].update(steps="ddim10"),
     "config key sample.steps: 'ddim10' is the old form; set sample.sampler: ddim and sample.steps: 10"),
    (lambda c: c["datasets"]["phantom_camus"].update(sample={"steps": "ddim25"}),
     "config key datasets.phantom_camus.sample.steps: 'ddim25' is the old form; "
     "set datasets.phantom_camus.sample.sampler: ddim and datasets.phantom_camus.sample.steps: 25"),
])
def test_old_sampler_string_is_refused_naming_the_new_keys(default_config, edit, message):
    cfg = copy.deepcopy(default_config)
    edit(cfg)
    with pytest.raises(InputError) as err:
        validate_config(cfg)
    assert str(err.value) == message


def test_sampler_and_steps_keys(default_config):
    from sonodiff.config import load_schema
    from sonodiff.diffusion.sampling import SAMPLERS

    assert load_schema()["$defs"]["sample"]["properties"]["sampler"]["enum"] == sorted(SAMPLERS)
    assert default_config["sample"]["sampler"] == "ancestral" and default_config["sample"]["steps"] == 20
    for steps in (1, 50, "full"):  # at most diffusion.num_steps (100)
        cfg = copy.deepcopy(default_config)
        cfg["sample"].update(sampler="ancestral", steps=steps)
        assert validate_config(cfg)["sample"]["steps"] == steps
    for bad in (0, "fast", 2.5, "ddim"):
        cfg = copy.deepcopy(default_config)
        cfg["sample"]["steps"] = bad
        with pytest.raises(InputError, match="^config key sample.steps:"):
            validate_config(cfg)
    cfg = copy.deepcopy(default_config)
    cfg["sample"]["sampler"] = "plms"
    with pytest.raises(InputError, match="^config key sample.sampler:"):
        validate_config(cfg)
    del cfg["sample"]["sampler"]
    assert validate_config(cfg)["sample"]["sampler"] == "ancestral"  # the schema's default


def test_url_needs_sha256(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["datasets"]["phantom_camus"]["source"] = {"url": "http://127.0.0.1/x.zip"}
    with pytest.raises(InputError, match="sha256"):
        validate_config(cfg)


def test_variant_overrides_diffusion_only_for_that_variant(default_config):
    base = resolve(default_config, "phantom_camus", "baseline")
    bmaps = resolve(default_config, "phantom_camus", "bmaps")
    assert base["diffusion"]["b_min"] == 1.0
    assert bmaps["diffusion"]["b_min"] == 0.97
    assert base["model"] == bmaps["model"]


def test_config_readme_lists_every_key(repo_root):
    readme = (repo_root / "config" / "README.md").read_text()
    assert schema_markdown() in readme, "regenerate with: python -m sonodiff.config"


def test_augment_override_applies_to_that_dataset_only(segthy_config, repo_root):
    cfg = copy.deepcopy(segthy_config)
    cfg["datasets"]["phantom_segthy"]["augment"] = {"copies": 0}
    cfg = validate_config(cfg)
    assert resolve(cfg, "phantom_segthy")["augment"]["copies"] == 0
    assert resolve(cfg, "phantom_camus")["augment"]["copies"] == 5
    assert resolve(cfg, "phantom_segthy")["augment"]["splits"] == ["train", "val"]   # the other keys merged
    assert "augment" not in resolve(cfg, "phantom_segthy")["data"]
    cfg["datasets"]["phantom_segthy"]["augment"] = {"copies": -1}
    with pytest.raises(InputError, match=r"^config key datasets.phantom_segthy.augment -> copies:"):
        validate_config(cfg)
    paper = load_config(repo_root / "config" / "paper.yaml")
    assert resolve(paper, "camus")["augment"]["copies"] == 5 and resolve(paper, "segthy")["augment"]["copies"] == 0


def test_vlb_convention_key(default_config, repo_root):
    assert default_config["diffusion"]["vlb_convention"] == "sum"
    paper = load_config(repo_root / "config" / "paper.yaml")
    assert (paper["diffusion"]["vlb_convention"], paper["diffusion"]["vlb_weight"]) == ("per_step", 0.001)
    cfg = copy.deepcopy(default_config)
    del cfg["diffusion"]["vlb_convention"]
    assert validate_config(cfg)["diffusion"]["vlb_convention"] == "sum"   # the schema's default: today's loss
    cfg["diffusion"]["vlb_convention"] = "mean"
    with pytest.raises(InputError, match="^config key diffusion.vlb_convention:"):
        validate_config(cfg)


def test_guidance_weight_from_either_convention(default_config):
    """w = guidance_scale (Ho & Salimans), or w = s - 1 from SDM's guidance_scale_sdm; not both."""
    assert guidance_weight({"guidance_scale": 2.5}) == 2.5                        # an old config: no sdm key
    assert guidance_weight({"guidance_scale": 0.0, "guidance_scale_sdm": 3.0}) == 2.0
    assert guidance_weight({"guidance_scale": 0.0, "guidance_scale_sdm": 1.0}) == 0.0
    cfg = copy.deepcopy(default_config)
    cfg["sample"].update(guidance_scale=1.5, guidance_scale_sdm=2.5)
    with pytest.raises(InputError) as err:
        validate_config(cfg)
    message = str(err.value)
    assert message.startswith("config key sample.guidance_scale_sdm:") and "\n" not in message
    assert "sample.guidance_scale (" in message
    cfg["sample"]["guidance_scale"] = 0.0
    cfg["datasets"]["phantom_camus"]["sample"] = {"guidance_scale": 1.0}
    with pytest.raises(InputError, match=r"^config key datasets.phantom_camus.sample.guidance_scale_sdm:"):
        validate_config(cfg)
    cfg["sample"]["guidance_scale_sdm"] = 0.5
    with pytest.raises(InputError, match=r"^config key sample.guidance_scale_sdm:"):    # s >= 1 (w >= 0)
        validate_config(cfg)


def test_config_sections_keep_the_job_identity_and_only_the_named_sections(repo_root):
    from sonodiff.config import IDENTITY_KEYS, config_sections, load_config, resolve

    cfg = load_config(repo_root / "config" / "test.yaml")
    dataset = next(iter(cfg["datasets"]))
    resolved = resolve(cfg, dataset, "bmaps")
    cut = config_sections(resolved, ["metrics"])
    assert list(cut) == [*IDENTITY_KEYS, "metrics"] and cut["metrics"] == resolved["metrics"]
    assert cut["variant"] == "bmaps" and cut["dataset"] == dataset
    with pytest.raises(KeyError, match="nope"):
        config_sections(resolved, ["nope"])


def _edit(path: str, value):
    """A function setting the dotted key ``path`` of a raw config to ``value``."""
    def edit(raw):
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return edit


def _rename_dataset(raw):
    raw["datasets"]["../../x"] = raw["datasets"].pop("phantom_camus")


@pytest.mark.parametrize("edit, message", [
    (_edit("train.lr", float("nan")), "config key train.lr: must be a finite number, got nan"),
    (_edit("metrics.dynamic_range_db", float("inf")), "config key metrics.dynamic_range_db: must be a finite number, got inf"),
    (_edit("datasets.phantom_camus.train", {"lr": float("-inf")}), "config key datasets.phantom_camus.train -> lr: must be a finite number, got -inf"),
    (_edit("train.steps", 4.0), "config key train.steps: must be an integer, got 4.0"),
    (_edit("sample.steps", 10.0), "config key sample.steps: must be an integer, got 10.0"),
    (_edit("split.seed", -1), "config key split.seed: -1 is less than the minimum of 0"),
    (_edit("sample.steps", -3), "config key sample.steps: -3 is not valid under any of the given schemas"),
    (_rename_dataset, "config key datasets: '../../x' is not a valid name"),
    (lambda raw: raw["variants"].update({"../v": {"b_min": 0.9}}), "config key variants: '../v' is not a valid name"),
    (_edit("datasets.phantom_camus.img_size", 30), "config key datasets.phantom_camus.img_size: 30 is not a multiple of 4"),
    (_edit("sample.steps", 101), "config key sample.steps: 101 sampling steps exceed the 100 steps of the process"),
])
def test_bad_numbers_names_and_cross_key_conflicts_are_one_line(edit, message):
    """Non-finite numbers, integral floats for integers, negative seeds, unsafe names, an image
    size the UNet cannot halve, more sampling steps than the process has: each a one-line error
    naming the key, before any job."""
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["model"]["channels"], raw["model"]["attention_levels"] = [8, 16, 32], [False, False, False]
    raw["diffusion"]["num_steps"] = 100
    edit(raw)
    with pytest.raises(InputError) as err:
        validate_config(raw)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
