"""The Ray engine writes the same records as the local one (a local Ray instance with 2 CPUs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_tiny_onnx
from PIL import Image
from test_batch import content, make_page

from crnn_ocr.batch import BatchConfig, PageJob, run_batch
from crnn_ocr.batch.output import read_records

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'crnn-ocr[ray]')")


def test_ray_and_local_engines_write_identical_records(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    for k in range(5):
        Image.fromarray(make_page(k)).save(pages / f"p{k}.png")
    (pages / "broken.png").write_bytes(b"not a png")
    pdf = [Image.fromarray(make_page(k)).convert("RGB") for k in (1, 2)]
    pdf[0].save(pages / "doc.pdf", save_all=True, append_images=pdf[1:], resolution=100)
    job = PageJob(model=str(make_tiny_onnx(tmp_path / "tiny.onnx")))
    local = run_batch(BatchConfig([pages], tmp_path / "local.jsonl", job, workers=1, progress=False))
    assert (local.written, local.errors) == (8, 1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_batch(BatchConfig([pages], tmp_path / "ray.jsonl", job, workers=2, engine="ray",
                                       progress=False))
        assert (remote.written, remote.errors) == (8, 1)
        assert content(read_records(tmp_path / "ray.jsonl")) == content(read_records(tmp_path / "local.jsonl"))
        again = run_batch(BatchConfig([pages], tmp_path / "ray.jsonl", job, engine="ray", progress=False))
        assert (again.skipped, again.written) == (8, 0)
    finally:
        ray.shutdown()
