"""Device, optimizer and learning-rate schedule from a :class:`TrainConfig`."""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from snnl.training.config import TrainConfig


def make_optimizer(cfg: TrainConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    params = list(params)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)


def make_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int):
    """A per-step LambdaLR (its state_dict holds no code, so checkpoints stay weights_only)."""
    if cfg.schedule == "cosine":
        def factor(step: int) -> float:
            return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    elif cfg.schedule == "step":
        milestones = sorted(cfg.lr_milestones)

        def factor(step: int) -> float:
            epoch = step // max(steps_per_epoch, 1)
            return cfg.lr_gamma ** sum(1 for m in milestones if epoch >= m)
    else:
        def factor(step: int) -> float:
            return 1.0
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
