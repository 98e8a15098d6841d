"""Training: kill -9 and resume, truncated and foreign checkpoints, temporaries of killed writes,
label maps of the wrong size, non-finite losses, data order, outputs, the learning-rate and EMA
schedules."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sonodiff.train import TrainingDiverged, train, train_job
from sonodiff.train.checkpoint import latest_valid, list_checkpoints, save_checkpoint
from sonodiff.errors import InputError
from sonodiff.train.data import batch_indices, load_training_set
from sonodiff.train.loop import trajectory_config
from sonodiff.train.schedule import TrainSchedule
from tiny_data import ROOT, make_dataset, prepared, tiny_config


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sonodiff.cli", *args]


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "tiny")


def run(cfg, data, out: Path, **kw) -> Path:
    """Train into the folder ``out`` (its model file, checkpoints, logs)."""
    return train(cfg, prepared(data), out / "model.pt", progress=False, **kw)


@pytest.mark.slow
def test_kill_9_then_rerun_gives_the_uninterrupted_weights(tmp_path, data, caplog):
    cfg = tiny_config(tmp_path, train={"steps": 40, "checkpoint_every": 5})  # also writes config.yaml
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the killed subprocess runs with --threads 1
    try:
        run(cfg, data, tmp_path / "full")

        out = tmp_path / "killed"
        args = ["train", "--config", str(tmp_path / "config.yaml"), "--dataset", "tiny", "--variant", "bmaps",
                "--data", str(data), "--out", str(out), "--device", "cpu", "--threads", "1", "--no-progress"]
        proc = subprocess.Popen(cli(*args), env=dict(os.environ, OMP_NUM_THREADS="1"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while not list_checkpoints(out / "checkpoints") and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
        assert not (out / "model.pt").exists()
        killed_at = list_checkpoints(out / "checkpoints")[0][0]
        assert 0 < killed_at < 40

        with caplog.at_level(logging.INFO):
            run(cfg, data, out)  # the rerun: same call, no resume flag
    finally:
        torch.set_num_threads(threads)
    assert f"resuming from {out / 'checkpoints' / f'step_{killed_at:08d}.pt'}" in caplog.text
    assert_same_weights(weights(out / "model.pt"), weights(tmp_path / "full" / "model.pt"))
    log = pd.read_csv(out / "train_log.csv")
    assert log["step"].tolist() == list(range(2, 41, 2))  # every log_every steps, none twice
    assert not list(out.rglob(".*.tmp"))  # a write the kill cut short left nothing behind


#: A learning rate that does not depend on train.steps, so that a shorter run's checkpoints resume.
CONSTANT = {"lr_schedule": "constant", "warmup_steps": 0}


def test_truncated_checkpoint_is_skipped_for_the_previous_one(tmp_path, data, caplog):
    cfg = tiny_config(train=CONSTANT)
    run(cfg, data, tmp_path / "full")
    short = tiny_config(train={**CONSTANT, "steps": 8})
    run(short, data, tmp_path / "run")
    ckpts = dict(list_checkpoints(tmp_path / "run" / "checkpoints"))
    assert sorted(ckpts) == [4, 8]
    blob = ckpts[8].read_bytes()
    ckpts[8].write_bytes(blob[: len(blob) // 2])
    with caplog.at_level(logging.WARNING):
        path, state = latest_valid(tmp_path / "run" / "checkpoints")
    assert path == ckpts[4] and state["step"] == 4
    assert "skipping checkpoint" in caplog.text and "step_00000008.pt" in caplog.text
    with caplog.at_level(logging.INFO):
        run(cfg, data, tmp_path / "run")  # resumes from step 4, runs to 12
    assert "step_00000004.pt (step 4 of 12)" in caplog.text
    assert_same_weights(weights(tmp_path / "run" / "model.pt"), weights(tmp_path / "full" / "model.pt"))


def test_foreign_checkpoints_are_set_aside_naming_the_first_difference(tmp_path, data, caplog):
    """Newer checkpoints of another run (other channels; a config with keys missing) move to
    stale/ with a warning, and training resumes from the next valid one."""
    run(tiny_config(train={**CONSTANT, "steps": 4}), data, tmp_path)
    ckpt = tmp_path / "checkpoints"
    state = torch.load(ckpt / "step_00000004.pt", weights_only=True)
    other = {**state["config"], "model": {**state["config"]["model"], "channels": [16, 32]}}
    save_checkpoint({**state, "step": 6, "config": other}, ckpt, keep=3)
    save_checkpoint({**state, "step": 7, "config": {"seed": state["config"]["seed"]}}, ckpt, keep=3)
    with caplog.at_level(logging.INFO):
        run(tiny_config(train={**CONSTANT, "steps": 8}), data, tmp_path)
    assert f"skipping checkpoint {ckpt / 'step_00000007.pt'}: made with another config (diffusion: " in caplog.text
    assert f"skipping checkpoint {ckpt / 'step_00000006.pt'}: made with another config (model.channels: " \
           "[8, 16] here, [16, 32] in the checkpoint)" in caplog.text
    assert "step_00000004.pt (step 4 of 8)" in caplog.text
    assert sorted(p.name for p in (ckpt / "stale").iterdir()) == ["step_00000006.pt", "step_00000007.pt"]
    assert [s for s, _ in list_checkpoints(ckpt)] == [8, 4]
    assert torch.load(tmp_path / "model.pt", weights_only=True)["step"] == 8


def test_a_kill_during_a_checkpoint_write_leaves_no_temporary_after_the_rerun(tmp_path, data):
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / ".notes.tmp").write_text("a user's file, not a write's temporary")
    pid = os.fork()
    if pid == 0:  # the child: SIGKILLed halfway through writing a checkpoint
        try:
            def dying_save(obj, handle):
                handle.write(b"PK\x03\x04 half a checkpoint")
                handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)

            torch.save = dying_save
            save_checkpoint({"step": 4}, ckpt)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    left = [p.name for p in ckpt.glob(".step_00000004.pt.*.tmp")]
    assert len(left) == 1 and not list_checkpoints(ckpt)
    run(tiny_config(train={"steps": 2, "checkpoint_every": 2}), data, tmp_path)  # the rerun
    assert not list(ckpt.glob(".step_*.tmp")) and (ckpt / ".notes.tmp").is_file()
    assert [s for s, _ in list_checkpoints(ckpt)] == [2] and (tmp_path / "model.pt").is_file()


def test_a_label_map_of_another_size_than_its_image_is_refused(tmp_path):
    root = make_dataset(tmp_path / "d", n=4)
    label = root / "labels" / "p00_img.png"
    Image.fromarray(np.asarray(Image.open(label))[:, :15]).save(label)  # 16 high, 15 wide
    with pytest.raises(InputError) as err:
        load_training_set(prepared(root))
    assert str(err.value) == (f"{label}: label map of 16x15 pixels, but its image "
                              f"{root / 'images' / 'p00_img.png'} has 16x16 (height x width)")


def test_model_file_and_checkpoint_contents(tmp_path, data):
    cfg = tiny_config(train={"steps": 4})
    path = run(cfg, data, tmp_path)
    model = torch.load(path, weights_only=True)
    assert model["step"] == 4 and model["config"] == cfg and model["spec"]["kind"] == "semantic"
    assert model["spec"]["num_classes"] == 3 and model["spec"]["out_channels"] == 2
    assert model["depth"].shape == (16, 16) and model["depth"].max() == pytest.approx(1.0)
    state = torch.load(tmp_path / "checkpoints" / "step_00000004.pt", weights_only=True)
    assert {"model", "ema", "optimizer", "rng", "sampler", "nonfinite", "config", "spec"} <= set(state)
    assert {"torch", "numpy", "python"} <= set(state["rng"])
    assert state["sampler"]["position"] == 4 * cfg["train"]["batch_size"]
    # model.pt holds the EMA weights, not the raw ones
    assert_same_weights(model["state_dict"], state["ema"])
    assert any(not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"])
    assert (tmp_path / "train_log.csv").is_file() and any((tmp_path / "tensorboard").iterdir())


def test_unconditional_model_for_data_without_labels(tmp_path):
    data = make_dataset(tmp_path / "nolabels", labelled=False)
    path = run(tiny_config(train={"steps": 2}), data, tmp_path / "out")
    assert torch.load(path, weights_only=True)["spec"]["kind"] == "unconditional"


def test_changed_config_does_not_resume_stale_checkpoints(tmp_path, data):
    run(tiny_config(train={"steps": 4}), data, tmp_path)
    run(tiny_config(train={"steps": 4, "lr": 5e-4}), data, tmp_path)
    assert (tmp_path / "checkpoints" / "stale" / "step_00000004.pt").is_file()
    assert torch.load(tmp_path / "model.pt", weights_only=True)["config"]["train"]["lr"] == 5e-4


class NaNAt:
    """A test objective: the mean of the network's output squared, NaN on the given steps."""

    def __init__(self, bad_calls):
        self.bad_calls, self.calls = set(bad_calls), 0

    def __call__(self, model_fn, x0, gen):
        t = torch.randint(0, 10, (x0.shape[0],), generator=gen)
        loss = model_fn(x0, t).pow(2).mean((1, 2, 3))
        self.calls += 1
        if self.calls in self.bad_calls:
            loss = loss * float("nan")
        return {"loss": loss, "mse": loss, "vb": torch.zeros_like(loss)}


def test_nonfinite_losses_are_skipped_and_counted(tmp_path, data, caplog):
    with caplog.at_level(logging.WARNING):
        path = run(tiny_config(train={"steps": 6, "log_every": 6}), data, tmp_path, objective=NaNAt({2, 3}))
    assert path.is_file()
    assert pd.read_csv(tmp_path / "train_log.csv")["skipped_total"].tolist() == [2]
    assert caplog.text.count("non-finite loss") == 2
    assert all(torch.isfinite(v).all() for v in weights(path).values())


def test_too_many_nonfinite_losses_stop_without_a_model(tmp_path, data):
    with pytest.raises(TrainingDiverged, match="train.max_nonfinite = 3"):
        run(tiny_config(train={"steps": 10, "max_nonfinite": 3}), data, tmp_path, objective=NaNAt(range(1, 100)))
    assert not (tmp_path / "model.pt").exists()


def test_data_order_is_a_function_of_seed_and_step():
    n, batch = 10, 4
    epoch0 = torch.cat([batch_indices(n, s, batch, seed=0) for s in range(3)])[:n]
    assert sorted(epoch0.tolist()) == list(range(n))            # each image once per epoch
    assert torch.equal(batch_indices(n, 7, batch, seed=0), batch_indices(n, 7, batch, seed=0))
    assert not torch.equal(batch_indices(n, 7, batch, seed=0), batch_indices(n, 7, batch, seed=1))
    # two processes read disjoint halves of the global batch of one process with 2x the batch
    both = torch.cat([batch_indices(n, 3, batch, 0, rank=r, world_size=2) for r in range(2)])
    assert torch.equal(both, batch_indices(n, 3, 2 * batch, 0))


@pytest.mark.slow
def test_two_process_gloo_ddp_trains(tmp_path, data):
    tiny_config(tmp_path)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "sonodiff.cli", "train", "--config", str(tmp_path / "config.yaml"), "--dataset", "tiny",
           "--variant", "baseline", "--data", str(data), "--out", str(tmp_path / "ddp"), "--device", "cpu",
           "--threads", "1", "--no-progress", "--set", "train.steps=4"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    model = torch.load(tmp_path / "ddp" / "model.pt", weights_only=True)
    assert model["step"] == 4
    state = torch.load(tmp_path / "ddp" / "checkpoints" / "step_00000004.pt", weights_only=True)
    assert state["sampler"]["world_size"] == 2
    assert all(torch.isfinite(v).all() for v in model["state_dict"].values())


@pytest.mark.slow
def test_train_job_under_torchrun_reads_the_given_files(tmp_path, data, monkeypatch):
    """train_job(nproc=2) hands torchrun the explicit dataset files and model path."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(ROOT)
    model = train_job(tiny_config(train={"steps": 2}), prepared(data), tmp_path / "elsewhere" / "weights.pt",
                      nproc=2, device="cpu", progress=False)
    assert model == tmp_path / "elsewhere" / "weights.pt" and model.is_file()
    assert (tmp_path / "elsewhere" / "train_log.csv").is_file()
    assert torch.load(model, weights_only=True)["step"] == 2


# ---------------------------------------------------------------------------- schedules

def test_learning_rate_schedule_closed_form():
    """lr(s) = lr_0 min(1, (s+1)/W) (1 + cos(pi (s-W)/(S-W)))/2 at a few steps (S = 110, W = 10)."""
    cosine = TrainSchedule(lr=1e-3, total_steps=110, warmup_steps=10, lr_schedule="cosine")
    want = {0: 1e-4, 4: 5e-4, 9: 1e-3, 10: 1e-3, 35: 1e-3 * (1 + math.cos(math.pi / 4)) / 2, 60: 5e-4,
            85: 1e-3 * (1 + math.cos(3 * math.pi / 4)) / 2, 109: 1e-3 * (1 + math.cos(math.pi * 99 / 100)) / 2,
            110: 0.0}
    for step, lr in want.items():
        assert cosine.learning_rate(step) == pytest.approx(lr, rel=1e-12, abs=1e-18), step
    assert all(cosine.learning_rate(s) > cosine.learning_rate(s + 1) for s in range(10, 110))
    warm = TrainSchedule(lr=2e-3, total_steps=50, warmup_steps=4)  # constant after the warm-up
    assert [warm.learning_rate(s) for s in (0, 1, 3, 4, 49)] == pytest.approx([5e-4, 1e-3, 2e-3, 2e-3, 2e-3])
    plain = TrainSchedule.from_config({"lr": 1e-3, "steps": 10, "ema_rate": 0.9})  # the defaults: today's
    assert [plain.learning_rate(s) for s in range(10)] == [1e-3] * 10
    assert [plain.ema_decay(s) for s in (0, 5, 1000)] == [0.9] * 3
    assert not plain.depends_on_total_steps and cosine.depends_on_total_steps
    with pytest.raises(InputError, match="train.lr_schedule"):
        TrainSchedule(lr=1e-3, total_steps=10, lr_schedule="linear")


def test_ema_warmup_decay_closed_form():
    """r(s) = min(ema_rate, (1 + s) / (10 + s))."""
    ema = TrainSchedule(lr=1e-3, total_steps=1000, ema_rate=0.95, ema_warmup=True)
    assert ema.ema_decay(0) == pytest.approx(0.1)
    assert ema.ema_decay(8) == pytest.approx(0.5)
    assert ema.ema_decay(80) == pytest.approx(0.9)
    assert ema.ema_decay(170) == pytest.approx(0.95)   # (1 + 170) / 180 = 0.95 exactly
    assert ema.ema_decay(500) == 0.95


SCHEDULED = {"warmup_steps": 3, "lr_schedule": "cosine", "ema_warmup": True, "ema_rate": 0.99, "lr": 2e-3}


def test_the_optimiser_runs_at_the_scheduled_rate(tmp_path, data):
    cfg = tiny_config(train={**SCHEDULED, "steps": 8, "log_every": 1})
    run(cfg, data, tmp_path)
    schedule = TrainSchedule.from_config(cfg["train"])
    logged = pd.read_csv(tmp_path / "train_log.csv")["lr"].tolist()
    assert logged == pytest.approx([schedule.learning_rate(s) for s in range(8)], rel=1e-5)
    assert logged[0] < logged[2] == pytest.approx(2e-3) and logged[-1] < logged[3]


def test_resume_with_the_schedule_on_gives_the_uninterrupted_weights(tmp_path, data, caplog):
    """Warm-up, cosine decay and EMA warm-up are functions of the step: resuming changes nothing."""
    cfg = tiny_config(train={**SCHEDULED, "steps": 12, "checkpoint_every": 4})
    run(cfg, data, tmp_path / "full")
    run(cfg, data, tmp_path / "cut")
    for path in (tmp_path / "cut" / "model.pt", tmp_path / "cut" / "checkpoints" / "step_00000012.pt"):
        path.unlink()  # as if killed after step 8's checkpoint
    with caplog.at_level(logging.INFO):
        run(cfg, data, tmp_path / "cut")
    assert "step_00000008.pt (step 8 of 12)" in caplog.text
    assert_same_weights(weights(tmp_path / "cut" / "model.pt"), weights(tmp_path / "full" / "model.pt"))
    raw = torch.load(tmp_path / "cut" / "checkpoints" / "step_00000012.pt", weights_only=True)["model"]
    full = torch.load(tmp_path / "full" / "checkpoints" / "step_00000012.pt", weights_only=True)["model"]
    assert_same_weights(raw, full)


def test_a_cosine_run_does_not_resume_a_run_of_other_length(tmp_path, data):
    """With the cosine decay lr(s) depends on train.steps, so train.steps joins the resume check."""
    assert trajectory_config(tiny_config(train={**CONSTANT, "steps": 4})) == \
        trajectory_config(tiny_config(train={**CONSTANT, "steps": 8}))
    assert trajectory_config(tiny_config(train={**SCHEDULED, "steps": 4})) != \
        trajectory_config(tiny_config(train={**SCHEDULED, "steps": 8}))
    run(tiny_config(train={**SCHEDULED, "steps": 4}), data, tmp_path)
    run(tiny_config(train={**SCHEDULED, "steps": 8}), data, tmp_path)
    assert (tmp_path / "checkpoints" / "stale" / "step_00000004.pt").is_file()
