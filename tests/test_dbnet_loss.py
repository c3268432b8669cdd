"""DBNet: output shapes, a finite loss, and the loss falling when the model overfits two small pages."""

from __future__ import annotations

import math

import pytest
import torch

from crnn_ocr.models.dbnet import create_dbnet, db_loss
from crnn_ocr.synth.page import PageConfig, PageStream
from crnn_ocr.train.det_config import DetTrainConfig
from crnn_ocr.train.det_loop import DetDataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_eval_returns_probabilities_at_input_size() -> None:
    model = create_dbnet("dbnet_tiny").eval()
    with torch.inference_mode():
        p = model(torch.randn(2, 3, 96, 160))
    assert p.shape == (2, 1, 96, 160)
    assert float(p.min()) >= 0.0 and float(p.max()) <= 1.0


def test_loss_is_finite_and_falls_when_overfitting_two_pages() -> None:
    torch.manual_seed(0)
    cfg = DetTrainConfig(model="dbnet_tiny", crop=128, scale=(0.4, 0.4))
    data = DetDataset(cfg, PageStream(PageConfig.load(None).with_overrides(degrade=0.0), seed=3))
    items = [data[0], data[1]]
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    assert batch["prob"].sum() > 0, "the crops hold no text"
    model = create_dbnet("dbnet_tiny", neck=32).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss, parts = db_loss(model(batch["image"]), batch["prob"], batch["prob_mask"], batch["thresh"],
                              batch["thresh_mask"])
        assert math.isfinite(float(loss.detach())) and all(math.isfinite(v) for v in parts.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
