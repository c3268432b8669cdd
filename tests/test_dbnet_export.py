"""Detector export: ONNX matches PyTorch, carries the ``crnn_ocr.det`` input spec, and runs in DBDetector/OCR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crnn_ocr.detect.db import META_KEY, DBDetector, InputSpec
from crnn_ocr.export.det_onnx import export_det_checkpoint
from crnn_ocr.synth.page import PageConfig, PageStream
from crnn_ocr.train.det_config import DetTrainConfig
from crnn_ocr.train.det_loop import BEST, LAST, detect_torch, input_spec, load_det_checkpoint, train_det

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("det")
    cfg = DetTrainConfig(model="dbnet_tiny", out_dir=str(out), workers=0, threads=1, batch_size=1, crop=64,
                         scale=(0.2, 0.3), max_steps=2, val_every=2, val_pages=1, val_limit_side=128,
                         mean=(0.4, 0.5, 0.6), std=(0.25, 0.5, 0.75))
    train_det(cfg, log=lambda _m: None)
    assert (out / BEST).is_file()
    onnx_path = out / "det.onnx"
    rep = export_det_checkpoint(out / LAST, onnx_path)
    assert rep.parity_max_abs_diff < 1e-4
    return out / LAST, onnx_path


def test_metadata_holds_the_training_input_spec(exported: tuple[Path, Path]) -> None:
    import onnx

    ckpt, path = exported
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    spec = InputSpec.from_props(props)
    assert spec == InputSpec(3, (0.4, 0.5, 0.6), (0.25, 0.5, 0.75))
    assert json.loads(props[META_KEY])["channels"] == 3
    assert load_det_checkpoint(ckpt)["input_spec"]["mean"] == [0.4, 0.5, 0.6]


def test_dynamic_size_and_detector_agrees_with_torch(exported: tuple[Path, Path]) -> None:
    import onnxruntime as ort

    ckpt, path = exported
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((32, 64), (96, 160)):
        y = sess.run(None, {"image": np.zeros((1, 3, h, w), np.float32)})[0]
        assert y.shape == (1, 1, h, w)
    det = DBDetector(model=path, threads=1, limit_side=128, thresh=0.0, box_thresh=0.0)
    page = PageStream(PageConfig.load(None).with_overrides(width=(200.0, 240.0)), seed=1)[0][0]
    prob, _ = det.probability_map(page)
    from crnn_ocr.train.det_loop import model_from_det_checkpoint

    model = model_from_det_checkpoint(load_det_checkpoint(ckpt))
    assert len(det(page)) == len(detect_torch(model, page, input_spec(DetTrainConfig(
        mean=(0.4, 0.5, 0.6), std=(0.25, 0.5, 0.75))), det.config))
    assert prob.shape[0] % 32 == 0 and prob.shape[1] % 32 == 0


def test_ocr_pipeline_runs_with_the_exported_detector(exported: tuple[Path, Path], tiny_onnx: Path) -> None:
    from crnn_ocr.engine import Recognizer
    from crnn_ocr.pipeline import OCR

    _, path = exported
    ocr = OCR(detector="db", recognizer=Recognizer(tiny_onnx, threads=1), min_confidence=0.0, model=path, threads=1,
              thresh=0.0, box_thresh=0.0, limit_side=128)
    page = PageStream(PageConfig.load(None).with_overrides(width=(200.0, 240.0)), seed=1)[0][0]
    lines = ocr(page)
    assert lines, "a zero threshold must give at least one region"
    for ln in lines:
        assert np.asarray(ln.box).shape == (4, 2) and isinstance(ln.text, str)
