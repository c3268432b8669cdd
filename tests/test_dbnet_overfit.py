"""A small DBNet overfit on one page finds that page's lines through the detector's post-processing."""

from __future__ import annotations

import pytest
import torch

from crnn_ocr.detect.db import DBConfig
from crnn_ocr.detect.metrics import TrueLine, score_page
from crnn_ocr.models.dbnet import create_dbnet, db_loss
from crnn_ocr.synth.page import PageConfig, PageStream
from crnn_ocr.train.det_config import DetTrainConfig
from crnn_ocr.train.det_loop import DetDataset, detect_torch, input_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_overfit_model_recalls_the_lines_of_its_page() -> None:
    torch.manual_seed(0)
    pages = PageConfig(width=(256.0, 256.0), aspect=(1.0, 1.0), sizes=(27, 33), layouts={"form": 1.0},
                       degrade=0.0)
    stream = PageStream(pages, seed=11)
    page, quads, texts = stream[0]
    assert len(quads) >= 3
    assert page.shape[:2] == (256, 256)
    cfg = DetTrainConfig(model="dbnet_tiny", crop=128, scale=(0.5, 0.5))  # the whole page, at half size
    item = DetDataset(cfg, stream)[0]
    batch = {k: v[None] for k, v in item.items()}
    model = create_dbnet("dbnet_tiny", neck=32).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(120):
        loss, _ = db_loss(model(batch["image"]), batch["prob"], batch["prob_mask"], batch["thresh"],
                          batch["thresh_mask"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    det = DBConfig(limit_side=cfg.crop, min_side=32)  # the detector shrinks the page to the training scale
    found = detect_torch(model.eval(), page, input_spec(cfg), det)
    truth = [TrueLine(q, t) for q, t in zip(quads, texts, strict=True)]
    rates = score_page(found, None, truth).rates()
    assert rates["det_recall"] >= 0.6, rates
