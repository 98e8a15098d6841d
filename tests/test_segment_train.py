"""Segmentation check, training: the UNet and losses are MONAI's and torch's; the recipes build
what they say (echo_from_noise: LeakyReLU 0.1, no sector class, cosine rate, augmentation that moves
image and label together and is a function of (seed, step)); a tiny UNet learns an easy shape in a
fixed number of steps; resume is exact, per seed; one whole job per source (sets -> every seed ->
test Dice -> record, model, predictions) and its table and figure."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from test_segment import SPLITS, make_augment_and_samples, make_prepared

TINY = {"recipe": "sonodiff", "channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 1, "batch_size": 8,
        "lr": 1.0e-2, "seeds": [0], "sources": ["real"], "val_every": 3}
#: The smallest network of the job tests.
SMALL = TINY | {"channels": [4, 8, 16], "batch_size": 4}
DISK = {"disk": {"label": "disk", "ids": [1]}}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _network(recipe: str, **changes):
    from sonodiff.segment.recipes import get_recipe
    from sonodiff.segment.train import network_spec

    return network_spec(TINY | changes, get_recipe(recipe))


def test_network_and_losses_are_monais_and_torchs():
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    from sonodiff.segment.train import LOSSES, build_unet

    net = build_unet(5, _network("sonodiff"))
    assert isinstance(net, UNet) and any(isinstance(m, torch.nn.PReLU) for m in net.modules())
    assert isinstance(LOSSES["dice_ce"](), DiceCELoss)
    logits, labels = torch.randn(2, 4, 8, 8), torch.randint(0, 4, (2, 1, 8, 8))
    assert torch.allclose(LOSSES["ce"]()(logits, labels), torch.nn.functional.cross_entropy(logits, labels[:, 0]))


def test_echo_from_noise_recipe_builds_leaky_relu_cosine_rate_and_no_sector_class():
    from sonodiff.segment.data import label_classes
    from sonodiff.segment.recipes import get_recipe
    from sonodiff.segment.train import build_unet

    recipe = get_recipe("echo_from_noise")
    net = build_unet(4, _network("echo_from_noise", num_res_units=0))
    acts = [m for m in net.modules() if isinstance(m, (torch.nn.LeakyReLU, torch.nn.PReLU))]
    assert acts and all(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.1 for m in acts)
    assert net(torch.zeros(1, 1, 32, 32)).shape == (1, 4, 32, 32)
    # CAMUS-like prepared ids 0-3 and sector 4: 4 classes, the sector is background, ids map back
    classes = label_classes(5, 4, recipe.sector_class)
    assert classes.network_classes == 4 and classes.to_class.tolist() == [0, 1, 2, 3, 0]
    assert classes.to_id.tolist() == [0, 1, 2, 3]
    merged = label_classes(3, 1, False)                            # a sector id below a structure's
    assert merged.to_class.tolist() == [0, 0, 1] and merged.to_id.tolist() == [0, 2]
    kept = label_classes(5, 4, get_recipe("sonodiff").sector_class)
    assert kept.network_classes == 5 and kept.to_id.tolist() == list(range(5))
    lrs = [recipe.learning_rate(1e-3, s, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[50] == pytest.approx(5.5e-4) and lrs[-1] > 1e-4
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and recipe.learning_rate(1e-3, 100, 100) == pytest.approx(1e-4)
    assert get_recipe("sonodiff").learning_rate(1e-3, 70, 100) == 1e-3 and not get_recipe("sonodiff").augment
    from sonodiff.errors import InputError
    with pytest.raises(InputError, match="segment.recipe"):
        get_recipe("nnunet")


def test_augmentation_moves_image_and_label_together_and_is_a_function_of_seed_and_step():
    from sonodiff.segment.augment import augment_batch, echo_from_noise_transform

    rng = np.random.default_rng(0)
    labels = np.zeros((6, 1, 32, 32), np.int64)
    labels[:, :, 6:20, 4:14] = 1                                   # off-centre: a flip shows
    labels[:, :, 22:28, 16:30] = 2
    images = (labels == 1).astype(np.float32)                      # gamma keeps 0 and (nearly) 1
    transform = echo_from_noise_transform(32)
    a_img, a_lab = augment_batch(transform, images, labels, seed=3, step=7)
    assert a_img.dtype == np.float32 and a_lab.dtype == np.int64 and a_lab.shape == labels.shape
    assert np.array_equal(a_img > 0.5, a_lab == 1)                 # the same geometry for both
    assert set(np.unique(a_lab).tolist()) <= {0, 1, 2}             # nearest: no new ids
    assert not all(np.array_equal(a_lab[i], labels[i]) for i in range(6))
    b_img, b_lab = augment_batch(echo_from_noise_transform(32), images, labels, seed=3, step=7)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)   # fresh transform, same draw
    _, c_lab = augment_batch(transform, images, labels, seed=3, step=8)
    _, d_lab = augment_batch(transform, images, labels, seed=4, step=7)
    assert not np.array_equal(a_lab, c_lab) and not np.array_equal(a_lab, d_lab)
    grey = rng.uniform(0.05, 0.95, (4, 1, 32, 32)).astype(np.float32)
    g_img, _ = augment_batch(transform, grey, np.zeros((4, 1, 32, 32), np.int64), seed=0, step=0)
    assert not np.allclose(g_img, grey) and 0.0 <= g_img.min() and g_img.max() <= 1.0


def test_data_order_is_a_function_of_seed_and_step():
    from sonodiff.segment.train import batch_indices, validation_steps

    n, batch = 10, 4
    order = np.concatenate([batch_indices(n, s, batch, seed=1) for s in range(5)])  # 20 positions: 2 passes
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:]) == list(range(10))
    assert np.array_equal(batch_indices(n, 3, batch, seed=1), order[12:16])      # any step on its own
    assert not np.array_equal(np.concatenate([batch_indices(n, s, batch, seed=2) for s in range(5)]), order)
    assert validation_steps(10, 3) == [3, 6, 9, 10] and validation_steps(6, 3) == [3, 6]


def _disk_sets(tmp_path, splits=SPLITS):
    from sonodiff.segment.data import PngSegmentationSet, build_sets

    manifest = make_prepared(tmp_path, splits, per_patient=2, kind="disks")
    return {k: PngSegmentationSet(v, 3, 32) for k, v in build_sets(manifest, "real").items()}


def test_tiny_unet_segments_bright_disks_on_noise(tmp_path):
    from sonodiff.segment.evaluate import dice_per_structure
    from sonodiff.segment.train import build_unet, fit, predict

    splits = {f"p{i}": "train" for i in range(24)} | {"v0": "val", "v1": "val", "t0": "test", "t1": "test",
                                                     "t2": "test", "t3": "test"}
    data = _disk_sets(tmp_path, splits)
    seg = TINY | {"steps": 72, "val_every": 6}
    result = fit(data["train"], data["val"], DISK, seg, 0, torch.device("cpu"), progress=False)
    assert [r["step"] for r in result["history"]] == list(range(6, 73, 6))
    assert result["best_val_dice"] == max(r["val_dice"] for r in result["history"])
    assert all(r["lr"] == 1e-2 for r in result["history"]) and result["seed"] == 0
    model = build_unet(3, _network("sonodiff"))
    model.load_state_dict(result["state_dict"])
    pred, true = predict(model, data["test"], torch.device("cpu"), 8)
    dice = dice_per_structure(pred, true, DISK)
    assert dice.shape == (8, 1)
    assert np.nanmean(dice) > 0.9


def test_resume_continues_exactly(tmp_path, caplog):
    from sonodiff.segment.train import fit

    data = _disk_sets(tmp_path)
    cpu = torch.device("cpu")

    def run(steps, folder, seed=0, **changes):
        return fit(data["train"], data["val"], DISK, TINY | {"steps": steps} | changes, seed, cpu,
                   checkpoint_dir=tmp_path / folder, progress=False)

    fresh = run(8, "a")
    assert [r["step"] for r in fresh["history"]] == [3, 6, 8]
    run(6, "b")                                     # interrupted at step 6, a validation step of the 8-step run
    resumed = run(8, "b")
    assert resumed["history"] == fresh["history"] and resumed["best_step"] == fresh["best_step"]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 8
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    # other settings or another seed: the old checkpoint is set aside, not resumed
    with caplog.at_level(logging.WARNING):
        other = run(3, "b", lr=1e-3)
    assert len(other["history"]) == 1 and other["history"] != fresh["history"][:1]
    assert f"set checkpoint {tmp_path / 'b' / 'last.pt'} aside to {tmp_path / 'b' / 'stale'}: made by another " \
           "run (segment.lr: 0.001 here, 0.01 in the checkpoint)" in caplog.text
    assert torch.load(tmp_path / "b" / "stale" / "last.pt", weights_only=True)["step"] == 8
    assert run(3, "a", seed=1)["history"] != fresh["history"][:1]
    # step 8 (the end of the 8-step run) is no validation step of a 10-step run (3, 6, 9, 10): it starts afresh
    longer = run(10, "a")
    assert [r["step"] for r in longer["history"]] == [3, 6, 9, 10]
    assert longer["history"][:2] == fresh["history"][:2] and longer["history"] == run(10, "e")["history"]


def test_a_broken_or_foreign_checkpoint_is_set_aside_and_killed_writes_swept(tmp_path, caplog):
    """A truncated last.pt, one with entries missing, and one without the run's identity are moved
    to stale/ (training starts afresh); the temporary of a killed write goes, a user's file stays."""
    from sonodiff.segment.train import fit

    data = _disk_sets(tmp_path)
    folder = tmp_path / "ckpt"

    def run():
        return fit(data["train"], data["val"], DISK, TINY | {"steps": 3}, 0, torch.device("cpu"),
                   checkpoint_dir=folder, progress=False)

    fresh = run()
    blob = (folder / "last.pt").read_bytes()
    (folder / ".last.pt.x8_k2p0q.tmp").write_bytes(blob[:100])   # a write killed halfway
    (folder / ".keep.tmp").write_text("a user's file")
    for broken, says in ((blob[: len(blob) // 2], "unreadable"),
                         ({"step": 3, "fingerprint": "f"}, "missing entries ['best_step'"),
                         ({**torch.load(folder / "last.pt", weights_only=True), "fingerprint": "0" * 64,
                           "identity": None}, "made by another run (the checkpoint records no identity)")):
        if isinstance(broken, bytes):
            (folder / "last.pt").write_bytes(broken)
        else:
            torch.save(broken, folder / "last.pt")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert run()["history"] == fresh["history"]          # trained afresh, the same
        assert f"set checkpoint {folder / 'last.pt'} aside" in caplog.text and says in caplog.text
        assert (folder / "stale" / "last.pt").is_file()
    assert sorted(p.name for p in folder.iterdir()) == [".keep.tmp", "last.pt", "stale"]


def _job(tmp_path, name, recipe="sonodiff", seeds=(0, 1), sources=("real", "synthetic_bmaps"), steps=4):
    """A tiny CAMUS-like dataset with samples, and a function that runs one source's job."""
    from sonodiff.contracts.dataset import PreparedDataset
    from sonodiff.segment.train import run_segmentation

    manifest = make_prepared(tmp_path, SPLITS, per_patient=2, kind="camus")
    _, samples = make_augment_and_samples(tmp_path, manifest, "bmaps", copies=1)
    dataset = PreparedDataset.in_dir(manifest.parent)
    cfg = {"dataset": "tiny", "device": "cpu", "seed": 0, "metrics": {"bootstrap": 50},
           "segment": SMALL | {"recipe": recipe, "steps": steps, "val_every": 2, "seeds": list(seeds),
                               "sources": list(sources)}}

    def run(source, out_name=name):
        out = tmp_path / out_name / source
        return run_segmentation(dataset, source, {"bmaps": samples}, cfg, out / "metrics.json", out / "model.pt",
                                out / "predictions.npz", threads=1, progress=False), out

    return dataset, run


def test_resume_after_a_kill_is_exact_per_seed(tmp_path, monkeypatch):
    """echo_from_noise (augmentation, cosine rate) with two seeds, killed during the second seed's
    training: the rerun keeps the first seed (no step trained again) and resumes the second to the
    very record and weights of an uninterrupted job."""
    import sonodiff.segment.train as train

    _, run = _job(tmp_path, "full", recipe="echo_from_noise")
    full, full_dir = run("real")
    saves: list[str] = []
    real_save = train._save

    def killing_save(obj, path):
        real_save(obj, path)
        saves.append(str(path))
        if "seed_1" in str(path):
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(train, "_save", killing_save)
    with pytest.raises(KeyboardInterrupt):
        run("real", "killed")
    assert [p.split("/")[-2] for p in saves] == ["seed_0", "seed_0", "seed_1"]    # seed 1 at its step 2 of 4
    killed = tmp_path / "killed" / "real"
    stale = [killed / ".model.pt.ab12cd34.tmp", killed / "checkpoints" / "seed_1" / ".last.pt.ab12cd34.tmp"]
    for path in stale:  # what a kill -9 during those writes would leave
        path.write_bytes(b"half a file")
    saves.clear()
    monkeypatch.setattr(train, "_save", lambda obj, path: (real_save(obj, path), saves.append(str(path))))
    resumed, resumed_dir = run("real", "killed")
    assert not any("seed_0/last.pt" in p for p in saves)                          # seed 0 not trained again
    assert not any(p.exists() for p in stale) and not list(killed.rglob(".*.tmp"))
    for key in ("per_image", "per_seed", "dice"):
        assert resumed[key] == full[key], key
    a = torch.load(full_dir / "model.pt", weights_only=True)
    b = torch.load(resumed_dir / "model.pt", weights_only=True)
    for ea, eb in zip(a["seeds"], b["seeds"]):
        assert ea["seed"] == eb["seed"] and all(torch.equal(ea["state_dict"][k], eb["state_dict"][k])
                                                for k in ea["state_dict"])


def test_whole_job_then_table_and_figure(tmp_path):
    from sonodiff.contracts.segmentation import read_predictions
    from sonodiff.report.segmentation_table import write_segmentation_table
    from sonodiff.segment.figures import segment_figures
    from sonodiff.segment.train import load_segmenter

    dataset, run = _job(tmp_path, "segment")
    layout = {"tiny": {"manifest": str(dataset.manifest), "info": str(dataset.info_path),
                       "sector": str(dataset.sector_path), "figure": str(tmp_path / "fig" / "tiny.png"),
                       "metrics": {}, "predictions": {}}}
    for source in ("real", "synthetic_bmaps"):
        m, out = run(source)
        layout["tiny"]["metrics"][source] = str(out / "metrics.json")
        layout["tiny"]["predictions"][source] = str(out / "predictions.npz")
        assert m["counts"] == {"train": 6, "val": 2, "test": 4, "test_patients": 2, "seeds": 2}
        assert m["seeds"] == [0, 1] and m["recipe"] == "sonodiff" and m["train"]["steps"] == 4
        assert [[r["step"] for r in s["history"]] for s in m["per_seed"]] == [[2, 4], [2, 4]]
        assert list(m["dice"]) == ["lv_endo", "lv_epi", "la", "structure_mean"]
        per_image = m["per_image"]
        assert per_image["patient_id"] == ["p4", "p4", "p5", "p5"] and len(per_image["sample_id"]) == 4
        by_seed = np.array([[s[k] for k in ("lv_endo", "lv_epi", "la")] for s in per_image["by_seed"]])
        assert by_seed.shape == (2, 3, 4) and [s["seed"] for s in per_image["by_seed"]] == [0, 1]
        assert np.allclose(per_image["la"], by_seed[:, 2].mean(axis=0))             # averaged over seeds
        seed_means = by_seed.mean(axis=2)                                           # (seed, structure)
        assert m["dice"]["lv_endo"]["per_seed"] == pytest.approx(seed_means[:, 0].tolist())
        assert m["dice"]["lv_endo"]["mean"] == pytest.approx(seed_means[:, 0].mean())
        assert m["dice"]["lv_endo"]["seed_std"] == pytest.approx(seed_means[:, 0].std(ddof=1))
        stored = json.loads((out / "metrics.json").read_text())
        assert stored["source"] == source and stored["format"] == "camus"
        for seed in (0, 1):
            _, ckpt = load_segmenter(out / "model.pt", seed)
            assert ckpt["seed"] == seed and ckpt["meta"]["source"] == source and ckpt["num_classes"] == 5
            assert (out / "checkpoints" / f"seed_{seed}" / "last.pt").is_file()
        preds = read_predictions(out / "predictions.npz")
        assert list(preds) == per_image["sample_id"]
        assert all(p.shape == (32, 32) and p.max() < 5 for p in preds.values())
    write_segmentation_table(layout["tiny"]["metrics"].values(), tmp_path / "t.csv", tmp_path / "t.md",
                             tmp_path / "t.tex")
    md = (tmp_path / "t.md").read_text()
    assert "synthetic_bmaps - real (paired)" in md and "4 test images of 2 patients; 2 seeds per source" in md
    segment_figures(layout)
    png = tmp_path / "fig" / "tiny.png"
    assert png.stat().st_size > 1000 and not list(png.parent.glob(".*tmp"))


def test_echo_from_noise_job_never_predicts_the_sector(tmp_path):
    from sonodiff.contracts.segmentation import read_predictions
    from sonodiff.segment.train import load_segmenter

    _, run = _job(tmp_path, "echo", recipe="echo_from_noise", seeds=(0,), steps=2)
    m, out = run("real")
    model, ckpt = load_segmenter(out / "model.pt")
    assert ckpt["num_classes"] == 4 and ckpt["to_id"] == [0, 1, 2, 3] and m["recipe"] == "echo_from_noise"
    assert any(isinstance(x, torch.nn.LeakyReLU) for x in model.modules())
    assert all(p.max() < 4 for p in read_predictions(out / "predictions.npz").values())   # sector id 4 never
    assert np.isfinite(m["dice"]["structure_mean"]["mean"]) and m["per_seed"][0]["history"][0]["lr"] < 1e-2
