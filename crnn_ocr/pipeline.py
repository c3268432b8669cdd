"""Whole-image OCR: find text lines (detector), recognise each (recogniser), return them in reading order.

``detector="classical"`` (the default) finds lines with OpenCV; ``detector="none"`` treats the whole image
as one line, boxed by the image. All crops of a page go to the recogniser in one call, which batches them
by width. Torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crnn_ocr.detect import DetectedLine, Detector, create_detector, crop_quad, reading_order, to_tuple
from crnn_ocr.engine.recognizer import Recognizer
from crnn_ocr.preprocess import ImageInput, load_gray
from crnn_ocr.results import MIN_CONFIDENCE, LineResult, Quad

TALL = 1.5
"""A crop this many times taller than wide is a vertical line: it is turned to read left to right."""
TURN_GLYPHS = 1.8
"""A vertical line holds two glyphs or more: a tall crop under this many text heights is one glyph."""
FLIP_MARGIN = 0.05
"""Mean confidence a page turned by 180 degrees must gain to be read that way."""
DISPLAY = 1.4
"""A line this many times taller than the page's median line is display type (totals, titles): often
condensed, so it is also read stretched by :data:`DISPLAY_STRETCH` and the more confident reading wins."""
DISPLAY_STRETCH = 1.6
RULE_MARKS = frozenset("*-=_~.#+·－＝＊＿～—–")
"""Marks that page rules and frames are drawn with (``*****``, ``=====``, ``-.-.-.``)."""
MIN_RULE = 2
"""Fewest marks in a line read as a rule: a lone mark (``-`` in a table cell) is kept as text, a short
run alone on its line (``**``, ``====``, ``____``: the ends of a frame, a fill-in line) is decoration."""
SYMBOL_SHARE = 0.25
"""A line whose letters and digits are at most this share of its characters reads as symbols (``"~~X∨>``)."""
CROP_MARGIN = 0.0
"""Background added at the clean ends of a detected line's crop before it is read, in line heights: a
detector's box is padded already (the classical one by 0.15 of the ink's height on every side), and more
paper on top of that costs accuracy. With the model's own margin (0.4) instead, the step-121,486 model's
character F1 was 0.9675 on 12 real receipts and 0.9379 / 0.9792 / 0.9912 on synthetic pages with pen
marks / of the usual mix / clean; with none, 0.9682 and 0.9393 / 0.9801 / 0.9920 (labelled boxes read as
well either way). An image read as one line (a user's tight crop) still gets the model's margin."""
SYMBOL_CONFIDENCE = 0.8
"""Least confidence a page line read as symbols needs: drawings, logos and handwriting misread as text
come out as symbol soup, read unsurely; printed symbol lines (``(@ 6%)``, ``*** TEL ***``) read surely."""


def is_rule(text: str) -> bool:
    """Whether a line's text is a rule of marks only, page decoration rather than text.

    The classical detector already drops rows of low marks (``-----``) by their shape; rows of
    mid-height marks (``*****``, ``#####``) look like glyphs, so they are recognised and dropped here.
    One character in ten may be something else (a worn star read as ``不``).
    """
    t = text.replace(" ", "")
    marks = sum(c in RULE_MARKS for c in t)
    return marks >= MIN_RULE and (len(t) - marks) * 10 <= marks  # a misread mark in ten leaves a rule a rule


def is_symbols(text: str) -> bool:
    """Whether letters and digits (any script) are at most :data:`SYMBOL_SHARE` of a line's characters."""
    t = text.replace(" ", "")
    return bool(t) and sum(c.isalnum() for c in t) <= SYMBOL_SHARE * len(t)


def confidence_floor(text: str, min_confidence: float) -> float:
    """The confidence a page line needs to be kept: higher for symbol lines, unless all lines are kept."""
    if min_confidence > 0.0 and is_symbols(text):
        return max(min_confidence, SYMBOL_CONFIDENCE)
    return min_confidence


def full_box(width: int, height: int) -> Quad:
    """The quadrilateral of a whole image, clockwise from the top-left corner."""
    return ((0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height)))


def turn_tall(crop: np.ndarray, text_height: float = 0.0) -> tuple[np.ndarray, bool]:
    """A crop taller than wide turned 90 degrees counter-clockwise (its top becomes its left), and a flag.

    Only a crop at least :data:`TURN_GLYPHS` text heights tall (``text_height``: the page's, 0 when not
    known) is a vertical line: a lone narrow glyph (the quantity ``1`` of a receipt row) is taller than
    wide too, and turned it reads as a mark.
    """
    h, w = crop.shape[:2]
    if h > TALL * w and h >= TURN_GLYPHS * text_height:
        return np.ascontiguousarray(np.rot90(crop, 1)), True
    return crop, False


def mean_confidence(results: Sequence[LineResult]) -> float:
    """Confidence averaged over lines, weighted by their length (long lines say more about orientation)."""
    weights = np.array([max(len(r.text), 1) for r in results], dtype=np.float64)
    if not weights.size:
        return 0.0
    return float(np.average([r.confidence for r in results], weights=weights))


class OCR:
    """Detector + recogniser over whole images.

    Args:
        detector: a registered detector name (``"classical"``), ``"none"`` (the image is one line) or a
            :class:`~crnn_ocr.detect.Detector` instance.
        recognizer: a :class:`Recognizer` (default: the bundled model).
        upright_check: also read every line turned by 180 degrees and keep the page orientation the
            recogniser is more confident about (twice the recognition time; for upside-down scans).
        keep_rules: keep lines that read as rules of marks only (``*****``, see :func:`is_rule`), which
            are dropped by default as page decoration; an image read as one line keeps them in any case.
        crop_margin: background added at the clean ends of detected crops (:data:`CROP_MARGIN`);
            ``None``: the recogniser's own margin, for detectors whose boxes are cut tight to the ink.
        min_confidence: lines found on a page and read less confidently are dropped
            (:data:`MIN_CONFIDENCE`; lines read as symbols need :data:`SYMBOL_CONFIDENCE`; 0 keeps all);
            an image read as one line is always returned.
        **detector_options: settings for a detector given by name (e.g. ``max_gap=2.0``).

    >>> ocr = OCR()                                   # doctest: +SKIP
    >>> [line.text for line in ocr("receipt.png")]    # doctest: +SKIP
    """

    def __init__(self, detector: str | Detector = "classical", recognizer: Recognizer | None = None,
                 upright_check: bool = False, keep_rules: bool = False, min_confidence: float = MIN_CONFIDENCE,
                 crop_margin: float | None = CROP_MARGIN, **detector_options: Any) -> None:
        if isinstance(detector, str):
            if detector == "none" and detector_options:
                raise ValueError(f"detector 'none' takes no settings, got {sorted(detector_options)}")
            self._detector = None if detector == "none" else create_detector(detector, **detector_options)
        elif detector_options:
            raise ValueError("detector settings go to a detector given by name, not to a detector object")
        else:
            self._detector = detector
        self.recognizer = recognizer or Recognizer()
        self.upright_check = upright_check
        self.keep_rules = keep_rules
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must lie in [0, 1], got {min_confidence}")
        self.min_confidence = float(min_confidence)
        if crop_margin is not None and crop_margin < 0.0:
            raise ValueError(f"crop_margin must not be negative, got {crop_margin}")
        self.crop_margin = crop_margin

    @property
    def detector(self) -> str | Detector:
        """The detector object, or the string ``"none"`` when the whole image is one line."""
        return "none" if self._detector is None else self._detector

    @property
    def detector_name(self) -> str:
        """``"none"`` or the detector's name."""
        return "none" if self._detector is None else self._detector.name

    def __call__(self, image: ImageInput, alphabet: str | None = None, lexicon: bool = True) -> list[LineResult]:
        """Recognise the lines of one image in reading order; boxes are in the image's pixels.

        ``alphabet`` restricts what is read (see :class:`Recognizer`); ``None``: the recogniser's own.
        ``lexicon=False`` reads exactly what the model reads (no lexicon correction).
        """
        gray = load_gray(image)
        if self._detector is None:
            h, w = gray.shape
            (res,) = self.recognizer([gray], alphabet, lexicon)
            return [res.with_box(full_box(w, h))] if res.text else []
        return self.read_lines(gray, self.detect(gray), alphabet, lexicon)

    def detect(self, image: ImageInput) -> list[DetectedLine]:
        """The detector's lines in reading order (no recognition)."""
        if self._detector is None:
            raise ValueError("detector 'none' finds no lines")
        lines = self._detector(load_gray(image))
        return [lines[i] for i in reading_order([ln.quad for ln in lines])]

    def read_lines(self, gray: np.ndarray, lines: Sequence[DetectedLine], alphabet: str | None = None,
                   lexicon: bool = True) -> list[LineResult]:
        """Recognise ordered lines of a gray page in one recogniser call.

        Empty readings, rules of marks and lines read less confidently than their floor
        (:func:`confidence_floor`) are dropped.
        """
        if not lines:
            return []
        cut = [crop_quad(gray, ln.quad) for ln in lines]
        text_height = float(np.median([min(c.shape[:2]) for c in cut]))  # the short side, in either orientation
        crops, tall = zip(*(turn_tall(c, text_height) for c in cut), strict=True)
        quads = [ln.quad if not t else np.roll(ln.quad, -1, axis=0) for ln, t in zip(lines, tall, strict=True)]
        if self.upright_check:
            turned = [np.ascontiguousarray(np.rot90(c, 2)) for c in crops]
            both = self.recognizer(list(crops) + turned, alphabet, lexicon, self.crop_margin)
            results, flipped = both[: len(crops)], both[len(crops):]
            if mean_confidence(flipped) > mean_confidence(results) + FLIP_MARGIN:
                flipped = self._reread_display(turned, flipped, alphabet, lexicon)
                return self._assemble(flipped[::-1], [np.roll(q, 2, axis=0) for q in quads][::-1],
                                      list(lines)[::-1], list(tall)[::-1], turned=True)
        else:
            results = self.recognizer(list(crops), alphabet, lexicon, self.crop_margin)
        results = self._reread_display(crops, results, alphabet, lexicon)
        return self._assemble(results, quads, list(lines), list(tall), turned=False)

    def _reread_display(self, crops: Sequence[np.ndarray], results: list[LineResult], alphabet: str | None,
                        lexicon: bool) -> list[LineResult]:
        """Lines of display type read again stretched in width; the more confident reading is kept.

        Large type on receipts and notices (the total, a shop's name) is often a condensed face whose
        glyphs, scaled to the model's height, are narrower than any it was trained on (a total of
        ``14.85`` read as two stray marks). Character extents of a stretched reading are mapped back to
        the crop's pixels.
        """
        heights = np.array([c.shape[0] for c in crops], dtype=np.float64)
        big = [i for i, c in enumerate(crops) if c.shape[0] > DISPLAY * float(np.median(heights))]
        if not big:
            return list(results)
        wide = [cv2.resize(crops[i], (max(1, round(crops[i].shape[1] * DISPLAY_STRETCH)), crops[i].shape[0]),
                           interpolation=cv2.INTER_LINEAR) for i in big]
        out = list(results)
        for i, res in zip(big, self.recognizer(wide, alphabet, lexicon, self.crop_margin), strict=True):
            if res.confidence > out[i].confidence:
                chars = tuple(replace(c, x0=c.x0 / DISPLAY_STRETCH, x1=c.x1 / DISPLAY_STRETCH) for c in res.chars)
                out[i] = replace(res, chars=chars)
        return out

    def _assemble(self, results: Sequence[LineResult], quads: Sequence[np.ndarray], lines: Sequence[DetectedLine],
                  tall: Sequence[bool], turned: bool) -> list[LineResult]:
        out = []
        for res, quad, ln, t in zip(results, quads, lines, tall, strict=True):
            if not res.text or res.confidence < confidence_floor(res.text, self.min_confidence) or \
                    (not self.keep_rules and is_rule(res.text)):
                continue
            extra = {"det_score": round(float(ln.score), 4)}
            if ln.vertical or t:
                extra["vertical"] = True
            if turned:
                extra["rotated_180"] = True
            out.append(LineResult(res.text, res.confidence, res.chars, to_tuple(quad), extra))
        return out


def load_pages(path: str | Path, dpi: int = 200) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, gray page)`` for an image, or one per page of a PDF (pypdfium2) or multi-page TIFF.

    Pages are produced one at a time. Names are the file name, with ``#page`` (from 1) for the pages of
    a PDF or multi-page TIFF.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".pdf":
        yield from _pdf_pages(p, dpi)
    elif suffix in (".tif", ".tiff") and _frame_count(p) > 1:
        yield from _tiff_pages(p)
    else:
        yield str(p), load_gray(p)


def _pdf_pages(p: Path, dpi: int) -> Iterator[tuple[str, np.ndarray]]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(p))
    try:
        for k in range(len(pdf)):
            bitmap = pdf[k].render(scale=dpi / 72.0, grayscale=True)
            yield f"{p}#{k + 1}", load_gray(np.asarray(bitmap.to_numpy()))
    finally:
        pdf.close()


def _frame_count(p: Path) -> int:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as img:
            return int(getattr(img, "n_frames", 1))
    except (OSError, UnidentifiedImageError):
        return 1  # load_gray reports the error


def _tiff_pages(p: Path) -> Iterator[tuple[str, np.ndarray]]:
    from PIL import Image, ImageSequence

    with Image.open(p) as img:
        for k, frame in enumerate(ImageSequence.Iterator(img)):
            yield f"{p}#{k + 1}", load_gray(frame.copy())


def format_page(name: str, lines: Sequence[LineResult], fmt: str, with_name: bool) -> str:
    """One page's lines as ``text``, ``json`` (one object) or ``tsv`` (name, index, text, confidence, box).

    ``with_name`` heads text output with the page name (several pages in one run).
    """
    if fmt == "json":
        return json.dumps({"file": name, "lines": [ln.to_dict(chars=False) for ln in lines]}, ensure_ascii=False)
    if fmt == "tsv":
        rows = []
        for i, ln in enumerate(lines):
            box = ",".join(f"{v:.1f}" for p in (ln.box or ()) for v in p)
            rows.append(f"{name}\t{i}\t{ln.text}\t{ln.confidence:.4f}\t{box}")
        return "\n".join(rows)
    if fmt != "text":
        raise ValueError(f"format must be text, json or tsv, not {fmt!r}")
    body = "\n".join(ln.text for ln in lines)
    return f"==> {name} <==\n{body}" if with_name else body


def numbered_path(path: Path, k: int) -> Path:
    """``out.png`` for the first page, ``out-2.png``, ``out-3.png``... for the next ones."""
    return path if k == 0 else path.with_name(f"{path.stem}-{k + 1}{path.suffix}")
