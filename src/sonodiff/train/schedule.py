"""Learning-rate and EMA-decay schedules: pure functions of the (0-based) optimiser step.

Step s (0 <= s < S = ``train.steps``) updates the weights with the rate

    lr(s) = lr_0 w(s) c(s),
    w(s)  = min(1, (s + 1) / W)                                 (linear warm-up, W = ``train.warmup_steps``; 1 when W = 0)
    c(s)  = 1                                                   (``train.lr_schedule: constant``)
    c(s)  = (1 + cos(pi min(1, max(0, s - W) / max(1, S - W)))) / 2   (``cosine``, Loshchilov & Hutter 2017, no restarts)

so the cosine decay starts after the warm-up and reaches 0 at s = S (the last step, S - 1, uses
a small positive rate). The EMA of the weights after step s uses the decay

    r(s) = ``train.ema_rate``                                   (``train.ema_warmup: false``)
    r(s) = min(``ema_rate``, (1 + s) / (10 + s))                (``true``; the warm-up of
                                                                 improved-diffusion / diffusers' EMAModel)

With the warm-up the average forgets the random initial weights within a few dozen steps
instead of ~1 / (1 - ema_rate) steps. Both depend on nothing but the step and the config, so a
resumed run uses exactly the rates of an uninterrupted one (nothing to checkpoint). With the
cosine schedule the whole trajectory depends on S: ``train.steps`` then takes part in the
checkpoint-resume check (:func:`sonodiff.train.loop.trajectory_config`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Mapping

from sonodiff.errors import InputError


class LRSchedule(str, enum.Enum):
    """``train.lr_schedule``: the decay after the warm-up."""

    CONSTANT = "constant"
    COSINE = "cosine"


def warmup_factor(step: int, warmup_steps: int) -> float:
    """w(s) = min(1, (s + 1) / W); 1 when W = 0."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


def cosine_factor(step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """c(s) = (1 + cos(pi p)) / 2 with p = min(1, max(0, s - W) / max(1, S - W))."""
    progress = min(1.0, max(0, step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_warmup_decay(step: int, rate: float) -> float:
    """r(s) = min(rate, (1 + s) / (10 + s))."""
    return min(float(rate), (1.0 + step) / (10.0 + step))


@dataclass(frozen=True)
class TrainSchedule:
    """lr(s) and r(s) of one ``train`` config section (module docstring)."""

    lr: float
    total_steps: int
    warmup_steps: int = 0
    lr_schedule: LRSchedule = LRSchedule.CONSTANT
    ema_rate: float = 0.9999
    ema_warmup: bool = False

    def __post_init__(self):
        try:
            object.__setattr__(self, "lr_schedule", LRSchedule(self.lr_schedule))
        except ValueError:
            raise InputError("config key train.lr_schedule", f"{self.lr_schedule!r} is not one of "
                             f"{[s.value for s in LRSchedule]}") from None
        if self.warmup_steps < 0:
            raise InputError("config key train.warmup_steps", f"must be >= 0, got {self.warmup_steps}")

    @classmethod
    def from_config(cls, tcfg: Mapping[str, Any]) -> "TrainSchedule":
        """The schedule of a ``train`` section (missing keys: constant rate, no warm-up)."""
        return cls(lr=float(tcfg["lr"]), total_steps=int(tcfg["steps"]),
                   warmup_steps=int(tcfg.get("warmup_steps", 0)),
                   lr_schedule=tcfg.get("lr_schedule", LRSchedule.CONSTANT.value),
                   ema_rate=float(tcfg["ema_rate"]), ema_warmup=bool(tcfg.get("ema_warmup", False)))

    @property
    def depends_on_total_steps(self) -> bool:
        """Whether lr(s) changes with ``train.steps`` (then a resume must match it)."""
        return self.lr_schedule is LRSchedule.COSINE

    def learning_rate(self, step: int) -> float:
        """lr(s) = lr_0 w(s) c(s)."""
        factor = warmup_factor(step, self.warmup_steps)
        if self.lr_schedule is LRSchedule.COSINE:
            factor *= cosine_factor(step, self.total_steps, self.warmup_steps)
        return self.lr * factor

    def ema_decay(self, step: int) -> float:
        """r(s): ``ema_rate``, or min(ema_rate, (1 + s) / (10 + s)) with the EMA warm-up."""
        return ema_warmup_decay(step, self.ema_rate) if self.ema_warmup else self.ema_rate
