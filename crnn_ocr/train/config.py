"""Training configuration: a dataclass read from YAML, unknown keys rejected, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from crnn_ocr.train.yaml_config import YamlConfig


@dataclass
class SourceConfig:
    """One training data source.

    Args:
        kind: ``synth`` (the online synthetic line stream), ``pages`` (lines cropped from synthetic pages,
            :mod:`crnn_ocr.synth.page_lines`), ``tsv`` (a labels.tsv folder) or ``lmdb``.
        path: folder or LMDB path (``tsv``/``lmdb``), or a synth / pages YAML (``synth`` / ``pages``; empty =
            the bundled one).
        weight: relative share of samples drawn from this source.
    """

    kind: str = "synth"
    path: str = ""
    weight: float = 1.0


@dataclass
class StageConfig:
    """A curriculum stage: from ``start_step`` on, synthetic lines use these settings."""

    start_step: int = 0
    max_chars: int = 40
    degrade: float = 1.0


@dataclass
class TrainConfig(YamlConfig):
    """Everything that defines a training run; see ``configs/*.yaml`` for commented examples."""

    NESTED: ClassVar[dict[str, type]] = {"sources": SourceConfig, "stages": StageConfig}

    model: str = "crnn_lite"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    charset: str = ""  # empty: the bundled charset
    seed: int = 1234
    out_dir: str = "runs/crnn_lite"
    device: str = "cpu"
    threads: int = 0  # 0: all cores
    workers: int = 1
    # optimisation
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_steps: int = 500
    schedule_steps: int = 200_000
    grad_clip: float = 5.0
    ema_decay: float = 0.999
    # none | bf16 | fp16 (CUDA only) | auto (bf16 where the CPU or GPU has bf16 arithmetic, else fp32).
    # A training-speed setting: it may change between resumed sessions.
    amp: str = "none"
    # Softmax over this many classifier rows per step (blank + the batch's characters + random others);
    # 0: all classes. A training-speed setting: it may change between resumed sessions.
    sampled_classes: int = 0
    # data
    sources: list[SourceConfig] = field(default_factory=lambda: [SourceConfig()])
    stages: list[StageConfig] = field(default_factory=lambda: [StageConfig()])
    chunk_size: int = 512
    max_batch_pixels: int = 64 * 400
    max_width: int = 1200
    on_unknown: str = "skip"
    # run length and bookkeeping
    max_steps: int = 0  # 0: no step limit
    max_minutes: float = 0.0  # 0: no time limit
    log_every: int = 20
    val_every: int = 500
    ckpt_every: int = 200
    val_synth: int = 256
    val_sets: list[str] = field(default_factory=list)
    tensorboard: bool = True

    def stage_at(self, step: int) -> StageConfig:
        """The curriculum stage in force at ``step``."""
        current = self.stages[0]
        for s in sorted(self.stages, key=lambda s: s.start_step):
            if s.start_step <= step:
                current = s
        return current
