"""Detector trainer: a run split by a resume ends exactly where the same run without a stop ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crnn_ocr.train.det_config import DetTrainConfig
from crnn_ocr.train.det_loop import LAST, load_det_checkpoint, train_det


def _cfg(out: Path, steps: int) -> DetTrainConfig:
    return DetTrainConfig(model="dbnet_tiny", out_dir=str(out), workers=0, threads=1, batch_size=2, crop=64,
                          scale=(0.2, 0.3), max_steps=steps, log_every=1, ckpt_every=100, val_pages=0,
                          warmup_steps=2, lr=5e-3, ema_decay=0.9, pages="")


def test_split_run_equals_unsplit_run(tmp_path: Path) -> None:
    train_det(_cfg(tmp_path / "whole", 4), log=lambda _m: None)
    train_det(_cfg(tmp_path / "split", 2), log=lambda _m: None)
    train_det(_cfg(tmp_path / "split", 4), resume=True, log=lambda _m: None)
    a = load_det_checkpoint(tmp_path / "whole" / LAST)
    b = load_det_checkpoint(tmp_path / "split" / LAST)
    assert a["step"] == b["step"] == 4 and a["samples_seen"] == b["samples_seen"] == 8
    for key in ("model", "ema"):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), f"{key}.{name} differs after resume"
    # Trainer time is kept per device type across the resume, as the recogniser's trainer does.
    assert set(b["device_seconds"]) == {"cpu"} and b["train_seconds"] > 0
    assert b["device_seconds"]["cpu"] == pytest.approx(b["train_seconds"])


def test_progress_lines_report_the_share_of_time_waiting_for_pages(tmp_path: Path) -> None:
    import re

    lines: list[str] = []
    train_det(_cfg(tmp_path / "run", 3), log=lines.append)
    shares = [int(m.group(1)) for ln in lines if (m := re.search(r"data-wait (\d+)%", ln))]
    assert len(shares) == 3 and all(0 <= s <= 100 for s in shares)
    assert max(shares) > 0  # without workers the pages are rendered while the loop waits


def test_detector_checkpoints_from_before_device_time_count_as_cpu(tmp_path: Path) -> None:
    train_det(_cfg(tmp_path / "old", 2), log=lambda _m: None)
    ckpt = load_det_checkpoint(tmp_path / "old" / LAST)
    del ckpt["device_seconds"]
    torch.save(ckpt, tmp_path / "old" / LAST)
    train_det(_cfg(tmp_path / "old", 3), resume=True, log=lambda _m: None)
    after = load_det_checkpoint(tmp_path / "old" / LAST)
    assert after["device_seconds"]["cpu"] == pytest.approx(after["train_seconds"])


def test_unknown_config_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="crop_size"):
        DetTrainConfig.from_dict({"crop_size": 640})
