"""``crnn-ocr bench rec`` on a tiny model: one child process per system, tables and JSON written."""

from __future__ import annotations

import json

import cv2
from conftest import make_tiny_onnx, render_line
from typer.testing import CliRunner

from crnn_ocr.bench.rec import SystemResult, markdown, ratios
from crnn_ocr.charset import Charset
from crnn_ocr.cli import app


def test_bench_rec_writes_markdown_and_json(tmp_path):
    data = tmp_path / "lines"
    data.mkdir()
    texts = ["abc 12", "hello", "7 zz"]
    for i, t in enumerate(texts):
        cv2.imwrite(str(data / f"{i}.png"), render_line(t, lang="en"))
    (data / "labels.tsv").write_text("\n".join(f"{i}.png\t{t}" for i, t in enumerate(texts)), encoding="utf-8")
    model = make_tiny_onnx(tmp_path / "m.onnx", charset=Charset.from_text("\n".join("0123456789abcehloz")))
    md, js = tmp_path / "b.md", tmp_path / "b.json"
    res = CliRunner().invoke(app, ["bench", "rec", "--data", str(data), "--model", str(model), "--int8", str(model),
                                   "--threads", "1", "--no-rapidocr", "--no-tesseract", "--md", str(md),
                                   "--json", str(js)])
    assert res.exit_code == 0, res.output
    report = json.loads(js.read_text(encoding="utf-8"))
    systems = {s["system"]: s for s in report["systems"]}
    assert list(systems) == ["crnn-ocr fp32 ONNX", "crnn-ocr INT8 ONNX", "crnn-ocr INT8 ONNX, no lexicon"]
    for s in systems.values():
        assert s["lines"] == 3 and s["b1_lines_per_s"] > 0 and s["peak_rss_mb"] > 0 and not s["error"]
        assert s["sets"]["lines"]["lines"] == 3
    assert report["meta"]["threads"] == 1
    assert "crnn-ocr INT8 ONNX" in md.read_text(encoding="utf-8")


def test_ratio_and_table_handle_a_failed_system():
    ok = SystemResult("a", 1, 10, 1.0, 0.1, 5, 6, 200, 400, 2.5, 100)
    slow = SystemResult("b", 1, 10, 9.0, 0.1, 50, 60, 20, 100, 10, 300)
    broken = SystemResult("c", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, error="ImportError: no module")
    assert ratios([ok, slow, broken], "a", "b") == {"batch1": 10.0, "batched": 4.0}
    assert ratios([ok, broken], "a", "c") == {}
    ok.sets = {"en": {"acc": 0.5, "acc_nospace": 0.625, "acc_alnum_ci": 0.875, "cer": 0.0312}}
    table = markdown([ok, slow, broken], ratios([ok, slow], "a", "b"))
    assert "failed: ImportError" in table and "batch 1 10.00x" in table
    assert "en acc / acc-nospace / alnum-ci / CER" in table and "| 50.0% / 62.5% / 87.5% / 3.1% |" in table
