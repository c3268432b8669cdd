"""Whole-page OCR: detector + recogniser, reading order, boxes in page pixels, orientation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_detect_classical import render_page

from crnn_ocr.detect import DetectedLine, as_quad, crop_quad, polygon_iou
from crnn_ocr.engine.recognizer import Recognizer
from crnn_ocr.pipeline import (
    CROP_MARGIN,
    OCR,
    confidence_floor,
    format_page,
    full_box,
    is_rule,
    is_symbols,
    load_pages,
    numbered_path,
    turn_tall,
)
from crnn_ocr.results import CharResult, LineResult

LINES = [
    ("第一行 发票号码 12345", 40, 30, 30, "zh"),
    ("Second line TOTAL", 40, 100, 28, "en"),
    ("第三行 合计 ¥88.00", 40, 170, 30, "zh"),
    ("Fourth and last line", 40, 240, 26, "en"),
]
TOPS = [("TTTTT TTTTTT", 40, 40 + 70 * k, 40, "en") for k in range(3)]


class FakeRecognizer:
    """Reads each crop as its size; confident when ink sits in the crop's top half (T-shaped text upright)."""

    def __init__(self) -> None:
        self.calls: list[list[np.ndarray]] = []
        self.margins: list[float | None] = []

    def __call__(self, images: Sequence[np.ndarray], alphabet: str | None = None,
                 lexicon: bool = True, edge_margin: float | None = None) -> list[LineResult]:
        self.calls.append(list(images))
        self.margins.append(edge_margin)
        out = []
        for img in images:
            ink = 255.0 - img.astype(np.float64)
            h = img.shape[0]
            top, bottom = ink[: h // 2].sum(), ink[h - h // 2:].sum()
            out.append(LineResult(f"{img.shape[1]}x{h}", 0.9 if top > bottom else 0.6))
        return out


def test_page_lines_come_in_reading_order_with_page_boxes_from_one_recogniser_call() -> None:
    page, true = render_page(LINES, size=(700, 300))
    rec = FakeRecognizer()
    lines = OCR(recognizer=rec)(page)  # type: ignore[arg-type]
    assert len(rec.calls) == 1 and len(rec.calls[0]) == len(lines) == len(true)
    for got, want, crop in zip(lines, true, rec.calls[0], strict=True):
        assert got.box is not None
        assert polygon_iou(np.asarray(got.box, dtype=np.float32), want) >= 0.5
        assert got.text == f"{crop.shape[1]}x{crop.shape[0]}"
        assert 0.0 <= got.extra["det_score"] <= 1.0
        assert "box" in got.to_dict()


def test_detected_crops_get_the_page_margin_and_a_whole_image_the_recognisers_own() -> None:
    page, _ = render_page(LINES, size=(700, 300))
    for ocr, want in ((OCR(recognizer=FakeRecognizer()), CROP_MARGIN),  # type: ignore[arg-type]
                      (OCR(recognizer=FakeRecognizer(), crop_margin=None), None),  # type: ignore[arg-type]
                      (OCR(detector="none", recognizer=FakeRecognizer()), None)):  # type: ignore[arg-type]
        ocr(page)
        assert ocr.recognizer.margins == [want]
    with pytest.raises(ValueError, match="crop_margin"):
        OCR(recognizer=FakeRecognizer(), crop_margin=-0.5)  # type: ignore[arg-type]


def test_page_crops_are_read_with_the_page_margin_not_the_models(tiny_onnx: Path) -> None:
    page, _ = render_page(LINES, size=(700, 300))
    ocr = OCR(recognizer=Recognizer(tiny_onnx, threads=1, edge_margin=0.4), min_confidence=0.0, crop_margin=0.0)
    crops = [crop_quad(page, ln.quad) for ln in ocr.detect(page)]
    want = [r.text for r in Recognizer(tiny_onnx, threads=1, edge_margin=0.0)(crops)]
    margined = [r.text for r in Recognizer(tiny_onnx, threads=1, edge_margin=0.4)(crops)]
    assert want != margined, "the margin changes what the test model reads"
    assert [ln.text for ln in ocr(page)] == [t for t in want if t]


def test_default_detector_is_classical_and_none_keeps_the_whole_image() -> None:
    rec = FakeRecognizer()
    assert OCR(recognizer=rec).detector_name == "classical"  # type: ignore[arg-type]
    ocr = OCR(detector="none", recognizer=rec)  # type: ignore[arg-type]
    assert ocr.detector == "none"
    page = np.full((40, 120), 255, np.uint8)
    (line,) = ocr(page)
    assert line.box == full_box(120, 40)
    with pytest.raises(ValueError, match="unknown detector"):
        OCR(detector="dbnet", recognizer=rec)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="takes no settings"):
        OCR(detector="none", recognizer=rec, max_gap=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="by name"):
        OCR(detector=TallDetector(), recognizer=rec, max_gap=2.0)  # type: ignore[arg-type]
    assert OCR(recognizer=rec, max_gap=3.0)._detector.config.max_gap == 3.0  # type: ignore[arg-type, union-attr]


class ScriptedRecognizer:
    """Reads the crops of a page as the given texts (with the given confidences), in order."""

    def __init__(self, texts: Sequence[str], confidences: Sequence[float] | None = None) -> None:
        self.texts = list(texts)
        self.confidences = list(confidences or [0.9] * len(texts))

    def __call__(self, images: Sequence[np.ndarray], alphabet: str | None = None,
                 lexicon: bool = True, edge_margin: float | None = None) -> list[LineResult]:
        return [LineResult(t, c) for t, c in zip(self.texts[: len(images)], self.confidences, strict=False)]


def test_rules_of_marks_are_page_decoration_unless_kept() -> None:
    assert all(is_rule(t) for t in ("*****", "* * * * *", "==========", "-.-.-.-.", "＊＊＊＊＊＊", "*****不*****"))
    assert all(is_rule(t) for t in ("**", "====", "___ _"))  # short runs alone on a line are decoration too
    assert not any(is_rule(t) for t in ("-", "*", "** THANK YOU **", "12.50", "-----5", "米米米米米", "", "**不**"))
    page, _ = render_page(LINES, size=(700, 300))
    texts = ["第一行", "**************", "第三行", "=== ==="]
    lines = OCR(recognizer=ScriptedRecognizer(texts))(page)  # type: ignore[arg-type]
    assert [ln.text for ln in lines] == ["第一行", "第三行"]
    kept = OCR(recognizer=ScriptedRecognizer(texts), keep_rules=True)(page)  # type: ignore[arg-type]
    assert [ln.text for ln in kept] == texts
    whole = OCR(detector="none", recognizer=ScriptedRecognizer(["*****"]))(page)  # type: ignore[arg-type]
    assert [ln.text for ln in whole] == ["*****"]  # an image given as one line is read as it is


def test_lines_read_with_little_confidence_are_dropped_from_pages_only() -> None:
    page, _ = render_page(LINES, size=(700, 300))
    rec = ScriptedRecognizer(["第一行", "squiggle", "第三行", "Fourth"], [0.9, 0.3, 0.8, 0.5])
    assert [ln.text for ln in OCR(recognizer=rec)(page)] == ["第一行", "第三行", "Fourth"]  # type: ignore[arg-type]
    assert len(OCR(recognizer=rec, min_confidence=0.0)(page)) == 4  # type: ignore[arg-type]
    assert [ln.text for ln in OCR(recognizer=rec, min_confidence=0.85)(page)] == ["第一行"]  # type: ignore[arg-type]
    unsure = ScriptedRecognizer(["squiggle"], [0.1])
    assert [ln.text for ln in OCR(detector="none", recognizer=unsure)(page)] == ["squiggle"]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_confidence"):
        OCR(recognizer=rec, min_confidence=1.5)  # type: ignore[arg-type]


def test_symbol_lines_need_more_confidence_than_text_lines() -> None:
    assert all(is_symbols(t) for t in ('"~~~X∨\\>', "▼~", "¥", "* * *", "(@ 6%)"))
    assert not any(is_symbols(t) for t in ("(0 0%)", "¥88.00", "** TEL **", "第一行", "", "   "))
    assert confidence_floor("~~>", 0.5) == 0.8 and confidence_floor("~~>", 0.9) == 0.9
    assert confidence_floor("~~>", 0.0) == 0.0 and confidence_floor("Total", 0.5) == 0.5
    page, _ = render_page(LINES, size=(700, 300))
    rec = ScriptedRecognizer(["第一行", '"~~~X∨>', "(0 0%)", "(@ 6%)"], [0.9, 0.6, 0.6, 0.95])
    assert [ln.text for ln in OCR(recognizer=rec)(page)] == ["第一行", "(0 0%)", "(@ 6%)"]  # type: ignore[arg-type]
    assert len(OCR(recognizer=rec, min_confidence=0.0)(page)) == 4  # type: ignore[arg-type]
    whole = OCR(detector="none", recognizer=ScriptedRecognizer(["~~>"], [0.3]))(page)  # type: ignore[arg-type]
    assert [ln.text for ln in whole] == ["~~>"]


class AspectRecognizer:
    """Sure of a crop only when it is at least ``min_aspect`` times wider than tall; one character spans it."""

    def __init__(self, min_aspect: float) -> None:
        self.min_aspect = min_aspect
        self.calls: list[list[tuple[int, int]]] = []

    def __call__(self, images: Sequence[np.ndarray], alphabet: str | None = None,
                 lexicon: bool = True, edge_margin: float | None = None) -> list[LineResult]:
        self.calls.append([img.shape[:2] for img in images])
        out = []
        for img in images:
            h, w = img.shape[:2]
            sure = w >= self.min_aspect * h
            out.append(LineResult(f"{w}x{h}", 0.95 if sure else 0.3, (CharResult("x", 0.9, 0.0, float(w)),)))
        return out


def test_display_type_is_also_read_stretched_and_the_surer_reading_kept() -> None:
    specs = [("Nasi lemak 2 x 5.00", 40, 20, 22, "en"), ("Teh tarik 1 x 2.50", 40, 60, 22, "en"),
             ("Total", 40, 110, 60, "en"), ("Thank you", 40, 200, 22, "en")]
    page, _ = render_page(specs, size=(600, 250))
    rec = AspectRecognizer(min_aspect=3.0)  # the big "Total" crop is about 2.5 times wider than tall
    lines = OCR(recognizer=rec)(page)  # type: ignore[arg-type]
    assert len(rec.calls) == 2 and len(rec.calls[1]) == 1  # only the display line is read again
    (h, w), (h2, w2) = [s for s in rec.calls[0] if s[0] > 40][0], rec.calls[1][0]
    assert h2 == h and w2 == round(w * 1.6)
    big = next(ln for ln in lines if ln.confidence > 0.9 and ln.text == f"{w2}x{h2}")
    assert big.chars[0].x1 == pytest.approx(w2 / 1.6)  # extents in the crop's own pixels
    small = [ln for ln in lines if ln is not big]
    assert len(small) == 3 and all(ln.confidence == 0.95 for ln in small)  # wide anyway: read once
    sure = AspectRecognizer(min_aspect=1.0)
    OCR(recognizer=sure)(page)  # type: ignore[arg-type]
    assert len(sure.calls) == 2  # read again, but the first reading was as sure: kept
    assert [ln.text for ln in OCR(recognizer=sure)(page)][2] == f"{w}x{h}"  # type: ignore[arg-type]


def test_upright_check_reads_an_upside_down_page_the_right_way() -> None:
    page, true = render_page(TOPS, size=(560, 260))
    rec = FakeRecognizer()
    upright = OCR(recognizer=rec, upright_check=True)(page)  # type: ignore[arg-type]
    assert len(rec.calls[-1]) == 2 * len(upright) and not any(ln.extra.get("rotated_180") for ln in upright)
    flipped_page = np.ascontiguousarray(page[::-1, ::-1])
    plain = OCR(recognizer=rec)(flipped_page)  # type: ignore[arg-type]
    assert all(ln.confidence == 0.6 for ln in plain)
    turned = OCR(recognizer=rec, upright_check=True)(flipped_page)  # type: ignore[arg-type]
    assert len(turned) == len(true) and all(ln.extra["rotated_180"] and ln.confidence == 0.9 for ln in turned)
    h, w = page.shape
    first_true = np.array([w, h], dtype=np.float32) - true[0]  # the first line, turned with the page
    assert polygon_iou(np.asarray(turned[0].box, dtype=np.float32), first_true) >= 0.5
    box = np.asarray(turned[0].box)
    assert box[0, 1] > box[2, 1] and box[0, 0] > box[2, 0]  # starts at the text's own top-left corner


class TallDetector:
    name = "tall"

    def __call__(self, image: np.ndarray) -> list[DetectedLine]:
        return [DetectedLine(as_quad([10, 5, 30, 95]), 0.5)]


def test_tall_crops_are_turned_and_flagged_vertical() -> None:
    crop = np.zeros((90, 20), np.uint8)
    crop[:10] = 255
    turned, tall = turn_tall(crop)
    assert tall and turned.shape == (20, 90) and turned[:, :10].min() == 255
    assert not turn_tall(np.zeros((20, 90), np.uint8))[1]
    rec = FakeRecognizer()
    (line,) = OCR(detector=TallDetector(), recognizer=rec)(np.full((100, 50), 255, np.uint8))  # type: ignore[arg-type]
    assert line.extra["vertical"] and rec.calls[0][0].shape == (20, 90)
    assert np.asarray(line.box)[0].tolist() == [30, 5]  # reading starts at the column's top-right


class QuantityDetector:
    """A receipt row: an item, and a quantity ``1`` whose box is one narrow glyph, taller than wide."""

    name = "quantity"

    def __call__(self, image: np.ndarray) -> list[DetectedLine]:
        return [DetectedLine(as_quad([10, 5, 200, 35]), 0.9), DetectedLine(as_quad([220, 5, 234, 35]), 0.9)]


def test_a_lone_narrow_glyph_is_not_turned_as_a_vertical_line() -> None:
    one = np.zeros((30, 14), np.uint8)
    assert turn_tall(one)[1], "taller than wide: turned when the text height is unknown"
    assert not turn_tall(one, text_height=30.0)[1]
    assert turn_tall(np.zeros((60, 14), np.uint8), text_height=30.0)[1]  # two glyphs tall
    rec = FakeRecognizer()
    lines = OCR(detector=QuantityDetector(), recognizer=rec)(np.full((40, 240), 255, np.uint8))  # type: ignore[arg-type]
    assert [c.shape for c in rec.calls[0]] == [(30, 190), (30, 14)]
    assert not any(ln.extra.get("vertical") for ln in lines)


def test_real_recogniser_on_a_page(tiny_onnx: Path) -> None:
    page, true = render_page(LINES, size=(700, 300))
    lines = OCR(recognizer=Recognizer(tiny_onnx))(page)
    assert len(lines) <= len(true)
    assert all(ln.box is not None and ln.text for ln in lines)
    assert all(0 <= x <= 700 and 0 <= y <= 300 for ln in lines for x, y in ln.box)  # type: ignore[union-attr]


def test_format_page_in_three_forms() -> None:
    lines = [LineResult("你好", 0.5, box=full_box(10, 5)), LineResult("ab", 1.0, box=full_box(4, 2))]
    assert format_page("p.png", lines, "text", with_name=False) == "你好\nab"
    assert format_page("p.png", lines, "text", with_name=True).splitlines()[0] == "==> p.png <=="
    import json

    d = json.loads(format_page("p.png", lines, "json", with_name=False))
    assert d["file"] == "p.png" and [ln["text"] for ln in d["lines"]] == ["你好", "ab"]
    tsv = format_page("p.png", lines, "tsv", with_name=False).splitlines()
    assert tsv[1].split("\t") == ["p.png", "1", "ab", "1.0000", "0.0,0.0,4.0,0.0,4.0,2.0,0.0,2.0"]
    with pytest.raises(ValueError):
        format_page("p", lines, "xml", with_name=False)
    assert numbered_path(Path("o/out.png"), 0) == Path("o/out.png")
    assert numbered_path(Path("o/out.png"), 2) == Path("o/out-3.png")


def test_load_pages_reads_images_and_every_pdf_page(tmp_path: Path) -> None:
    a = Image.fromarray(np.full((100, 80), 200, np.uint8))
    b = Image.fromarray(np.full((100, 80), 50, np.uint8))
    a.save(tmp_path / "one.png")
    a.save(tmp_path / "two.pdf", save_all=True, append_images=[b])
    ((name, gray),) = list(load_pages(tmp_path / "one.png"))
    assert name.endswith("one.png") and gray.shape == (100, 80)
    pages = list(load_pages(tmp_path / "two.pdf", dpi=72))
    assert [n.rsplit("#", 1)[1] for n, _ in pages] == ["1", "2"]
    assert pages[0][1].mean() > 150 > pages[1][1].mean()
    light, dark = (Image.fromarray(np.full((60, 40), v, np.uint8)) for v in (200, 50))  # fresh: no PDF state
    light.save(tmp_path / "fax.tiff", save_all=True, append_images=[dark, light.copy()])
    frames = list(load_pages(tmp_path / "fax.tiff"))
    assert [n.rsplit("#", 1)[1] for n, _ in frames] == ["1", "2", "3"]
    assert [round(float(g.mean())) for _, g in frames] == [200, 50, 200]
    light.copy().save(tmp_path / "one.tiff")
    assert [n for n, _ in load_pages(tmp_path / "one.tiff")] == [str(tmp_path / "one.tiff")]


def test_two_column_page_is_read_column_by_column() -> None:
    title = [("两栏文档 Two Columns", 250, 20, 34, "zh")]
    left = [(f"左栏第{k}行 left line {k}", 30, 90 + 44 * k, 24, "zh") for k in range(5)]
    right = [(f"右栏第{k}行 right line {k}", 450, 90 + 44 * k, 24, "zh") for k in range(5)]
    page, true = render_page(title + left + right, size=(860, 330))
    rec = FakeRecognizer()
    lines = OCR(recognizer=rec).detect(page)  # type: ignore[arg-type]
    assert len(lines) == len(true)
    ious = np.array([[polygon_iou(ln.quad, t) for t in true] for ln in lines])
    assert ious.argmax(axis=1).tolist() == list(range(len(true)))  # title, left column, then right column


def test_vertical_chinese_columns_are_read_turned_and_right_to_left() -> None:
    from test_detect_classical import font_for

    font = font_for("zh", 36)
    img = Image.new("L", (260, 380), 255)
    pen = ImageDraw.Draw(img)
    for col, text in enumerate(["竖排第一", "竖排第二"]):
        for k, ch in enumerate(text):
            pen.text((170 - 110 * col, 20 + 46 * k), ch, fill=0, font=font)
    rec = FakeRecognizer()
    lines = OCR(recognizer=rec)(np.asarray(img))  # type: ignore[arg-type]
    assert len(lines) == 2 and all(ln.extra.get("vertical") for ln in lines)
    assert all(c.shape[1] > 2 * c.shape[0] for c in rec.calls[0])  # crops turned to read left to right
    assert lines[0].box[0][0] > lines[1].box[0][0]  # type: ignore[index]  # the right column first


class UprightAspectRecognizer(AspectRecognizer):
    """As :class:`AspectRecognizer`, and half as sure of a crop whose ink sits low (T-shaped text upside down)."""

    def __call__(self, images: Sequence[np.ndarray], alphabet: str | None = None,
                 lexicon: bool = True, edge_margin: float | None = None) -> list[LineResult]:
        out = super().__call__(images, alphabet, lexicon, edge_margin)
        for k, img in enumerate(images):
            ink = 255.0 - img.astype(np.float64)
            h = img.shape[0]
            if ink[: h // 2].sum() < ink[h - h // 2:].sum():
                out[k] = replace(out[k], confidence=out[k].confidence / 2)
        return out


def test_upright_check_also_rereads_display_type_either_way_up() -> None:
    specs = [("TTTTT TTTTTT TTT", 40, 20, 22, "en"), ("TTTT", 40, 70, 60, "en"), ("TTTTTT TTT", 40, 160, 22, "en")]
    page, _ = render_page(specs, size=(600, 210))
    for image, turned in ((page, False), (np.ascontiguousarray(page[::-1, ::-1]), True)):
        rec = UprightAspectRecognizer(min_aspect=3.0)  # the display line's crop is about 2.5 times wider than tall
        lines = OCR(recognizer=rec, upright_check=True)(image)  # type: ignore[arg-type]
        assert len(lines) == 3 and all(bool(ln.extra.get("rotated_180")) == turned for ln in lines)
        assert len(rec.calls) == 2 and len(rec.calls[1]) == 1  # both ways up, then the display line stretched
        h, w = rec.calls[1][0]
        assert [ln.text for ln in lines][1] == f"{w}x{h}" and lines[1].confidence > 0.9
