"""Detector training configuration: a dataclass read from YAML, unknown keys rejected, stored in checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crnn_ocr.train.yaml_config import YamlConfig


@dataclass
class DetTrainConfig(YamlConfig):
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
