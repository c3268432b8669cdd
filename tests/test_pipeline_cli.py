"""``crnn-ocr predict`` on pages and ``crnn-ocr bench page``, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from test_detect_classical import render_page
from typer.testing import CliRunner

from crnn_ocr.cli import app

LINES = [("发票号码 No.12345", 30, 20, 28, "zh"), ("TOTAL", 30, 80, 26, "en"), ("12.50", 420, 80, 26, "en")]


def write_page(folder: Path, name: str = "page") -> Path:
    page, true = render_page(LINES, size=(560, 140))
    path = folder / f"{name}.png"
    cv2.imwrite(str(path), page)
    labels = {"lines": [{"box": q.reshape(-1).tolist(), "text": t[0]} for q, t in zip(true, LINES, strict=True)]}
    path.with_suffix(".json").write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
    return path


def test_predict_page_as_json_with_a_drawing(tmp_path: Path, tiny_onnx: Path) -> None:
    page = write_page(tmp_path)
    out = tmp_path / "drawn.png"
    res = CliRunner().invoke(app, ["predict", str(page), "--model", str(tiny_onnx), "--format", "json",
                                   "--draw", str(out), "--upright-check"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["file"] == str(page)
    assert all(len(ln["box"]) == 4 for ln in doc["lines"])
    drawn = cv2.imread(str(out))
    assert drawn is not None and drawn.shape[1] == 2 * 560 and drawn.shape[0] == 140


def test_predict_rejects_a_bad_format_and_reports_unreadable_files(tmp_path: Path, tiny_onnx: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["predict", "x.png", "--format", "xml", "-m", str(tiny_onnx)]).exit_code == 2
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    res = runner.invoke(app, ["predict", str(bad), "--det", "none", "-m", str(tiny_onnx)])
    assert res.exit_code == 1


def test_bench_page_detection_only_writes_reports(tmp_path: Path) -> None:
    data = tmp_path / "pages"
    data.mkdir()
    write_page(data, "a")
    write_page(data, "b")
    report, table = tmp_path / "r.json", tmp_path / "r.md"
    res = CliRunner().invoke(app, ["bench", "page", "--data", str(data), "--det-only", "--no-rapidocr",
                                   "--json", str(report), "--md", str(table)])
    assert res.exit_code == 0, res.output
    (system,) = json.loads(report.read_text())["systems"]
    assert system["detection_only"] and system["counts"]["pages"] == 2 and system["counts"]["true_lines"] == 6
    assert system["det_recall"] >= 0.8 and "char_f1" not in system
    assert "| classical |" in table.read_text()


def test_bench_page_end_to_end_scores_text(tmp_path: Path, tiny_onnx: Path) -> None:
    data = tmp_path / "pages"
    data.mkdir()
    write_page(data)
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["bench", "page", "-d", str(data), "-m", str(tiny_onnx), "--no-rapidocr",
                                   "--json", str(report)])
    assert res.exit_code == 0, res.output
    (system,) = json.loads(report.read_text())["systems"]
    assert not system["detection_only"] and 0.0 <= system["char_f1"] <= 1.0
    assert system["counts"]["true_chars"] == len("发票号码No.12345TOTAL12.50")


def test_predict_with_the_db_detector_and_its_model(tmp_path: Path, tiny_onnx: Path) -> None:
    from test_detect_db import fake_db_model

    page = write_page(tmp_path)
    det_model = fake_db_model(tmp_path / "db.onnx")
    res = CliRunner().invoke(app, ["predict", str(page), "-m", str(tiny_onnx), "--det", "db", "--det-model",
                                   str(det_model), "--format", "tsv", "--min-confidence", "0"])
    assert res.exit_code == 0, res.output
    rows = [r.split("\t") for r in res.stdout.strip().splitlines() if r]
    assert rows and all(r[0] == str(page) and len(r[4].split(",")) == 8 for r in rows)
    missing = CliRunner().invoke(app, ["predict", str(page), "-m", str(tiny_onnx), "--det", "db"])
    assert missing.exit_code == 2


def test_predict_reads_every_pdf_page_with_page_names(tmp_path: Path, tiny_onnx: Path) -> None:
    from PIL import Image

    page = cv2.imread(str(write_page(tmp_path)), cv2.IMREAD_GRAYSCALE)
    pdf = tmp_path / "doc.pdf"
    Image.fromarray(page).save(pdf, save_all=True, append_images=[Image.fromarray(page)], resolution=72.0)
    res = CliRunner().invoke(app, ["predict", str(pdf), "-m", str(tiny_onnx), "--format", "json"])
    assert res.exit_code == 0, res.output
    names = [json.loads(r)["file"] for r in res.stdout.strip().splitlines()]
    assert names == [f"{pdf}#1", f"{pdf}#2"]


def test_predict_and_batch_with_an_alphabet(tmp_path: Path, tiny_onnx: Path) -> None:
    page = write_page(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(page), "--model", str(tiny_onnx), "--format", "json",
                              "--alphabet", "digits", "--min-confidence", "0"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    assert doc["lines"] and all(set(ln["text"]) <= set("0123456789 ") for ln in doc["lines"])
    out = tmp_path / "b.jsonl"
    res = runner.invoke(app, ["batch", str(page), "--out", str(out), "--model", str(tiny_onnx), "--workers", "1",
                              "--no-progress", "--alphabet", "0123456789", "--min-confidence", "0"])
    assert res.exit_code == 0, res.output
    (rec,) = [json.loads(ln) for ln in out.read_text(encoding="utf-8").splitlines()]
    assert [ln["text"] for ln in rec["lines"]] == [ln["text"] for ln in doc["lines"]]
    for cmd in (["predict", str(page)], ["batch", str(page), "--out", str(tmp_path / "c.jsonl")]):
        bad = runner.invoke(app, [*cmd, "--model", str(tiny_onnx), "--alphabet", "1\U0001d11e"])
        assert bad.exit_code == 2 and "charset lacks" in bad.output, bad.output
    assert not (tmp_path / "c.jsonl").exists() or not (tmp_path / "c.jsonl").read_text()


class _ReadsFixedText:
    """A stand-in recogniser that reads every crop as the same text and records how many each call had."""

    def __init__(self, text: str) -> None:
        self.text, self.calls = text, []

    def __call__(self, crops, alphabet=None, lexicon=True, edge_margin=None):
        from crnn_ocr.results import LineResult

        self.calls.append(len(crops))
        return [LineResult(self.text, 0.9) for _ in crops]


def test_bench_page_true_boxes_read_the_labelled_lines(tmp_path: Path) -> None:
    from crnn_ocr.detect.bench import run_page_bench, true_box_system
    from crnn_ocr.pipeline import OCR

    data = tmp_path / "pages"
    data.mkdir()
    write_page(data, "a")
    write_page(data, "b")
    rec = _ReadsFixedText("TOTAL")
    (report,) = run_page_bench(data, {"truth": true_box_system(OCR(recognizer=rec))})
    rates = report.to_dict()
    assert rec.calls.count(len(LINES)) == 2  # all lines of a page in one call (display lines may be read again)
    assert rates["det_recall"] == rates["det_precision"] == 1.0
    assert rates["e2e_recall"] == pytest.approx(1 / len(LINES), abs=1e-4)  # the one line that reads TOTAL
    res = CliRunner().invoke(app, ["bench", "page", "-d", str(data), "--det-only", "--true-boxes"])
    assert res.exit_code == 2 and "det-only" in res.output
