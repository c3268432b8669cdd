"""Detector training configuration: a dataclass read from YAML, unknown keys rejected, stored in checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


@dataclass
class DetTrainConfig:
    """Everything that defines a DB detector training run; see ``configs/dbnet.yaml`` for a commented example.

    Sizes are in pixels. ``shrink_ratio`` sets how far text kernels are shrunk in the targets; 0.6 makes
    the detector's default ``unclip_ratio`` of 1.6 grow a kernel back to about the line box.
    """

    model: str = "dbnet_lite"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 1234
    out_dir: str = "runs/dbnet_lite"
    device: str = "cpu"
    threads: int = 0  # 0: all cores
    workers: int = 1
    # optimisation
    batch_size: int = 8
    lr: float = 2e-3
    min_lr: float = 2e-5
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    schedule_steps: int = 60_000
    grad_clip: float = 5.0
    ema_decay: float = 0.999  # 0: no EMA
    # data
    pages: str = ""  # page synth YAML (empty: the bundled pages.yaml)
    crop: int = 640
    scale: tuple[float, float] = (0.5, 1.4)
    shrink_ratio: float = 0.6
    thresh_min: float = 0.3
    thresh_max: float = 0.7
    min_text: float = 6.0  # lines thinner than this (after scaling) are masked out of the loss
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # run length and bookkeeping
    max_steps: int = 0  # 0: no step limit
    max_minutes: float = 0.0  # 0: no time limit
    log_every: int = 10
    val_every: int = 500
    ckpt_every: int = 100
    val_pages: int = 32
    val_limit_side: int = 960
    tensorboard: bool = False

    def __post_init__(self) -> None:
        self.scale = (float(self.scale[0]), float(self.scale[1]))
        self.mean = tuple(float(v) for v in self.mean)  # type: ignore[assignment]
        self.std = tuple(float(v) for v in self.std)  # type: ignore[assignment]
        if self.crop % 32:
            raise ValueError(f"crop must be a multiple of 32, got {self.crop}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetTrainConfig:
        """Build from a plain dict; unknown keys raise ``ValueError``."""
        if not isinstance(d, dict):
            raise ValueError(f"config: expected a mapping, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"config: unknown key(s) {unknown}; valid keys: {sorted(names)}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> DetTrainConfig:
        """Read a YAML file."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a training config must be a mapping")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for checkpoints)."""
        return asdict(self)
