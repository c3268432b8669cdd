"""Run control shared by the recogniser's and the detector's training loops.

The learning-rate schedule, optimiser groups, EMA, seeding and RNG state, resuming from ``last.pt``, the
endless data sampler, stop signals and the CSV log: one implementation, so both trainers resume exactly
the same way.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
import random
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import numpy as np
import torch
from torch import nn

from crnn_ocr.train.checkpoint import as_fp32

LAST, BEST = "last.pt", "best.pt"


class Schedule(Protocol):
    """The config fields :func:`lr_at` reads."""

    lr: float
    min_lr: float
    warmup_steps: int
    schedule_steps: int


S = TypeVar("S", bound=Schedule)


def lr_at(step: int, cfg: Schedule) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``min_lr`` at ``schedule_steps`` (flat after)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.schedule_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def extended_schedule(cfg: S, step: int, steps: int, min_lr: float | None = None) -> S:
    """``cfg`` with its cosine stretched to end at ``steps`` and its peak lowered so the rate at ``step`` stays.

    A long campaign outgrows the schedule it started with. Restarting the cosine would jump the learning
    rate back up and undo part of the training; stretching it this way continues from the current rate and
    decays more slowly from there. A run already at ``min_lr`` stays there, unless a lower ``min_lr`` is
    given: then the rate anneals from where it is down to the new floor at ``steps``, the cool-down that
    turns a plateau at the floor into a last gain.

    >>> from types import SimpleNamespace as NS
    >>> cfg = NS(lr=1e-3, min_lr=5e-5, warmup_steps=500, schedule_steps=60_000)
    >>> new = extended_schedule(cfg, 48_000, 120_000)
    >>> round(lr_at(48_000, new) / lr_at(48_000, cfg), 6), new.schedule_steps
    (1.0, 120000)
    >>> cool = extended_schedule(cfg, 70_000, 80_000, min_lr=5e-6)
    >>> round(lr_at(70_000, cool), 9), round(lr_at(80_000, cool), 9)
    (5e-05, 5e-06)
    """
    if step < cfg.warmup_steps:
        raise ValueError(f"step {step} is still in the warm-up ({cfg.warmup_steps} steps): nothing to extend")
    if steps <= step:
        raise ValueError(f"the extended schedule must end after the current step {step}, got {steps}")
    now = lr_at(step, cfg)
    floor = cfg.min_lr if min_lr is None else min_lr
    if not 0 <= floor <= now:
        raise ValueError(f"the new floor lr {floor:.3g} must lie between 0 and the current rate {now:.3g}")
    t = (step - cfg.warmup_steps) / max(1, steps - cfg.warmup_steps)
    share = 0.5 * (1 + math.cos(math.pi * t))
    out = copy.copy(cfg)
    out.lr, out.min_lr, out.schedule_steps = floor + (now - floor) / share, floor, steps
    return out


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and norm weights (1-D parameters)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


class EMA:
    """Exponential moving average of a model's parameters and buffers (warm-up for the first steps)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.state = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Blend the model's current weights in; early steps use a smaller decay."""
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.state[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                self.state[k].copy_(v)


MAX_BAD_STEPS = 50
"""Non-finite steps in a row after which a run stops: the weights are left as they were before them."""


class NonFiniteError(RuntimeError):
    """Training produced only non-finite losses or gradients for :data:`MAX_BAD_STEPS` steps in a row."""


def optimizer_step(loss: torch.Tensor, model: nn.Module, opt: torch.optim.Optimizer, grad_clip: float,
                   ema: EMA | None, step: int) -> bool:
    """Backpropagate ``loss``, clip the gradient norm (when ``grad_clip > 0``), step, then update the EMA.

    A step whose loss or gradient norm is not finite (a bf16 overflow, a broken sample) is skipped, weights,
    optimiser moments and EMA untouched, and ``False`` returned: one such step would turn every weight into
    NaN and every later checkpoint with it. Under DDP the gradients are all-reduced before the check, so
    every rank skips the same steps.
    """
    opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else float("inf"))
    if not (torch.isfinite(loss.detach()).all() and torch.isfinite(norm)):
        opt.zero_grad(set_to_none=True)
        return False
    opt.step()
    if ema:
        ema.update(model, step)
    return True


def count_bad_step(finite: bool, bad_in_row: int, limit: int = MAX_BAD_STEPS) -> int:
    """Non-finite steps in a row after this one; raises :class:`NonFiniteError` when they reach ``limit``."""
    bad_in_row = 0 if finite else bad_in_row + 1
    if bad_in_row >= limit:
        raise NonFiniteError(f"{bad_in_row} steps in a row had a non-finite loss or gradient; stopped without "
                             "saving them (lower the learning rate, or train with --amp none)")
    return bad_in_row


# ------------------------------------------------------------------------------------ seeds and resuming


def seed_all(seed: int) -> None:
    """Seed torch, NumPy and Python's ``random`` (before the model exists: its initial weights follow)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    """The torch / NumPy / Python RNG states, as checkpoints store them under ``rng``."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


class RunConfig(Protocol):
    """What :func:`resume_run` reads of a training config."""

    out_dir: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """The config saved in a checkpoint."""


C = TypeVar("C", bound=RunConfig)


def resume_run(cfg: C, resume: bool, load: Callable[[Path], dict[str, Any]], keep: tuple[str, ...],
               log: Callable[[str], Any]) -> tuple[C, dict[str, Any] | None]:
    """The config and checkpoint a run continues from.

    Args:
        cfg: this invocation's config.
        resume: continue from ``out_dir/last.pt`` when it exists (else a new run starts, with a note).
        load: reads a checkpoint file.
        keep: fields (run limits, bookkeeping) taken from ``cfg``; the rest of the run definition is the
            saved one, so a resumed run trains exactly as it started.
        log: where the note goes.

    Returns:
        The config in force and the checkpoint (None for a new run).
    """
    out = Path(cfg.out_dir)
    ckpt = load(out / LAST) if resume and (out / LAST).is_file() else None
    if resume and ckpt is None:
        log(f"no checkpoint at {out / LAST}: starting a new run")
    if ckpt is None:
        return cfg, None
    saved = type(cfg).from_dict(ckpt["config"])
    for k in keep:
        setattr(saved, k, getattr(cfg, k))
    return saved, ckpt


def restore_training_state(ckpt: dict[str, Any], opt: torch.optim.Optimizer, ema: EMA | None) -> None:
    """Optimiser (moments back in fp32), EMA weights and RNG states from a checkpoint, for an exact resume."""
    opt.load_state_dict(ckpt["optimizer"])
    float_optimizer_state(opt)
    if ema and ckpt.get("ema") is not None:
        # Into the existing tensors: they live on the model's device (the checkpoint is loaded on the CPU).
        for k, v in as_fp32(ckpt["ema"]).items():
            ema.state[k].copy_(v)
    torch.set_rng_state(ckpt["rng"]["torch"])
    np.random.set_state(ckpt["rng"]["numpy"])
    random.setstate(ckpt["rng"]["python"])


def float_optimizer_state(opt: torch.optim.Optimizer) -> None:
    """A compact checkpoint stores moments in bf16; training continues in fp32.

    Moments also take their parameter's memory layout (a checkpoint written by a contiguous model can be
    resumed by a channels-last one): the fused optimiser walks a parameter and its moments in storage order.
    """
    for p, state in opt.state.items():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point() and k != "step":
                if isinstance(p, torch.Tensor) and v.shape == p.shape:
                    state[k] = torch.empty_like(p, dtype=torch.float32).copy_(v)
                else:
                    state[k] = v.float()


# ------------------------------------------------------------------------------- data order and stopping


def ignore_signals(_worker_id: int) -> None:
    """Workers leave SIGINT/SIGTERM to the main process, which saves a checkpoint and then stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class EndlessSampler(torch.utils.data.Sampler):
    """Indices ``start, start + 1, ...`` without end: the data position is a single resumable counter."""

    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self) -> Iterator[int]:
        k = self.start
        while True:
            yield k
            k += 1

    def __len__(self) -> int:
        return 2**31 - 1


class StopSignal:
    """Turns SIGTERM/SIGINT into a flag the loop checks between steps, so it can save before stopping."""

    def __init__(self) -> None:
        self.flag = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread: no handler, no flag
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.flag = True

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def append_csv(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to a CSV log, writing the header when the file is new."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def close_window(device_seconds: dict[str, float], device_type: str, seconds: float, waited: float) -> float:
    """Credit a progress window's trainer time to its device type; return the share spent waiting for data.

    A high share means the data workers are the bottleneck (add some); a low share with a slow step means
    the model step is (on a GPU: try a bigger batch).
    """
    device_seconds[device_type] = device_seconds.get(device_type, 0.0) + seconds
    return min(1.0, waited / max(seconds, 1e-9))
