"""The training loop: one optimiser step at a time, resumable, data-parallel.

Per step s (improved DDPM, Nichol & Dhariwal 2021, with the B-map process of Domínguez et al.
2024 and the label dropout of classifier-free guidance):

1. the batch ``(x0, y)`` of this process at step s (:mod:`sonodiff.train.data`);
2. from ``generator(seed, "step", s, rank)``: the label dropout mask ``drop_b ~ Bernoulli(drop_rate)``
   (dropped maps become the null map), then, in the objective, ``t ~ U{0..T-1}`` and
   ``eps ~ N(0, I)``;
3. the objective's per-sample losses; the step minimises ``mean_b L_b`` with
   ``L = L_simple + vlb_weight c L_t`` by default, c = T (``diffusion.vlb_convention: sum``) or 1
   (``per_step``) (:class:`DiffusionObjective`);
4. a non-finite loss (averaged over processes) or gradient norm skips the step (no update of the
   weights, the optimiser or the EMA), counted; ``train.max_nonfinite`` in a row stop training
   with :class:`TrainingDiverged` and no ``model.pt``;
5. gradient clipping to ``train.grad_clip``, AdamW at the rate lr(s), then
   ``theta_ema <- r(s) theta_ema + (1 - r(s)) theta`` (lr(s) and r(s): warm-up, cosine decay and
   EMA warm-up of :mod:`sonodiff.train.schedule`, pure functions of s).

Every random number is a function of (seed, step, rank), and a checkpoint holds everything else
(weights, EMA, optimiser moments, step, counters), so a run resumed from a checkpoint continues
exactly as an uninterrupted one would; on the CPU the final weights are bit-identical.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn
from tqdm import tqdm

from sonodiff.config import first_difference
from sonodiff.contracts import layout
from sonodiff.contracts.dataset import PreparedDataset
from sonodiff.contracts.model_file import write_model_file
from sonodiff.device import autocast_dtype, resolve_device
from sonodiff.diffusion.process import BMapDiffusion
from sonodiff.io import sweep_stale_temporaries
from sonodiff.models import build_model, model_spec
from sonodiff.seeds import generator
from sonodiff.train import distributed
from sonodiff.train.checkpoint import latest_valid, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from sonodiff.train.data import TrainingSet, load_training_set
from sonodiff.train.ema import EMA
from sonodiff.train.logs import TrainLogger
from sonodiff.train.schedule import TrainSchedule

log = logging.getLogger(__name__)

#: An objective maps (model_fn, x0, generator) to per-sample losses {"loss": (B,), ...};
#: model_fn(x_t, t) -> network output with the condition already bound.
Objective = Callable[[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], torch.Tensor, torch.Generator],
                     Mapping[str, torch.Tensor]]
#: Keys of ``train`` that do not change the trajectory of the weights (a checkpoint made with
#: other values of these is still resumed).
NON_TRAJECTORY_TRAIN_KEYS = ("steps", "checkpoint_every", "log_every", "max_nonfinite", "num_workers",
                             "precision", "compile", "channels_last")


#: The resolved config a torchrun job reads (in ``checkpoints/``, not a contract between stages).
JOB_CONFIG = "job_config.yaml"


class TrainingDiverged(RuntimeError):
    """Too many consecutive non-finite losses; no model is written."""


class DiffusionObjective:
    """``L_b = L_simple + w L_vlb`` of ``diffusion.training_losses`` at ``t_b ~ U{0..T-1}``, ``eps ~ N(0, I)``."""

    def __init__(self, diffusion: Any, num_steps: int):
        self.diffusion = diffusion
        self.num_steps = int(num_steps)

    def __call__(self, model_fn, x0: torch.Tensor, gen: torch.Generator) -> Mapping[str, torch.Tensor]:
        t = torch.randint(0, self.num_steps, (x0.shape[0],), generator=gen).to(x0.device)
        noise = torch.randn(x0.shape, generator=gen).to(x0.device, memory_format=_memory_format(x0))
        return self.diffusion.training_losses(model_fn, x0, t, noise=noise)


def trajectory_config(cfg: Mapping[str, Any], keep_steps: bool | None = None) -> dict:
    """The part of a resolved config that determines the weights (what a resume must match).

    ``train.steps`` takes part when the learning rate depends on it (the cosine schedule), or as
    ``keep_steps`` says: a checkpoint's config is cut as this run's is, so a config of another
    run (sections or keys missing) is cut without being read beyond what it holds.
    """
    train = cfg.get("train", {})
    if keep_steps is None:
        keep_steps = TrainSchedule.from_config(train).depends_on_total_steps
    dropped = [k for k in NON_TRAJECTORY_TRAIN_KEYS if not (keep_steps and k == "steps")]
    out = {k: cfg[k] for k in ("seed", "diffusion", "model") if k in cfg}
    if isinstance(train, Mapping):
        out["train"] = {k: v for k, v in train.items() if k not in dropped}
    return out


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous() else torch.contiguous_format


def _finite(x: torch.Tensor | float) -> bool:
    return bool(torch.isfinite(torch.as_tensor(x)).all())


@dataclass
class Problem:
    """What one training job learns: its data, the depth map of its process, and the network with
    its spec (initial weights set). :func:`pixel_problem` is the pixel-space models' (the default);
    the latent family builds its own (:mod:`sonodiff.train.latent`)."""

    data: TrainingSet
    depth: torch.Tensor
    spec: dict
    model: nn.Module


def seeded_network(cfg: Mapping[str, Any], data: TrainingSet) -> tuple[dict, nn.Module]:
    """The spec of the config's pixel-space UNet for ``data`` and the network, seeded by ``seed``."""
    spec = model_spec(cfg, data.num_classes, in_channels=data.images.shape[1])
    torch.manual_seed(cfg["seed"])  # the initial weights
    return spec, build_model(spec)


def pixel_problem(cfg: Mapping[str, Any], dataset: PreparedDataset, device: torch.device) -> Problem:
    """The train split's images and label maps, the dataset's depth map, and a freshly seeded UNet."""
    data = load_training_set(dataset)
    return Problem(data, dataset.depth_map(), *seeded_network(cfg, data))


#: problem(cfg, dataset, device) -> Problem
ProblemFn = Callable[[Mapping[str, Any], PreparedDataset, torch.device], Problem]


def to_device(value: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return value.to(device) if value is not None else None


class Trainer:
    """Model, EMA and optimiser, and :meth:`step`. Holds no files; :func:`train` does the I/O.

    The network and its spec are ``problem``'s, or a freshly seeded one of the config's spec
    for ``data``; parameters with ``requires_grad`` off (a frozen part) are never updated.
    """

    def __init__(self, cfg: Mapping[str, Any], data: TrainingSet, diffusion: Any, device: torch.device,
                 dist: distributed.Dist = distributed.Dist(), objective: Objective | None = None,
                 problem: Problem | None = None):
        self.cfg = cfg
        self.tcfg = cfg["train"]
        self.data = data
        self.device = device
        self.dist = dist
        spec, model = seeded_network(cfg, data) if problem is None else (problem.spec, problem.model)
        self.spec, self.model = dict(spec), model.to(device)
        self.memory_format = torch.channels_last if self.tcfg["channels_last"] else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.ema = EMA(self.model, self.tcfg["ema_rate"])
        self.schedule = TrainSchedule.from_config(self.tcfg)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=self.schedule.learning_rate(0),
                                           weight_decay=self.tcfg["weight_decay"])
        self.amp_dtype = autocast_dtype(self.tcfg["precision"], device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.objective = objective or DiffusionObjective(diffusion.to(device), cfg["diffusion"]["num_steps"])
        self.net: nn.Module = self.model
        if dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if self.tcfg["compile"]:
            self.net = torch.compile(self.net)
        self.nonfinite_total = 0
        self.nonfinite_run = 0

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def step(self, step: int) -> dict:
        """One optimiser step (module docstring); returns its metrics and whether it was skipped."""
        t0 = time.perf_counter()
        batch_size = self.tcfg["batch_size"]
        x0, labels, classes = self.data.batch(step, batch_size, self.cfg["seed"], self.dist.rank,
                                              self.dist.world_size)
        gen = generator(self.cfg["seed"], "step", step, self.dist.rank)
        drop = torch.rand(batch_size, generator=gen) < self.tcfg["drop_rate"]
        x0 = x0.to(self.device).contiguous(memory_format=self.memory_format)
        cond = self.model.condition(to_device(labels, self.device), to_device(classes, self.device))
        cond = self.model.drop(cond, drop.to(self.device))
        if isinstance(cond, torch.Tensor):
            cond = cond.contiguous(memory_format=self.memory_format)

        def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with self.autocast():
                return self.net(x_t, t, cond).float()

        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.learning_rate(step)
        losses = self.objective(model_fn, x0, gen)
        loss = losses["loss"].float().mean()
        metrics = {k: float(distributed.mean(v.detach().float().mean(), self.dist)) for k, v in losses.items()}
        self.optimizer.zero_grad(set_to_none=True)
        if not _finite(metrics["loss"]):
            return self._skip(step, metrics, "loss", t0)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        clip = self.tcfg["grad_clip"] if self.tcfg["grad_clip"] > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, clip))
        metrics["grad_norm"] = grad_norm
        if not _finite(grad_norm):
            if self.scaler.is_enabled():  # fp16 overflow: the scaler lowers its scale, no count
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                return {**metrics, "skipped": True, "seconds": time.perf_counter() - t0}
            return self._skip(step, metrics, "gradient norm", t0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.ema.update(self.model, self.schedule.ema_decay(step))
        self.nonfinite_run = 0
        return {**metrics, "skipped": False, "seconds": time.perf_counter() - t0}

    def _skip(self, step: int, metrics: dict, what: str, t0: float) -> dict:
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite_total += 1
        self.nonfinite_run += 1
        if self.dist.is_main:
            log.warning("step %d: non-finite %s (%s), step skipped (%d in a row, %d in all)", step, what,
                        metrics.get("loss"), self.nonfinite_run, self.nonfinite_total)
        limit = self.tcfg["max_nonfinite"]
        if self.nonfinite_run >= limit:
            raise TrainingDiverged(
                f"train: {self.nonfinite_run} consecutive non-finite losses up to step {step} "
                f"(train.max_nonfinite = {limit}); training stopped and no model written. "
                f"Lower train.lr, check train.precision or the training images.")
        return {**metrics, "skipped": True, "seconds": time.perf_counter() - t0}

    def state_dict(self, step: int) -> dict:
        """Everything a resume needs, as tensors and plain values (``weights_only`` loadable)."""
        return {
            "step": int(step),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "sampler": {"seed": int(self.cfg["seed"]), "world_size": self.dist.world_size,
                        "position": int(step) * self.tcfg["batch_size"] * self.dist.world_size},
            "nonfinite": {"total": self.nonfinite_total, "consecutive": self.nonfinite_run},
            "config": dict(self.cfg),
            "spec": dict(self.spec),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> int:
        """Restore a :meth:`state_dict`; returns its step."""
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if "rng" in state:
            set_rng_state(state["rng"])
        self.nonfinite_total = int(state.get("nonfinite", {}).get("total", 0))
        self.nonfinite_run = int(state.get("nonfinite", {}).get("consecutive", 0))
        return int(state["step"])


def _resume_check(cfg: Mapping[str, Any], spec: Mapping[str, Any]):
    """``accept`` of :func:`~sonodiff.train.checkpoint.latest_valid`: a checkpoint is this run's
    when its trajectory config, its network and a step within ``train.steps`` match; the reason
    names the first key that differs."""
    want = trajectory_config(cfg)
    keep_steps = "steps" in want["train"]

    def accept(state: Mapping[str, Any]) -> str | None:
        config = state["config"]
        if not isinstance(config, Mapping):
            return f"its config is a {type(config).__name__}, not a mapping"
        diff = first_difference(want, trajectory_config(config, keep_steps))
        if diff:
            return f"made with another config ({diff})"
        diff = first_difference(dict(spec), state["spec"], "spec.")
        if diff:
            return f"made for another network ({diff})"
        if int(state["step"]) > cfg["train"]["steps"]:
            return f"step {state['step']} is past train.steps = {cfg['train']['steps']}"
        return None

    return accept


def save_model(trainer: Trainer, step: int, depth: torch.Tensor, path: str | Path) -> Path:
    """Write ``model.pt``: EMA weights, spec, resolved config, step and depth map (atomically)."""
    return write_model_file(path, trainer.ema.state_dict(), trainer.spec, trainer.cfg, step, depth)


def train(cfg: Mapping[str, Any], dataset: PreparedDataset, model_out: str | Path, *,
          objective: Objective | None = None, device: str | None = None, progress: bool = True,
          problem: ProblemFn = pixel_problem) -> Path:
    """Train the model of a resolved config on a prepared dataset; returns ``model_out``.

    The folder of ``model_out`` receives ``checkpoints/``, ``tensorboard/``, ``train_log.csv``
    and finally ``model_out`` itself. The temporaries of writes killed there before are removed
    first (:func:`sonodiff.io.sweep_stale_temporaries`). An existing valid checkpoint of the same
    config is resumed without being asked; the newer ones that cannot be (unreadable, or of
    another config, network or length) are moved to ``checkpoints/stale/`` with a warning.
    ``objective`` replaces the diffusion loss (tests); ``problem`` builds the data, depth map and
    network (default: the pixel-space models'). Under torchrun every process calls this; rank 0 writes.
    """
    model_out = Path(model_out)
    out_dir = model_out.parent
    ckpt_dir = out_dir / layout.CHECKPOINTS
    probe_device = resolve_device(device or cfg["device"])
    dist = distributed.init(probe_device.type)
    try:
        dev = resolve_device(device or cfg["device"], dist.local_rank)
        task = problem(cfg, dataset, dev)
        depth = task.depth
        diffusion = BMapDiffusion.from_config(cfg["diffusion"], depth) if objective is None else None
        trainer = Trainer(cfg, task.data, diffusion, dev, dist, objective, task)
        total = int(cfg["train"]["steps"])

        found = None
        if dist.is_main:
            for folder in (out_dir, ckpt_dir):
                sweep_stale_temporaries(folder)
            hit = latest_valid(ckpt_dir, accept=_resume_check(cfg, trainer.spec), set_aside_rejected=True)
            found = str(hit[0]) if hit else None
        found = distributed.broadcast(found, dist)
        start = 0
        if found:
            start = trainer.load_state_dict(load_checkpoint(found, map_location=dev))
            if dist.is_main:
                log.info("resuming from %s (step %d of %d)", found, start, total)
        distributed.barrier(dist)

        logger = TrainLogger(ckpt_dir / layout.TRAIN_LOG, out_dir / layout.TENSORBOARD, start) if dist.is_main else None
        every, ck_every = cfg["train"]["log_every"], cfg["train"]["checkpoint_every"]
        images_per_step = cfg["train"]["batch_size"] * dist.world_size
        acc: dict[str, float] = {}
        n_acc, seconds = 0, 0.0
        bar = tqdm(total=total, initial=start, desc=f"train {cfg.get('dataset')}/{cfg.get('variant')}",
                   disable=not (progress and dist.is_main), dynamic_ncols=True)
        try:
            for step in range(start, total):
                m = trainer.step(step)
                seconds += m["seconds"]
                if not m["skipped"]:
                    n_acc += 1
                    for key in ("loss", "mse", "vb", "grad_norm"):
                        if key in m:
                            acc[key] = acc.get(key, 0.0) + m[key]
                done = step + 1
                bar.update(1)
                if done % every == 0 or done == total:
                    row = {"step": done, **{k: v / max(n_acc, 1) for k, v in acc.items()},
                           "lr": trainer.optimizer.param_groups[0]["lr"],
                           "images_per_s": images_per_step * _steps_in_window(done, every, start) / max(seconds, 1e-9),
                           "skipped_total": trainer.nonfinite_total}
                    if logger:
                        logger.write(row)
                    bar.set_postfix(loss=f"{row.get('loss', float('nan')):.4f}")
                    acc, n_acc, seconds = {}, 0, 0.0
                if (done % ck_every == 0 or done == total) and dist.is_main:
                    save_checkpoint(trainer.state_dict(done), ckpt_dir)
        finally:
            bar.close()
            if logger:
                logger.close()
        if dist.is_main:
            save_model(trainer, total, depth, model_out)
            logger.finish(out_dir / layout.TRAIN_LOG)
            log.info("wrote %s (step %d, %d steps skipped)", model_out, total, trainer.nonfinite_total)
        distributed.barrier(dist)
        return model_out
    finally:
        distributed.shutdown(dist)


def _steps_in_window(done: int, every: int, start: int) -> int:
    """Steps since the previous log row (or since the start of this run)."""
    prev = max((done - 1) // every * every, start)
    return done - prev


def train_job(cfg: Mapping[str, Any], dataset: PreparedDataset, model_out: str | Path, nproc: int = 1,
              device: str | None = None, progress: bool = True) -> Path:
    """:func:`train` in this process, or, with ``nproc > 1``, under torchrun with ``nproc`` processes.

    torchrun runs ``sonodiff train --resolved-config`` on the same files, with the resolved
    config written to ``checkpoints/job_config.yaml`` beside ``model_out``.
    """
    model_out = Path(model_out)
    if nproc <= 1:
        return train(cfg, dataset, model_out, device=device, progress=progress)
    import yaml

    from sonodiff.io import write_text

    job = model_out.parent / layout.CHECKPOINTS / JOB_CONFIG
    write_text(job, yaml.safe_dump(dict(cfg), sort_keys=False))
    args = ["train", "--resolved-config", str(job), "--manifest", str(dataset.manifest), "--info",
            str(dataset.info_path), "--sector", str(dataset.sector_path), "--model", str(model_out)]
    args += ["--device", device] if device else []
    args += [] if progress else ["--no-progress"]
    distributed.launch(args, nproc)
    if not model_out.is_file():
        raise RuntimeError(f"torchrun finished without writing {model_out}")
    return model_out
