"""``crnn-ocr serve``: flags and environment reach the settings; a missing model is a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crnn_ocr import cli
from crnn_ocr.pipeline import OCR
from crnn_ocr.service.settings import Settings


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    got: dict[str, Any] = {}

    def fake_serve(ocr: OCR, settings: Settings, log_level: str = "info") -> None:
        got.update(ocr=ocr, settings=settings, log_level=log_level)

    monkeypatch.setattr("crnn_ocr.service.server.serve", fake_serve)
    return got


def test_serve_flags(tiny_onnx: Path, captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRNN_OCR_API_KEY", raising=False)
    r = CliRunner().invoke(cli.app, ["serve", "--model", str(tiny_onnx), "--port", "5123", "--workers", "2",
                                     "--api-key", "k1", "--max-bytes", "1000", "--cors-origin", "https://a.b"])
    assert r.exit_code == 0, r.output
    s: Settings = captured["settings"]
    assert (s.host, s.port, s.workers, s.api_key, s.max_bytes, s.cors_origins) == (
        "127.0.0.1", 5123, 2, "k1", 1000, ("https://a.b",))
    assert captured["ocr"].recognizer.name == "tiny_test"


def test_serve_defaults_and_env_key(tiny_onnx: Path, captured: dict[str, Any],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRNN_OCR_API_KEY", "from-env")
    r = CliRunner().invoke(cli.app, ["serve", "-m", str(tiny_onnx)])
    assert r.exit_code == 0, r.output
    s: Settings = captured["settings"]
    assert (s.host, s.port, s.api_key, s.max_bytes) == ("127.0.0.1", 5000, "from-env", 20 * 1024 * 1024)


def test_serve_without_bundled_model_fails_clearly(captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(verify: bool = True) -> Path:
        raise FileNotFoundError("the bundled model crnn_lite.int8.onnx is missing from the package")

    monkeypatch.setattr("crnn_ocr.engine.recognizer.bundled_model_path", missing)
    r = CliRunner().invoke(cli.app, ["serve"])
    assert r.exit_code == 2 and not captured
    assert "bundled model" in r.output and "--model" in r.output


def test_serve_missing_model_file(tmp_path: Path, captured: dict[str, Any]) -> None:
    r = CliRunner().invoke(cli.app, ["serve", "--model", str(tmp_path / "nope.onnx")])
    assert r.exit_code == 2 and "not found" in r.output and not captured
