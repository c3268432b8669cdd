"""The classical detector on synthetic pages with one degradation at a time (rendered in the test)."""

from __future__ import annotations

import dataclasses

import pytest

from crnn_ocr.detect.classical import ClassicalDetector
from crnn_ocr.detect.metrics import iou_matrix, match
from crnn_ocr.synth.page import PageConfig, PageEffects, PageStream

PAGES = (0, 1, 2, 3)
SEED = 11


def effect_pages(effect: str) -> PageStream:
    """Pages with only ``effect`` applied, on every page."""
    off = PageEffects(**{f.name: 0.0 for f in dataclasses.fields(PageEffects)})
    cfg = dataclasses.replace(PageConfig.load(None), effects=dataclasses.replace(off, **{effect: 1.0}), degrade=1.0)
    return PageStream(cfg, seed=SEED)


def recall_precision(stream: PageStream, pages: tuple[int, ...] = PAGES) -> tuple[float, float]:
    """Detection recall and precision at IoU 0.5 over the given pages."""
    det = ClassicalDetector()
    matched = true = pred = 0
    for i in pages:
        image, quads, _ = stream[i]
        lines = det(image)
        matched += len(match(iou_matrix([ln.quad for ln in lines], list(quads)), 0.5))
        true, pred = true + len(quads), pred + len(lines)
    return matched / true, matched / max(pred, 1)


@pytest.mark.parametrize(("effect", "pages", "min_recall", "min_precision"), [
    # a photo of paper on a desk: the desk around the page is one huge component, which used to be
    # linked with every glyph into a single line (recall near 0)
    ("perspective", PAGES, 0.85, 0.85),
    # rotated pages leave desk-coloured corners, likewise one component around the text
    ("rotation", PAGES, 0.85, 0.85),
    # mottled paper: its blotches used to pass the contrast threshold as ink
    ("paper_texture", PAGES, 0.85, 0.85),
    # strong JPEG (a receipt at low quality): the max-filter background sat on the ringing peaks, so the
    # paper between the rows became ink and joined them
    ("jpeg", (7, 9), 0.9, 0.9),
])
def test_degraded_pages_keep_recall_and_precision(effect: str, pages: tuple[int, ...], min_recall: float,
                                                  min_precision: float) -> None:
    recall, precision = recall_precision(effect_pages(effect), pages)
    assert recall >= min_recall, f"{effect}: recall {recall:.3f}"
    assert precision >= min_precision, f"{effect}: precision {precision:.3f}"


def test_default_degradations_mixed() -> None:
    recall, precision = recall_precision(PageStream(PageConfig.load(None), seed=SEED), tuple(range(6)))
    assert recall >= 0.8 and precision >= 0.8, (recall, precision)

