"""Shared fixtures: rendered line images and tiny self-describing ONNX models built without torch."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from crnn_ocr.charset import Charset, default_charset
from crnn_ocr.meta import ModelMeta
from crnn_ocr.preprocess import PreprocessConfig


def find_font(lang: str = "zh") -> str | None:
    """A font file for ``lang`` (``zh``, ``en``, or ``mono``: monospaced Latin) from fontconfig, or None."""
    pattern = {"zh": "Noto Sans CJK SC", "mono": "DejaVu Sans Mono"}.get(lang, "DejaVu Sans")
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}", pattern], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def render_line(text: str, height: int = 40, font_size: int = 28, lang: str = "zh") -> np.ndarray:
    """Render ``text`` black on white as a gray uint8 line image."""
    from PIL import Image, ImageDraw, ImageFont

    path = find_font(lang)
    font = ImageFont.truetype(path, font_size) if path else ImageFont.load_default()
    left, top, right, bottom = font.getbbox(text or " ")
    w = max(8, right - left + 16)
    img = Image.new("L", (w, height), 255)
    ImageDraw.Draw(img).text((8 - left, (height - (bottom - top)) // 2 - top), text, fill=0, font=font)
    return np.asarray(img).copy()


def frame_probs(charset: Charset, frames: list[dict[str, float]]) -> np.ndarray:
    """``(T, C)`` probabilities: each frame's listed symbols get their probability, the blank the rest."""
    probs = np.zeros((len(frames), charset.num_classes), np.float32)
    for t, frame in enumerate(frames):
        for ch, p in frame.items():
            probs[t, charset.encode(ch)[0]] = p
        probs[t, 0] = 1.0 - sum(frame.values())
    return probs


class FixedBackend:
    """A backend that gives every line of a batch the same ``(T, C)`` frame probabilities, whatever the pixels."""

    def __init__(self, meta: ModelMeta, probs: np.ndarray) -> None:
        self.meta = meta
        self.probs = probs

    def run(self, batch: np.ndarray) -> np.ndarray:
        return np.repeat(self.probs[None], batch.shape[0], axis=0)


def make_tiny_onnx(path: Path, charset: Charset | None = None, stride: int = 4, seed: int = 0,
                   name: str = "tiny_test", height: int = 32) -> Path:
    """A random conv-only recogniser: (N,1,H,W) -> (N, W/stride, C) softmax, with crnn-ocr metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    charset = charset or default_charset()
    c = charset.num_classes
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.5, size=(c, 1, height, stride)).astype(np.float32)
    b = rng.normal(0, 0.5, size=(c,)).astype(np.float32)
    b[0] += 1.0  # favour the blank a little, as a trained model does
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["conv"], kernel_shape=[height, stride], strides=[1, stride]),
        helper.make_node("Squeeze", ["conv", "axes"], ["sq"]),
        helper.make_node("Transpose", ["sq"], ["tr"], perm=[0, 2, 1]),
        helper.make_node("Softmax", ["tr"], ["probs"], axis=2),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, height, "W"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", "T", c])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
         numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMeta(name, charset, PreprocessConfig(height=height), version="test")
    for k, v in meta.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random ONNX recogniser over the default charset."""
    return make_tiny_onnx(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="session")
def zh_line() -> np.ndarray:
    """A rendered Chinese/English line."""
    return render_line("发票号码 No.12345 合计¥88.00")


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Small tensors: more threads only wait on each other on a busy machine; restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
