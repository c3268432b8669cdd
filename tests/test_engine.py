"""The engine: input order, thread safety, flat memory, wide lines read whole, and no torch import."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_tiny_onnx, render_line

from crnn_ocr.engine import Recognizer
from crnn_ocr.meta import ModelMeta
from crnn_ocr.preprocess import PreprocessConfig

TEXTS = ["发票号码 No.12345", "合计", "a", "Total ¥88.00 含税", "第二行文字比较长一些 with English words 2024"]


def with_max_width(src: Path, dst: Path, max_width: int) -> Path:
    """A copy of a model whose preprocessing squeezes/windows lines past ``max_width``."""
    proto = onnx.load(str(src))
    props = {p.key: p.value for p in proto.metadata_props}
    meta = ModelMeta.from_props(props)
    new = ModelMeta(meta.name, meta.charset, PreprocessConfig(**{**meta.preprocess.__dict__,
                                                                   "max_width": max_width}), meta.version)
    for p in proto.metadata_props:
        p.value = new.to_props().get(p.key, p.value)
    onnx.save(proto, str(dst))
    return dst


@pytest.fixture(scope="module")
def rec(tiny_onnx: Path) -> Recognizer:
    return Recognizer(tiny_onnx, threads=1, batch_size=2)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [render_line(t) for t in TEXTS]


def test_results_keep_input_order_across_width_buckets(rec, images):
    batched = rec(images[::-1] + images)
    single = [rec(im)[0] for im in images[::-1] + images]
    assert [r.text for r in batched] == [r.text for r in single]
    assert [r.confidence for r in batched] == pytest.approx([r.confidence for r in single], rel=1e-4)


def test_concurrent_callers_get_the_serial_answers(rec, images):
    jobs = [images[i:] + images[:i] for i in range(len(images))] * 3
    serial = [[r.text for r in rec(job)] for job in jobs]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda job: [r.text for r in rec(job)], jobs))
    assert parallel == serial


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_memory_stays_flat_over_many_calls(tmp_path):
    from crnn_ocr.charset import Charset

    # A small charset keeps the model cheap; the engine's buffers and ORT's arena are what is measured.
    model = make_tiny_onnx(tmp_path / "small.onnx", charset=Charset.from_text("\n".join("0123456789abc")))
    rec = Recognizer(model, threads=1, batch_size=4)
    rng = np.random.default_rng(0)

    def call() -> None:
        rec([rng.integers(0, 255, (32, int(rng.integers(16, 1500))), dtype=np.uint8)
             for _ in range(int(rng.integers(1, 5)))])

    for _ in range(100):
        call()
    before = _rss_mb()
    for _ in range(400):
        call()
    assert _rss_mb() - before < 20


def test_wide_line_is_read_to_its_right_end(rec):
    rng = np.random.default_rng(1)
    for width in (4000, 10000):  # under and over the model's max_width (4096)
        line = rng.integers(0, 255, (32, width), dtype=np.uint8)
        res = rec(line)[0]
        assert res.chars and res.chars[-1].x1 > 0.95 * width
        assert [c.x0 for c in res.chars] == sorted(c.x0 for c in res.chars)


def test_windows_stitch_to_the_single_pass_result(tiny_onnx, tmp_path):
    # The test model is a convolution with non-overlapping kernels, so windows must reproduce a single pass
    # exactly: every frame kept from a window sees the same pixels.
    windowed = Recognizer(with_max_width(tiny_onnx, tmp_path / "w.onnx", 512), threads=1)
    whole = Recognizer(tiny_onnx, threads=1)
    line = np.random.default_rng(2).integers(0, 255, (32, 3000), dtype=np.uint8)
    a, b = windowed(line)[0], whole(line)[0]
    assert a.text == b.text and len(a.text) > 100
    assert [x for c in a.chars for x in (c.x0, c.x1)] == pytest.approx([x for c in b.chars for x in (c.x0, c.x1)])


def test_engine_service_and_detection_never_import_torch(tiny_onnx):
    code = ("import sys\n"
            "import numpy as np\n"
            "import crnn_ocr.engine, crnn_ocr.service, crnn_ocr.detect\n"
            "from crnn_ocr.engine import Recognizer\n"
            f"Recognizer({str(tiny_onnx)!r}, threads=1)([np.full((32, 100), 255, np.uint8)])\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_line_model_built_for_another_charset(tmp_path):
    from crnn_ocr.charset import Charset

    cs = Charset.from_text("\n".join("01"))
    rec = Recognizer(make_tiny_onnx(tmp_path / "bin.onnx", charset=cs), threads=1)
    assert set("".join(r.text for r in rec([render_line("0101 1100", lang="en")]))) <= {"0", "1"}
