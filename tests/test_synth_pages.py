"""Synthetic pages: deterministic, picklable, line boxes exact around the ink, consistent under the warp."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from crnn_ocr.synth.page import LAYOUTS, PageConfig, PageStream

SMALL = {"width": (320.0, 420.0), "aspect": (0.9, 1.2)}


@pytest.fixture(scope="module")
def stream() -> PageStream:
    return PageStream(PageConfig.load(None).with_overrides(**SMALL), seed=5)


def test_same_index_same_page_also_after_pickling(stream: PageStream) -> None:
    a_img, a_q, a_t = stream[3]
    b_img, b_q, b_t = pickle.loads(pickle.dumps(stream))[3]
    assert np.array_equal(a_img, b_img) and np.array_equal(a_q, b_q) and a_t == b_t
    c_img, _, c_t = stream[4]
    assert c_t != a_t or c_img.shape != a_img.shape or not np.array_equal(c_img, a_img)
    assert a_img.dtype == np.uint8 and a_img.ndim == 3 and a_img.shape[2] == 3
    assert a_q.dtype == np.float32 and a_q.shape == (len(a_t), 4, 2)


def test_config_rejects_unknown_keys(tmp_path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("widht: [300, 400]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="widht"):
        PageConfig.load(bad)


def _union(shape: tuple[int, int], quads: np.ndarray, grow: int = 0) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for q in quads:
        cv2.fillPoly(m, [np.round(q).astype(np.int32)], 255)
    return cv2.dilate(m, np.ones((2 * grow + 1,) * 2, np.uint8)) if grow else m


@pytest.mark.parametrize("layout", LAYOUTS)
def test_clean_page_boxes_are_tight_and_hold_all_ink(stream: PageStream, layout: str) -> None:
    clean = stream.with_overrides(degrade=0.0, layouts={layout: 1.0})
    s = clean.sample(1, masks=True)
    assert s.layout == layout and len(s.quads) >= 2
    ink = s.text_mask > 0
    boxes = _union(ink.shape, s.quads - np.float32([0, 0])) > 0  # quads are axis-aligned on a clean page
    # fillPoly includes the right/bottom edge pixels: ink ends one pixel before x1/y1
    assert not (ink & ~boxes).any(), "labelled ink outside every box"
    for q in s.quads:
        x0, y0 = np.floor(q.min(axis=0)).astype(int)
        x1, y1 = np.ceil(q.max(axis=0)).astype(int)
        cell = ink[y0:y1, x0:x1]
        assert cell[0].any() and cell[-1].any() and cell[:, 0].any() and cell[:, -1].any(), "box not tight"
    # on the rendered image: everything unlike the paper is a labelled line or a rule
    gray = cv2.cvtColor(s.image, cv2.COLOR_BGR2GRAY).astype(np.int16)
    paper = int(np.median(gray))
    marks = np.abs(gray - paper) > 60
    rules = cv2.dilate(s.deco_mask, np.ones((3, 3), np.uint8)) > 0
    assert not (marks & ~rules & ~(_union(ink.shape, s.quads, 1) > 0)).any()


def _receipt_boxes(stream: PageStream, pages: int = 3):
    """``(n, 4)`` xyxy line boxes of clean synthetic receipts, one array per page."""
    for i in range(pages):
        s = stream.with_overrides(degrade=0.0, layouts={"receipt": 1.0}).sample(i)
        yield np.concatenate([s.quads.min(axis=1), s.quads.max(axis=1)], axis=1)


def _same_row(b: np.ndarray, j: int, k: int) -> bool:
    """Box ``k`` overlaps box ``j`` vertically by more than half of ``j``'s height."""
    return min(b[j, 3], b[k, 3]) - max(b[j, 1], b[k, 1]) > 0.5 * (b[j, 3] - b[j, 1])


def test_receipt_rows_give_two_boxes(stream: PageStream) -> None:
    pairs = 0
    for b in _receipt_boxes(stream):
        for j in range(len(b)):
            for k in range(len(b)):
                h = b[j, 3] - b[j, 1]
                if j != k and _same_row(b, j, k) and b[k, 0] - b[j, 2] > 1.5 * h:
                    pairs += 1
    assert pairs >= 3


def test_receipts_have_column_rows_a_few_spaces_apart(stream: PageStream) -> None:
    """Rows of three or more boxes whose gaps are wider than a word space and under three text heights."""
    rows = 0
    for b in _receipt_boxes(stream):
        for j in range(len(b)):
            h = b[j, 3] - b[j, 1]
            xs = sorted((b[k, 0], b[k, 2]) for k in range(len(b)) if _same_row(b, j, k))
            gaps = [c[0] - a[1] for a, c in zip(xs, xs[1:], strict=False)]
            if len(xs) >= 3 and gaps and all(0.6 * h < g < 3.0 * h for g in gaps):
                rows += 1
    assert rows >= 3


def test_perspective_moves_boxes_with_the_ink(stream: PageStream) -> None:
    effects = {k: 0.0 for k in ("paper_texture", "paper_colour", "banner", "lighting", "blur", "noise", "jpeg")}
    cfg = stream.cfg.with_overrides(effects=type(stream.cfg.effects)(rotation=1.0, perspective=1.0, **effects))
    warped = PageStream(cfg, seed=5)
    flat = warped.with_overrides(degrade=0.0)
    s, f = warped.sample(2, masks=True), flat.sample(2)
    assert s.texts == f.texts
    assert not np.allclose(s.quads, f.quads, atol=2.0), "the page was not warped"
    h, w = s.text_mask.shape
    assert s.image.shape[:2] == (h, w)
    assert (s.quads >= -1).all() and (s.quads[..., 0] <= w + 1).all() and (s.quads[..., 1] <= h + 1).all()
    ink = s.text_mask > 127
    assert not (ink & ~(_union((h, w), s.quads, 2) > 0)).any(), "warped ink outside the warped boxes"
    for q in s.quads:
        m = _union((h, w), q[None]) > 0
        assert ink[m].mean() > 0.05, "a warped box holds no ink"


def test_cli_writes_pages_that_bench_page_reads(tmp_path) -> None:
    from typer.testing import CliRunner

    from crnn_ocr.cli import app
    from crnn_ocr.detect.metrics import find_pages, read_page_labels

    cfg = tmp_path / "pages.yaml"
    cfg.write_text("width: [300, 360]\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["synth-pages", "--count", "2", "--seed", "4", "-c", str(cfg), "-o",
                                   str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    pairs = find_pages(tmp_path / "out")
    assert len(pairs) == 2
    page, quads, texts = PageStream(PageConfig.load(cfg), seed=4)[1]
    labels = read_page_labels(pairs[1][1])
    assert [t.text for t in labels] == texts
    assert np.allclose(np.stack([t.quad for t in labels]), quads, atol=0.01)
    assert np.array_equal(cv2.imread(str(pairs[1][0])), page)
    res = CliRunner().invoke(app, ["synth-pages", "--count", "2", "-c", str(cfg), "--preview",
                                   str(tmp_path / "sheet.png")])
    assert res.exit_code == 0 and (tmp_path / "sheet.png").stat().st_size > 1000


def test_pen_marks_draw_over_the_page_without_labels_or_other_changes() -> None:
    import dataclasses

    from crnn_ocr.synth.page import pen_marks

    base = PageConfig.load(None).with_overrides(**SMALL)
    with_pen = PageStream(dataclasses.replace(base, effects=dataclasses.replace(base.effects, pen=1.0)), seed=6)
    without = PageStream(dataclasses.replace(base, effects=dataclasses.replace(base.effects, pen=0.0)), seed=6)
    for i in range(3):
        (a, qa, ta), (b, qb, tb) = without[i], with_pen[i]
        assert ta == tb and np.array_equal(qa, qb)  # the marks are not labelled and move nothing
        assert a.shape == b.shape and (np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 60).sum() > 50
    spans = []
    for seed in range(12):
        mask = np.zeros((300, 400), np.uint8)
        pen_marks(np.random.default_rng(seed), mask, 20.0)
        ys, _ = np.nonzero(mask)
        assert ys.size
        spans.append(ys.max() - ys.min())
    assert max(spans) >= 1.5 * 20  # large marks span more than a row of text


def test_pen_notes_are_text_high_and_look_for_paper_clear_of_print() -> None:
    from crnn_ocr.synth.page import _note, pen_marks

    for seed in range(20):
        strokes, aspect = _note(np.random.default_rng(seed))
        pts = np.concatenate(strokes)
        assert strokes and aspect > 0.2 and pts[:, 0].min() > -0.2 and pts[:, 0].max() < 1.2
        assert pts[:, 1].min() > -0.3 and pts[:, 1].max() < 1.4  # one text height, give or take the pen
    avoid = np.zeros((400, 400), np.uint8)
    avoid[:, :200] = 255  # print on the left half
    hits = 0
    for seed in range(20):
        mask = np.zeros_like(avoid)
        rng = np.random.default_rng(seed)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("crnn_ocr.synth.page.NOTE_SHARE", 1.0)  # notes only
            pen_marks(rng, mask, 20.0, avoid)
        _, xs = np.nonzero(mask)
        hits += int((xs < 200).mean() < 0.1)
    assert hits >= 15  # nearly all notes land on the clear half
