"""Line crops of synthetic pages: deterministic, labelled with the page line they show, usable as a
training source."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from crnn_ocr.charset import default_charset
from crnn_ocr.synth.page import PageConfig, PageStream
from crnn_ocr.synth.page_lines import PageLineStream, padded_quad

SMALL = {"width": (320.0, 420.0), "aspect": (0.9, 1.2)}


@pytest.fixture(scope="module")
def stream() -> PageLineStream:
    return PageLineStream(PageConfig.load(None).with_overrides(**SMALL), seed=9, group=8)


def test_padded_quad_grows_along_the_lines_own_axes() -> None:
    box = np.array([[10, 20], [110, 20], [110, 40], [10, 40]], np.float32)  # 20 px high
    out = padded_quad(box, (0.5, 0.25), (0.1, -0.05))
    np.testing.assert_allclose(out, [[0, 18], [115, 18], [115, 39], [0, 39]], atol=1e-4)
    # A rotated line grows the same way in its own frame: same side lengths as the upright one.
    t = np.deg2rad(30)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    turned = padded_quad(box @ rot.T, (0.5, 0.25), (0.1, -0.05))
    np.testing.assert_allclose(turned, out @ rot.T, atol=1e-3)


def test_samples_are_page_lines_and_deterministic(stream: PageLineStream) -> None:
    pages = PageStream(PageConfig.load(None).with_overrides(**SMALL), seed=9)
    fresh = pickle.loads(pickle.dumps(stream))
    texts = set()
    for n in (0, 3, 7, 8, 40):
        img, text = stream[n]
        assert img.dtype == np.uint8 and img.ndim == 2 and min(img.shape) >= 1
        assert text in pages[n // 8][2]  # the label is one of the lines of its page
        again, same = fresh[n]
        assert same == text and np.array_equal(again, img)
        texts.add(text)
    assert len(texts) >= 3
    with pytest.raises(IndexError):
        stream[-1]


def test_crops_show_dark_ink_on_clean_pages() -> None:
    clean = PageLineStream(PageConfig.load(None).with_overrides(**SMALL, degrade=0.0), seed=2, group=4)
    for n in range(0, 24, 3):
        img, text = clean[n]
        lo, hi = np.percentile(img, (2, 98))
        assert hi - lo > 60, text  # ink and paper both in the crop
        assert img.shape[1] > 0.5 * img.shape[0] or len(text) <= 2  # a line, not a sliver


def test_overrides_limit_labels_and_set_page_strength(stream: PageLineStream) -> None:
    short = stream.with_overrides(max_chars=6, degrade=0.0)
    assert short.pages.cfg.degrade == 0.0 and stream.pages.cfg.degrade == 1.0
    assert all(len(short[n][1]) <= 6 for n in range(0, 48, 5))
    with pytest.raises(ValueError, match="max_chars"):
        stream.with_overrides(width=(1.0, 2.0))


def test_pages_source_feeds_training_batches(tmp_path) -> None:
    from crnn_ocr.data.batches import BatchMaker, BatchPlan
    from crnn_ocr.preprocess import PreprocessConfig
    from crnn_ocr.train.config import TrainConfig
    from crnn_ocr.train.loop import build_sources

    pages_yaml = tmp_path / "pages.yaml"
    pages_yaml.write_text("width: [320, 420]\naspect: [0.9, 1.2]\n", encoding="utf-8")
    cfg = TrainConfig.from_dict({"sources": [{"kind": "pages", "path": str(pages_yaml), "weight": 1.0}]})
    charset = default_charset()
    sources, weights, summary = build_sources(cfg, charset)
    assert isinstance(sources[0], PageLineStream) and summary.startswith("pages:")
    maker = BatchMaker(sources, weights, charset, PreprocessConfig(), BatchPlan(chunk_size=24, batch_size=8),
                       seed=4)
    batches = maker.chunk(0)
    texts = [t for b in batches for t in b.texts]
    assert len(texts) >= 20  # nearly every crop is a usable training line
    assert all(b.images.shape[2] == 32 for b in batches)
    # Samples 0..23 all come from page 0 (32 samples share a page): every label is one of its lines.
    assert set(texts) <= set(PageStream(PageConfig.load(pages_yaml), seed=cfg.seed)[0][2])
