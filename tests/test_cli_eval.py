"""``crnn-ocr eval`` in-process: table, JSON report, worst lines, clear errors."""

import json

from conftest import render_line
from PIL import Image
from typer.testing import CliRunner

from crnn_ocr.cli import app
from crnn_ocr.engine import Recognizer


def make_set(folder, texts):
    folder.mkdir()
    rows = []
    for i, t in enumerate(texts):
        Image.fromarray(render_line(t)).save(folder / f"{i}.png")
        rows.append(f"{i}.png\t{t}")
    (folder / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def test_eval_writes_report_consistent_with_recognizer(tmp_path, tiny_onnx):
    data = make_set(tmp_path / "set", ["发票", "TOTAL 12.50", "合计¥88"])
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", "--model", str(tiny_onnx), "--data", str(data), "--json", str(report),
                                   "--errors", "2"])
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text(encoding="utf-8"))
    (s,) = doc["sets"]
    assert s["name"] == "set" and s["lines"] == 3
    preds = [r.text for r in Recognizer(tiny_onnx)([data / f"{i}.png" for i in range(3)])]
    truths = ["发票", "TOTAL 12.50", "合计¥88"]
    assert s["acc"] == sum(p == t for p, t in zip(preds, truths, strict=True)) / 3
    assert len(s["errors"]) <= 2
    assert all(e["pred"] in preds for e in s["errors"])


def test_eval_reports_missing_set_clearly(tmp_path, tiny_onnx):
    res = CliRunner().invoke(app, ["eval", "--model", str(tiny_onnx), "--data", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert "labels.tsv" in res.output


def test_eval_rejects_malformed_labels(tmp_path, tiny_onnx):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "labels.tsv").write_text("no tab here\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["eval", "--model", str(tiny_onnx), "--data", str(d)])
    assert res.exit_code == 2 and "filename<TAB>text" in res.output


def test_help_lists_working_commands():
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("predict", "eval", "train", "serve", "bench"):
        assert cmd in res.output


def test_eval_breakdown_counts_every_truth_character(tmp_path, tiny_onnx):
    truths = ["发票", "TOTAL 12.50", "合计¥88"]
    data = make_set(tmp_path / "set", truths)
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", "--model", str(tiny_onnx), "--data", str(data), "--json", str(report),
                                   "--breakdown"])
    assert res.exit_code == 0, res.output
    assert "errors per character class" in res.output
    (s,) = json.loads(report.read_text(encoding="utf-8"))["sets"]
    by_class = s["breakdown"]["by_class"]
    assert sum(c["chars"] for c in by_class.values()) == sum(len(t.replace(" ", "")) for t in truths)
    assert by_class["han"]["chars"] == 4 and by_class["digit"]["chars"] == 6


def test_eval_with_an_alphabet_scores_the_restricted_reading(tmp_path, tiny_onnx):
    texts = ["12.50", "TOTAL 88", "合计"]
    data = make_set(tmp_path / "set", texts)
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", "--model", str(tiny_onnx), "--data", str(data), "--json", str(report),
                                   "--alphabet", "digits", "--errors", "3"])
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["meta"]["alphabet"] == "digits"
    preds = [r.text for r in Recognizer(tiny_onnx, alphabet="digits")([data / f"{i}.png" for i in range(3)])]
    assert all(set(p) <= set("0123456789 ") for p in preds)
    assert {e["pred"] for e in doc["sets"][0]["errors"]} <= set(preds)
