"""INT8: quantised models keep their metadata, load in the engine and agree with fp32."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime.quantization")
onnx = pytest.importorskip("onnx")

from conftest import make_tiny_onnx, render_line  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from crnn_ocr.charset import Charset  # noqa: E402
from crnn_ocr.cli import app  # noqa: E402
from crnn_ocr.engine import Recognizer  # noqa: E402
from crnn_ocr.evaluation import score  # noqa: E402
from crnn_ocr.export.int8 import calibration_lines, compare, model_meta, quantize  # noqa: E402
from crnn_ocr.preprocess import PreprocessConfig, prepare_line  # noqa: E402

SMALL = Charset.from_text("\n".join("0123456789abcdefghijklmnopqrstuvwxyz"))
TEXTS = ["abc 123", "hello world 42", "0987654321", "quantised text", "zz top 7", "line of words", "x",
         "mixed 1a2b3c"]


@pytest.fixture(scope="module")
def fp32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_onnx(tmp_path_factory.mktemp("int8") / "conv.onnx", charset=SMALL)


@pytest.fixture(scope="module")
def lines() -> list[np.ndarray]:
    return [prepare_line(render_line(t, lang="en"), PreprocessConfig()) for t in TEXTS]


@pytest.fixture(scope="module")
def static_int8(fp32: Path, lines: list[np.ndarray]) -> Path:
    return quantize(fp32, fp32.with_suffix(".int8.onnx"), "static", lines=lines)


def test_static_keeps_metadata_and_is_qdq(fp32, static_int8):
    assert model_meta(static_int8) == model_meta(fp32)
    ops = {n.op_type for n in onnx.load(str(static_int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert static_int8.stat().st_size < fp32.stat().st_size


def test_static_agrees_with_fp32_on_rendered_lines(fp32, static_int8, lines):
    c = compare(fp32, static_int8, lines, repeats=1)
    assert c.frame_agreement >= 0.95
    a = [r.text for r in Recognizer(fp32, threads=1)(lines)]
    b = [r.text for r in Recognizer(static_int8, threads=1)(lines)]
    assert all(a)  # this random conv model emits characters on every line
    assert score(list(zip(a, b, strict=True))).ned >= 0.9


@pytest.mark.parametrize("mode", ["dynamic", "hybrid"])
def test_other_modes_load_with_metadata(fp32, lines, tmp_path, mode):
    out = quantize(fp32, tmp_path / f"{mode}.onnx", mode, lines=lines)
    rec = Recognizer(out, threads=1)
    assert rec.charset == SMALL
    assert len(rec(lines[:3])) == 3


def test_calibration_reads_labelled_folders_through_the_models_preprocessing(fp32, tmp_path):
    rows = []
    for i, t in enumerate(TEXTS[:3]):
        cv2.imwrite(str(tmp_path / f"{i}.png"), render_line(t, height=50, lang="en"))
        rows.append(f"{i}.png\t{t}")
    (tmp_path / "labels.tsv").write_text("\n".join(rows), encoding="utf-8")
    got = calibration_lines(model_meta(fp32), count=0, data=[tmp_path])
    assert len(got) == 3 and all(ln.shape[0] == 32 and ln.dtype == np.float32 for ln in got)
    with pytest.raises(ValueError, match="no calibration lines"):
        calibration_lines(model_meta(fp32), count=0)


def test_quantize_cli(fp32, tmp_path):
    for i, t in enumerate(TEXTS[:4]):
        cv2.imwrite(str(tmp_path / f"{i}.png"), render_line(t, lang="en"))
    (tmp_path / "labels.tsv").write_text("\n".join(f"{i}.png\t{t}" for i, t in enumerate(TEXTS[:4])),
                                         encoding="utf-8")
    out = tmp_path / "m.int8.onnx"
    res = CliRunner().invoke(app, ["quantize", str(fp32), "-o", str(out), "--calib", "0", "--data", str(tmp_path),
                                   "--check", "4", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "same frame argmax" in res.output
    assert Recognizer(out, threads=1).charset == SMALL


def test_dynamic_quantises_the_lstm_of_an_exported_crnn(tmp_path, lines):
    torch = pytest.importorskip("torch")
    from crnn_ocr.export.onnx import to_onnx_proto
    from crnn_ocr.meta import ModelMeta
    from crnn_ocr.models import create_model

    torch.manual_seed(0)
    model = create_model("crnn_tiny", num_classes=SMALL.num_classes)
    src = tmp_path / "crnn.onnx"
    onnx.save(to_onnx_proto(model, ModelMeta("crnn_tiny", SMALL, PreprocessConfig())), str(src))
    out = quantize(src, tmp_path / "crnn.int8.onnx", "dynamic")
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    assert model_meta(out) == model_meta(src)
    c = compare(src, out, lines, repeats=1)
    assert c.int8_bytes < c.fp32_bytes
    assert c.frame_agreement >= 0.9
