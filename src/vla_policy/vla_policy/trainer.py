# SPDX-License-Identifier: Apache-2.0
"""One optimisation loop for every learned part of the policy package.

The alignment policy (``vla train``), the learned pre-grasping prior (``grasp_prior.train``) and the
presence recogniser's heads (``PresenceRecogniser.fit``) all train through :func:`fit`, configured by
one typed :class:`TrainerConfig`: a fixed number of optimiser steps (not minutes, not "until it
looks done"), a seed, the optimiser and its settings. What differs between the parts - how a batch
is drawn, the loss, what is logged or validated - is the caller's ``step_loss`` and ``on_step``.
So a rerun with the same data, config and thread count reproduces the weights, and a change to the
loop (clipping, a scheduler, mixed precision) reaches every part at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch

OPTIMIZERS = ("adam", "adamw")
StepLoss = Callable[[int], "torch.Tensor | tuple[torch.Tensor, dict[str, float]]"]


@dataclass(frozen=True)
class TrainerConfig:
    """Optimisation settings of one training run.

    Attributes:
        steps: optimiser steps in all (the run's bound; a resumed run continues up to it).
        lr: learning rate.
        weight_decay: Adam's L2 term (``adam``) or decoupled decay (``adamw``).
        optimizer: ``adam`` or ``adamw``.
        grad_clip: clip the global gradient norm to this before each step (None: no clipping).
        seed: the run's seed; callers seed their parameter init and batch sampling with it.
    """

    steps: int
    lr: float
    weight_decay: float = 0.0
    optimizer: str = "adam"
    grad_clip: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if int(self.steps) != self.steps or self.steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {self.steps!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for a checkpoint's meta or a run's data.json)."""
        return asdict(self)


def make_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainerConfig) -> torch.optim.Optimizer:
    """The optimiser ``cfg`` names over ``params``."""
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(list(params), lr=cfg.lr, weight_decay=cfg.weight_decay)


def fit(params: Iterable[torch.nn.Parameter], step_loss: StepLoss, cfg: TrainerConfig, *,
        optimizer: torch.optim.Optimizer | None = None, start_step: int = 0,
        on_step: Callable[[int, dict[str, float]], None] | None = None) -> torch.optim.Optimizer:
    """Run optimiser steps ``start_step + 1 .. cfg.steps``; returns the optimiser (for a resume state).

    Args:
        params: the parameters to train (their gradients are clipped together).
        step_loss: ``step_loss(step)`` (step counted from 0) draws the step's batch and returns its
            scalar loss, or ``(loss, logs)`` with float logs handed to ``on_step``.
        cfg: the run's settings.
        optimizer: an optimiser to continue with (a resumed run); default a new one from ``cfg``.
        start_step: steps already done (a resumed run).
        on_step: ``on_step(steps_done, logs)`` after each step: logging, validation, checkpoints.
    """
    params = list(params)
    opt = optimizer if optimizer is not None else make_optimizer(params, cfg)
    with torch.enable_grad():  # callers may hold a no_grad context (calibration code)
        for step in range(start_step, cfg.steps):
            out = step_loss(step)
            loss, logs = out if isinstance(out, tuple) else (out, {})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            if on_step is not None:
                on_step(step + 1, logs)
    return opt
