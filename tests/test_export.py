"""Export: ONNX matches PyTorch, carries its own charset and preprocessing, and has the engine's contract."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from conftest import render_line  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from crnn_ocr.charset import Charset  # noqa: E402
from crnn_ocr.cli import app  # noqa: E402
from crnn_ocr.engine import Recognizer  # noqa: E402
from crnn_ocr.export.onnx import parity, read_metadata, to_onnx_proto  # noqa: E402
from crnn_ocr.meta import ModelMeta  # noqa: E402
from crnn_ocr.models import create_model  # noqa: E402
from crnn_ocr.preprocess import PreprocessConfig  # noqa: E402
from crnn_ocr.train.backend import TorchBackend  # noqa: E402
from crnn_ocr.train.checkpoint import load_checkpoint, meta_of, model_from_checkpoint  # noqa: E402

SMALL = Charset.from_text("\n".join("0123456789abcdefxyz"))
TEXTS = ["abc 123", "fix 42", "0987 dead", "x", "zz 7 beef 1024"]


def save_checkpoint(path: Path, charset: Charset, seed: int = 0) -> Path:
    """A crnn_tiny checkpoint in the trainer's format; the head is scaled up so the random model is confident
    and emits characters (at init the head is tiny and every frame is the blank)."""
    torch.manual_seed(seed)
    model = create_model("crnn_tiny", num_classes=charset.num_classes)
    with torch.no_grad():
        model.head.weight.normal_(0, 2.0)
    torch.save({"model": model.state_dict(), "ema": None, "model_name": "crnn_tiny",
                "model_config": model.cfg.to_dict(), "charset": charset.to_text(), "charset_sha256": charset.sha256,
                "preprocess": PreprocessConfig(height=32).to_json(), "data_summary": "test lines", "step": 7,
                "samples_seen": 123}, path)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A checkpoint over SMALL, exported with the CLI; returns (checkpoint, onnx, CLI output)."""
    d = tmp_path_factory.mktemp("export")
    ckpt = save_checkpoint(d / "tiny.pt", SMALL)
    out = d / "tiny.onnx"
    res = CliRunner().invoke(app, ["export", str(ckpt), "-o", str(out)])
    assert res.exit_code == 0, res.output
    return ckpt, out, res.output


def test_cli_reports_parity(exported):
    _, out, text = exported
    assert out.is_file()
    diff = float(re.search(r"max \|dp\| ([0-9.e+-]+)", text).group(1))
    assert diff < 1e-4


def test_ort_matches_torch_on_random_widths(exported):
    ckpt, out, _ = exported
    model = model_from_checkpoint(load_checkpoint(ckpt))
    diff, agree = parity(out, model, 32, widths=(32, 41, 200, 999), batch=3, seed=5)
    assert diff < 1e-4
    assert agree > 0.99


def test_graph_contract(exported):
    _, out, _ = exported
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[3].dim_param  # dynamic batch and width
    assert (dims[1].dim_value, dims[2].dim_value) == (1, 32)  # fixed channels and height
    rec = Recognizer(out, threads=1)
    probs = rec.backend.run(np.random.default_rng(0).uniform(-1, 1, (3, 1, 32, 52)).astype(np.float32))
    assert probs.shape == (3, 13, SMALL.num_classes)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)  # softmax is inside the graph


def test_same_text_as_torch_on_rendered_lines(exported):
    ckpt, out, _ = exported
    images = [render_line(t, lang="en") for t in TEXTS]
    ours = Recognizer(out, threads=1)(images)
    eager = Recognizer(TorchBackend.from_checkpoint(ckpt))(images)
    assert [r.text for r in ours] == [r.text for r in eager]
    assert any(r.text for r in ours)  # the model does emit characters
    for a, b in zip(ours, eager, strict=True):
        assert [c.x0 for c in a.chars] == pytest.approx([c.x0 for c in b.chars])


def test_metadata_round_trip_with_a_small_charset(exported):
    ckpt, out, _ = exported
    rec = Recognizer(out, threads=1)  # nothing but the .onnx file
    want = meta_of(load_checkpoint(ckpt))
    assert rec.charset == SMALL and rec.meta.charset.sha256 == SMALL.sha256
    assert rec.meta.preprocess == want.preprocess
    assert (rec.name, rec.meta.version) == ("crnn_tiny", "step7")
    assert rec.meta.extra["samples_seen"] == 123 and rec.meta.extra["data"] == "test lines"
    texts = [r.text for r in rec([render_line(t, lang="en") for t in TEXTS])]
    assert set("".join(texts)) <= set(SMALL.symbols) | {" "}


def test_export_writes_the_edge_margin_the_recogniser_then_uses(exported, tmp_path):
    ckpt, out, _ = exported
    assert Recognizer(out, threads=1).edge_margin == 0.0  # the checkpoint's own: none
    margined = tmp_path / "margined.onnx"
    res = CliRunner().invoke(app, ["export", str(ckpt), "-o", str(margined), "--edge-margin", "0.4"])
    assert res.exit_code == 0, res.output
    rec = Recognizer(margined, threads=1)
    assert rec.meta.preprocess.edge_margin == 0.4 and rec.edge_margin == 0.4
    assert Recognizer(margined, threads=1, edge_margin=0.0).edge_margin == 0.0


def test_metadata_is_replaced_not_duplicated(exported):
    _, out, _ = exported
    proto = onnx.load(str(out))
    keys = [p.key for p in proto.metadata_props]
    assert len(keys) == len(set(keys))
    assert read_metadata(proto).charset == SMALL


def test_low_opset_is_refused():
    model = create_model("crnn_tiny", num_classes=SMALL.num_classes)
    with pytest.raises(ValueError, match="opset"):
        to_onnx_proto(model, ModelMeta("crnn_tiny", SMALL, PreprocessConfig()), opset=13)
