"""Figures of the latent models (Freiche et al. figs. 3-4): samples per class beside a real image
of the class, and samples per conditioning mask beside the mask and its real image, variants side
by side."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sonodiff.contracts.manifest import read_manifest, write_manifest
from test_segment import _png, make_prepared

SPLITS = {f"p{i}": s for i, s in enumerate(["train"] * 6 + ["val"] * 3 + ["test"] * 3)}
#: Class of each patient: every class in the test split, BUSI's names.
CLASS_OF = {f"p{i}": ("normal", "benign", "malignant")[i % 3] for i in range(12)}


def _image(rng, size=32):
    return rng.integers(0, 255, (size, size)).astype(np.uint8)


@pytest.fixture()
def tree(tmp_path):
    """A prepared dataset with a class column; per variant a prompt-only and a ControlNet set
    (baseline: two samples per map, bmaps: one; bmaps lacks malignant prompt samples)."""
    from sonodiff.contracts.dataset import PreparedDataset

    manifest = make_prepared(tmp_path, SPLITS, per_patient=1, kind="disks")
    prep = read_manifest(manifest)
    prep["class"] = prep["patient_id"].map(CLASS_OF)
    write_manifest(prep, manifest)
    rng = np.random.default_rng(0)
    maps = prep[prep["split"].isin(["val", "test"])]
    out = {"prepared": PreparedDataset.in_dir(manifest.parent), "prompt": [], "controlnet": []}
    plan = (("baseline", 2, ("normal", "benign", "malignant")), ("bmaps", 1, ("normal", "benign")))
    for variant, per_mask, classes in plan:
        folder = tmp_path / "samples" / f"{variant}_prompt"
        rows = [{"sample_id": f"{c}_{k}", "image": _png(_image(rng), folder / "images" / f"{c}_{k}.png"), "label": "",
                 "real_image": "", "source_sample_id": "", "patient_id": "", "split": "", "seed": k, "class": c}
                for c in classes for k in range(5)]
        write_manifest(pd.DataFrame(rows), folder / "manifest.csv")
        out["prompt"].append((variant, folder / "manifest.csv"))
        folder = tmp_path / "samples" / f"{variant}_controlnet"
        rows = [{"sample_id": f"{r.sample_id}_{k}", "label": r.label,
                 "image": _png(_image(rng), folder / "images" / f"{r.sample_id}_{k}.png"),
                 "real_image": r.image, "source_sample_id": r.sample_id, "patient_id": r.patient_id,
                 "split": r.split, "seed": k, "class": CLASS_OF[r.patient_id]}
                for r in maps.itertuples() for k in range(per_mask)]
        write_manifest(pd.DataFrame(rows), folder / "manifest.csv")
        out["controlnet"].append((variant, folder / "manifest.csv"))
    return out


def _height(path) -> int:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size[1]


def test_class_order_real_examples_and_class_grid(tree):
    from sonodiff.report.latent_figures import class_grid, class_order, prompt_samples, real_by_class

    assert class_order(["malignant", "", "other", "benign", "normal", "benign"]) == ["normal", "benign", "malignant",
                                                                                      "other"]
    real = real_by_class(tree["prepared"])
    assert set(real) == {"normal", "benign", "malignant"}
    prep = read_manifest(tree["prepared"].manifest).set_index("image")
    assert all(prep.loc[p, "split"] == "test" for p in real.values())            # a held-out real image
    frames = [(v, prompt_samples(p)) for v, p in tree["prompt"]]
    cells, cols, rows = class_grid(frames, real, 3)
    assert rows == ["normal", "benign", "malignant"]
    assert cols == ["real", "baseline", "", "", "B-maps", "", ""] and len(cells) == 3 * 7
    grid = np.array(cells, dtype=object).reshape(3, 7)
    assert all(c is not None for c in grid[:, :4].ravel())                        # real + 3 baseline samples
    assert all(c is None for c in grid[2, 4:]) and all(c is not None for c in grid[:2, 4:].ravel())


def test_mask_grid_groups_samples_by_map_for_one_or_several_per_map(tree):
    from sonodiff.errors import InputError
    from sonodiff.report.latent_figures import mask_grid, mask_samples

    frames = [(v, mask_samples(p)) for v, p in tree["controlnet"]]
    cells, cols, rows = mask_grid(frames, n_masks=3, per_mask=3, sector_id=2)
    assert cols == ["mask", "real", "baseline", "", "B-maps", ""]                 # two per map at most
    assert rows == ["normal", "benign", "malignant"]                              # spread over the classes
    grid = np.array(cells, dtype=object).reshape(3, 6)
    assert all(c.shape == (32, 32, 3) for c in grid[:, 0])                        # coloured maps
    assert all(c is not None for c in grid[:, :5].ravel()) and all(c is None for c in grid[:, 5])
    one = mask_grid(frames[1:], n_masks=10, per_mask=3)
    assert one[1] == ["mask", "real", "B-maps"] and len(one[2]) == 6              # every map once
    other = frames[1][1].assign(label=frames[1][1]["real_image"])
    with pytest.raises(InputError, match="share no conditioning map"):
        mask_grid([frames[0], ("bmaps", other)], 3, 3)


def test_figures_render_and_grow_with_rows(tree, tmp_path):
    from sonodiff.report.latent_figures import render_class_figure, render_latent_figures, render_mask_figure

    outputs = {"classes": tmp_path / "f" / "classes.png", "masks": tmp_path / "f" / "masks.png"}
    render_latent_figures(dataset="busi", prepared=tree["prepared"], prompt=tree["prompt"],
                          controlnet=tree["controlnet"], outputs=outputs, n_columns=3, n_masks=4, per_mask=2)
    assert all(_height(p) > 100 for p in outputs.values()) and not list((tmp_path / "f").glob(".*tmp"))
    two_classes = render_class_figure(tree["prompt"][1:], tree["prepared"], tmp_path / "two.png", n=3)
    three_classes = render_class_figure(tree["prompt"][:1], tree["prepared"], tmp_path / "three.png", n=3)
    assert _height(three_classes) > _height(two_classes)
    small = render_mask_figure(tree["controlnet"], tmp_path / "m2.png", n_masks=2, per_mask=1)
    large = render_mask_figure(tree["controlnet"], tmp_path / "m5.png", n_masks=5, per_mask=1)
    assert _height(large) > _height(small)
