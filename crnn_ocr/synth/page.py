"""Synthetic pages with exact line boxes, for training and validating the DB text detector.

Page ``i`` is a pure function of ``(seed, i)`` and the config. Lines are drawn with the line renderer's
glyph cache (:mod:`crnn_ocr.synth.render`) into a page-sized ink mask; each line's box is the tight
bounding box of its own ink (line-level ground truth as in ICDAR/SROIE), and items on one row that are
further apart than a few characters are separate lines (a receipt row ``TOTAL        12.50`` gives two
boxes). Paper, banners and light are applied to the finished page, then one homography (small rotation,
photo-of-paper perspective) moves the image and every box together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from crnn_ocr.charset import Charset, default_charset
from crnn_ocr.synth import degrade as dg
from crnn_ocr.synth import render as rd
from crnn_ocr.synth.config import Range, SynthConfig, _build
from crnn_ocr.synth.corpus import SOURCES, amount, clean, date_str
from crnn_ocr.synth.stream import LazyStream, Resources, load_resources

LAYOUTS = ("paragraph", "receipt", "table", "form")


@dataclass(frozen=True)
class PageEffects:
    """Probability of each page-level appearance change, before scaling by ``PageConfig.degrade``."""

    paper_texture: float = 0.4
    paper_colour: float = 0.4
    banner: float = 0.35
    lighting: float = 0.5
    rotation: float = 0.4
    perspective: float = 0.3
    blur: float = 0.3
    noise: float = 0.4
    jpeg: float = 0.4
    pen: float = 0.25


@dataclass(frozen=True)
class PageConfig:
    """What a synthetic page looks like; the bundled defaults are ``crnn_ocr/assets/pages.yaml``.

    Args:
        width: page width range in pixels (before rotation and perspective).
        aspect: page height / width range (receipts are made at least 1.3 times taller than wide).
        sizes: font sizes in pixels (the line renderer's sizes share its glyph atlases).
        layouts: relative weights of the layouts in :data:`LAYOUTS`.
        margin: page margin range as a fraction of the width.
        line_spacing: baseline-to-baseline distance range, in font sizes.
        max_rotation: largest page rotation in degrees.
        perspective: largest corner displacement of the photo warp, as a fraction of the page size.
        degrade: strength in [0, 1]; every effect probability is multiplied by it (0: clean pages).
        synth: line synth YAML whose fonts and text sources are used (empty: the bundled one).
    """

    width: Range = (480.0, 800.0)
    aspect: Range = (0.75, 1.5)
    sizes: tuple[int, ...] = (18, 22, 27, 33, 40)
    layouts: dict[str, float] = field(default_factory=lambda: {k: 1.0 for k in LAYOUTS})
    margin: Range = (0.02, 0.1)
    line_spacing: Range = (1.3, 1.9)
    max_rotation: float = 4.0
    perspective: float = 0.06
    degrade: float = 1.0
    synth: str = ""
    effects: PageEffects = field(default_factory=PageEffects)

    def __post_init__(self) -> None:
        unknown = set(self.layouts) - set(LAYOUTS)
        if unknown:
            raise ValueError(f"unknown page layouts {sorted(unknown)}; known: {', '.join(LAYOUTS)}")
        if not 0.0 <= self.degrade <= 1.0:
            raise ValueError(f"degrade must be in [0, 1], got {self.degrade}")

    def with_overrides(self, **kw: Any) -> PageConfig:
        """A copy with top-level fields replaced (``degrade=0`` gives clean pages)."""
        return dataclasses.replace(self, **kw)

    @classmethod
    def load(cls, path: str | Path | None) -> PageConfig:
        """Read a YAML file (missing keys keep their defaults, unknown keys raise), or the bundled defaults."""
        if path is None:
            text = resources.files("crnn_ocr").joinpath("assets/pages.yaml").read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError(f"page config {path or 'pages.yaml'}: expected a mapping at the top level")
        return _build(cls, data, "")


@dataclass(frozen=True)
class PageSample:
    """One page with what produced it; ``text_mask`` (labelled ink, warped like the page) only on request."""

    image: np.ndarray
    quads: np.ndarray
    texts: list[str]
    layout: str
    text_mask: np.ndarray | None = None
    deco_mask: np.ndarray | None = None


class _Canvas:
    """Ink masks of a page being laid out, and the lines placed on it."""

    def __init__(self, h: int, w: int) -> None:
        self.text = np.zeros((h, w), np.uint8)
        self.deco = np.zeros((h, w), np.uint8)
        self.pen = np.zeros((h, w), np.uint8)
        self.pen_colour = np.zeros(3, np.uint8)
        self.banners: list[tuple[int, int, int, int]] = []
        self.boxes: list[tuple[int, int, int, int]] = []
        self.texts: list[str] = []


class _Page:
    """Draws one page: the layout functions call :meth:`line` for every labelled line."""

    def __init__(self, rng: np.random.Generator, res: Resources, synth: SynthConfig, cfg: PageConfig,
                 canvas: _Canvas) -> None:
        self.rng, self.res, self.synth, self.cfg, self.c = rng, res, synth, cfg, canvas
        lib = res.fonts
        cjk = np.flatnonzero(lib.is_cjk)
        use_cjk = cjk.size and rng.random() < 0.7
        pool = cjk if use_cjk else np.arange(len(lib.faces))
        self.body_face = int(pool[int(rng.integers(len(pool)))])
        self.sizes = sorted(cfg.sizes)

    def size(self, lo: int = 0, hi: int | None = None) -> int:
        """A font size from the configured list, by index range."""
        s = self.sizes[lo: hi if hi is not None else len(self.sizes)] or self.sizes
        return int(s[int(self.rng.integers(len(s)))])

    def text(self, source: str, n: int) -> str:
        """Text of about ``n`` characters from a corpus source, restricted to renderable characters."""
        cd = self.res.corpus
        for _ in range(3):
            t = clean(SOURCES[source](self.rng, cd, max(1, n)), cd.allowed, max(1, n))
            if t:
                return t
        return "0"

    def face_for(self, text: str) -> int:
        """The page's body face when it has every character, otherwise another face that has."""
        lib = self.res.fonts
        if all(lib.has(self.body_face, ch) for ch in set(text)):
            return self.body_face
        face = lib.pick(text, self.rng)
        return self.body_face if face is None else face

    def line(self, text: str, x: float, baseline: float, size: int, max_width: float, align: str = "left",
             face: int | None = None, bold: bool = False) -> tuple[int, int, int, int] | None:
        """Draw one labelled line; returns its ink box ``(x0, y0, x1, y1)`` or None when nothing fits.

        ``x`` is the left edge (``align="left"``), the centre (``"center"``) or the right edge (``"right"``);
        characters that do not fit ``max_width`` are dropped from the end.
        """
        text = text.strip()
        if not text or max_width < size:
            return None
        lib = self.res.fonts
        face = self.face_for(text) if face is None else face
        stroke = 1 if bold and not lib.faces[face].bold and size >= 22 else 0
        glyph = lib.glyph_fn(face, size, stroke)
        tracking = self.rng.uniform(-0.02, 0.2) * size if self.rng.random() < 0.15 else 0.0
        layout = rd.Layout(tracking=tracking, stroke=stroke)
        glyphs, xs, width = rd.char_positions(text, glyph, layout)
        if width > max_width:
            n = int(np.searchsorted(np.asarray(xs) + [g.advance for g in glyphs], max_width, side="right"))
            text = text[:n].rstrip()
            if not text:
                return None
            glyphs, xs, width = rd.char_positions(text, glyph, layout)
        left = x if align == "left" else (x - width / 2 if align == "center" else x - width)
        pad = size
        h, w = int(2 * size + 2 * pad), int(np.ceil(width)) + 2 * pad + size
        ox, oy = int(np.floor(left)) - pad, int(round(baseline)) - size - pad
        local = np.zeros((h, w), np.uint8)
        rd.draw_text(local, (left - ox, baseline - oy), text, glyph, layout, (glyphs, xs, width))
        ink = rd.ink_bounds(local)
        if ink is None:
            return None
        H, W = self.c.text.shape
        x0, y0, x1, y1 = ink[0] + ox, ink[1] + oy, ink[2] + ox, ink[3] + oy
        if x0 < 0 or y0 < 0 or x1 > W or y1 > H:
            return None  # off the page: not drawn, not labelled
        region = self.c.text[y0:y1, x0:x1]
        np.maximum(region, local[ink[1]:ink[3], ink[0]:ink[2]], out=region)
        self.c.boxes.append((x0, y0, x1, y1))
        self.c.texts.append(text)
        return x0, y0, x1, y1

    def rule(self, p0: tuple[float, float], p1: tuple[float, float], size: int) -> None:
        """An unlabelled rule (table lines, separators)."""
        t = max(1, int(round(size * self.rng.uniform(0.04, 0.1))))
        cv2.line(self.c.deco, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), 255, t)

    def banner(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        """Maybe make a dark band (light text inside) behind a title or header row."""
        if self.rng.random() >= self.cfg.effects.banner * self.cfg.degrade:
            return False
        self.c.banners.append((int(x0), int(y0), int(x1), int(y1)))
        return True


# ------------------------------------------------------------------------------------------------ layouts


def _title(p: _Page, x0: float, x1: float, y: float) -> float:
    """A bigger (often bold, sometimes centred or on a banner) heading; returns the next free y."""
    size = p.size(len(p.sizes) // 2)
    src = "zh_words" if p.rng.random() < 0.6 else "en_words"
    text = p.text(src, int(p.rng.integers(3, 14)))
    centre = p.rng.random() < 0.5
    top = y
    baseline = y + rd.CAP * size + 0.3 * size
    if p.banner(x0 - 0.2 * size, top, x1 + 0.2 * size, baseline + (rd.DESC + 0.4) * size):
        baseline += 0.1 * size
    p.line(text, (x0 + x1) / 2 if centre else x0, baseline, size, x1 - x0, "center" if centre else "left",
           bold=p.rng.random() < 0.6)
    return baseline + (rd.DESC + 0.8) * size


def _paragraphs(p: _Page, x0: float, x1: float, y: float, y_end: float) -> None:
    """Body text in one or two columns, paragraphs separated by a gap, ragged last lines."""
    rng = p.rng
    size = p.size(0, 3)
    pitch = rng.uniform(*p.cfg.line_spacing) * size
    cols = 2 if x1 - x0 > 26 * size and rng.random() < 0.35 else 1
    gutter = rng.uniform(1.5, 3.0) * size
    col_w = (x1 - x0 - gutter * (cols - 1)) / cols
    src = str(rng.choice(["zh_prose", "en_words", "mixed", "faker"], p=[0.45, 0.3, 0.15, 0.1]))
    per_char = size * (1.0 if src in ("zh_prose", "mixed") else 0.5)
    for c in range(cols):
        cx = x0 + c * (col_w + gutter)
        baseline = y + rd.CAP * size
        left_in_par = int(rng.integers(2, 8))
        while baseline + rd.DESC * size < y_end:
            last = left_in_par == 1
            indent = 2 * size if left_in_par == -1 else 0.0
            n = int(col_w / per_char * (rng.uniform(0.3, 0.9) if last else 1.3)) + 2
            p.line(p.text(src, n), cx + indent, baseline, size, col_w - indent)
            baseline += pitch
            left_in_par -= 1
            if left_in_par == 0:
                baseline += rng.uniform(0.2, 1.0) * size
                left_in_par = int(rng.integers(2, 8))


def _receipt(p: _Page, x0: float, x1: float, y: float, y_end: float) -> None:
    """A till receipt: centred header, item rows with the price far right, separators, totals, footer."""
    rng = p.rng
    size = p.size(0, 3)
    pitch = rng.uniform(1.25, 1.6) * size
    baseline = y + rd.CAP * size
    mid = (x0 + x1) / 2
    w = x1 - x0
    for _ in range(int(rng.integers(1, 5))):  # header
        p.line(p.text("en_receipt" if rng.random() < 0.6 else "faker", 30), mid, baseline, size, w, "center")
        baseline += pitch
    dash = str(rng.choice(["-", "=", "*", "."]))
    while baseline + rd.DESC * size < y_end:
        r = rng.random()
        if r < 0.12:  # separator row: unlabelled
            p.rule((x0, baseline - 0.3 * size), (x1, baseline - 0.3 * size), size) if dash == "=" else \
                _dashes(p, dash, x0, x1, baseline, size)
        elif r < 0.3:  # item, quantity, unit price, amount: columns a double space or more apart
            _columns_row(p, x0, x1, baseline, size)
        elif r < 0.8:  # item ... price, far apart: two boxes
            box = p.line(_price(p, 0.8), x1, baseline, size, w / 2, "right")
            right_free = (box[0] if box else x1) - 2.0 * size
            item = _item(p, 24)
            if rng.random() < 0.3:
                item = f"{int(rng.integers(1, 9))} {item}"
            p.line(item, x0, baseline, size, right_free - x0)
        elif r < 0.9:
            p.line(str(rng.choice(["TOTAL", "SUBTOTAL", "合计", "CASH", "CHANGE", "GST", "总计", "TAX"])), x0,
                   baseline, size, w / 2)
            p.line(amount(rng), x1, baseline, size, w / 2 - 2 * size, "right")
        else:
            p.line(date_str(rng) if rng.random() < 0.5 else p.text("en_receipt", 20), mid, baseline, size, w,
                   "center")
        baseline += pitch


def _columns_row(p: _Page, x0: float, x1: float, baseline: float, size: int) -> None:
    """An item row of a till's columns, right-aligned from the right edge, one box per column.

    Tills print ``ITEM   QTY   PRICE   AMOUNT`` with a few spaces between columns; line-level labels (as in
    SROIE) give each column its own box. The gaps (1.2-2.6 text sizes, two to four spaces of monospaced
    print) are wider than a word space and far narrower than the item ... price rows, so the detector
    learns where a row stops being one line.
    """
    rng = p.rng
    cells = [amount(rng), _price(p, 0.7),
             str(rng.choice([f"{int(rng.integers(1, 20))}", f"{int(rng.integers(1, 9))}.00",
                             f"x{int(rng.integers(1, 9))}", f"{int(rng.integers(1, 9))} PC"]))]
    right = x1
    for cell in cells[: int(rng.integers(2, 4))]:
        box = p.line(cell, right, baseline, size, (right - x0) / 2, "right")
        if box is None:
            return
        right = box[0] - rng.uniform(1.2, 2.6) * size
    p.line(_item(p, 16), x0, baseline, size, right - x0)


def _item(p: _Page, n: int) -> str:
    """An item name of about ``n`` characters: receipt English, Chinese words or invoice wording."""
    return p.text(str(p.rng.choice(["en_receipt", "zh_words", "invoice"])), n)


def _price(p: _Page, formatted: float) -> str:
    """A price: a currency-formatted amount with probability ``formatted``, else a bare two-decimal number."""
    return amount(p.rng) if p.rng.random() < formatted else f"{p.rng.uniform(0, 99):.2f}"


def _dashes(p: _Page, ch: str, x0: float, x1: float, baseline: float, size: int) -> None:
    """A row of dashes, stars or dots drawn into the decoration mask (not text, as in receipt labels)."""
    glyph = p.res.fonts.glyph_fn(p.body_face if p.res.fonts.has(p.body_face, ch) else 0, size)
    g = glyph(ch)
    if g.advance <= 0:
        return
    n = int((x1 - x0) / g.advance)
    rd.draw_text(p.c.deco, (x0, baseline), ch * n, glyph, rd.Layout())


def _table(p: _Page, x0: float, x1: float, y: float, y_end: float) -> float:
    """A ruled grid; each non-empty cell holds one line, the header row sometimes light on dark.

    Returns the y below the table.
    """
    rng = p.rng
    size = p.size(0, 3)
    ncol = int(rng.integers(2, 6))
    widths = rng.uniform(0.6, 1.6, ncol)
    edges = x0 + np.concatenate([[0], np.cumsum(widths)]) / widths.sum() * (x1 - x0)
    row_h = rng.uniform(1.6, 2.4) * size
    nrow = int(min(rng.integers(3, 16), (y_end - y) // row_h))
    if nrow < 1:
        return y_end
    ys = y + row_h * np.arange(nrow + 1)
    header_dark = p.banner(edges[0], ys[0], edges[-1], ys[1])
    full_grid = rng.random() < 0.6
    for k, yy in enumerate(ys):
        if full_grid or k in (0, 1, nrow):
            p.rule((edges[0], yy), (edges[-1], yy), size)
    if full_grid:
        for e in edges:
            p.rule((e, ys[0]), (e, ys[-1]), size)
    kinds = [str(rng.choice(["zh_words", "digits", "en_words", "invoice", "faker"])) for _ in range(ncol)]
    for r in range(nrow):
        baseline = ys[r] + (row_h + (rd.CAP - rd.DESC) * size) / 2
        for c in range(ncol):
            if r > 0 and rng.random() < 0.1:
                continue  # empty cell
            cw = edges[c + 1] - edges[c] - 0.8 * size
            if r == 0:
                text = p.text("zh_words" if rng.random() < 0.6 else "en_words", int(rng.integers(2, 6)))
            else:
                text = amount(rng) if kinds[c] == "digits" and rng.random() < 0.5 else \
                    p.text(kinds[c], int(rng.integers(2, 12)))
            align = str(rng.choice(["left", "center"])) if not header_dark else "center"
            x = edges[c] + 0.4 * size if align == "left" else (edges[c] + edges[c + 1]) / 2
            p.line(text, x, baseline, size, cw, align, bold=r == 0)
    return float(ys[-1])


def _tables(p: _Page, x0: float, x1: float, y: float, y_end: float) -> None:
    """Tables with text blocks between them, until the page is full."""
    while y_end - y > 100:
        y = _table(p, x0, x1, y, y_end) + p.rng.uniform(1.0, 3.0) * p.sizes[0]
        if y_end - y > 100 and p.rng.random() < 0.5:
            block = min(y_end, y + p.rng.uniform(0.1, 0.4) * (y_end - y))
            (_paragraphs if p.rng.random() < 0.5 else _form)(p, x0, x1, y, block)
            y = block + p.sizes[0]


def _form(p: _Page, x0: float, x1: float, y: float, y_end: float) -> None:
    """Key/value rows (one line with ``：``, or two boxes far apart), small print and signature lines."""
    rng = p.rng
    baseline = y
    while True:
        size = p.size(0, 4)
        pitch = rng.uniform(*p.cfg.line_spacing) * size
        baseline += rd.CAP * size if baseline == y else 0.0
        if baseline + rd.DESC * size >= y_end:
            break
        key = p.text("zh_words" if rng.random() < 0.6 else "en_words", int(rng.integers(2, 6)))
        value = p.text(str(rng.choice(["faker", "invoice", "digits", "mixed"])), int(rng.integers(4, 20)))
        r = rng.random()
        if r < 0.45:
            p.line(f"{key}{rng.choice(['：', ': ', ':'])}{value}", x0, baseline, size, x1 - x0)
        elif r < 0.8:
            box = p.line(key + str(rng.choice(["：", ":", ""])), x0, baseline, size, (x1 - x0) / 2)
            vx = max((box[2] if box else x0) + rng.uniform(2.0, 6.0) * size, x0 + (x1 - x0) * 0.35)
            p.line(value, vx, baseline, size, x1 - vx)
            if rng.random() < 0.3:
                p.rule((vx - 0.2 * size, baseline + 0.35 * size), (x1, baseline + 0.35 * size), size)
        else:
            p.line(p.text("zh_prose" if rng.random() < 0.6 else "en_words", 60), x0, baseline, size, x1 - x0)
        baseline += pitch


# ------------------------------------------------------------------------------------------- appearance


def _paper(rng: np.random.Generator, h: int, w: int, cfg: PageConfig) -> tuple[np.ndarray, np.ndarray]:
    """Paper (H, W, 3) uint8 BGR (plain, tinted, textured) and a dark ink colour."""
    e, s = cfg.effects, cfg.degrade
    bg = float(rng.uniform(200, 255))
    gray = dg.background(h, w, bg, rng, gradient=False, texture=bool(rng.random() < e.paper_texture * s))
    tint = np.ones(3)
    if rng.random() < e.paper_colour * s:
        tint = rng.uniform(0.8, 1.0, 3)
    if isinstance(gray, np.ndarray):
        paper = cv2.merge([cv2.convertScaleAbs(gray, alpha=float(t)) for t in tint])
    else:
        paper = np.empty((h, w, 3), np.uint8)
        paper[:] = np.clip(np.asarray(tint) * gray, 0, 255).astype(np.uint8)
    ink = rng.uniform(0, 70, 3)
    if rng.random() < 0.2:  # blue or red ink / print
        ink[int(rng.choice([0, 2]))] += rng.uniform(60, 140)
    return paper, ink


def _blend(img: np.ndarray, colour: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``img + (colour - img) * mask / 255`` in one OpenCV call (uint8 images, uint8 mask)."""
    a = mask.astype(np.float32) * np.float32(1 / 255)
    return cv2.blendLinear(img, colour, 1.0 - a, a)


def _compose(rng: np.random.Generator, c: _Canvas, cfg: PageConfig) -> np.ndarray:
    """Paper, banners, rules and text ink into a uint8 BGR page."""
    h, w = c.text.shape
    img, ink = _paper(rng, h, w, cfg)
    colour = np.empty((h, w, 3), np.uint8)
    colour[:] = ink.astype(np.uint8)
    for x0, y0, x1, y1 in c.banners:
        img[max(y0, 0):y1, max(x0, 0):x1] = rng.uniform(0, 90, 3).astype(np.uint8)
        colour[max(y0, 0):y1, max(x0, 0):x1] = rng.uniform(200, 255, 3).astype(np.uint8)
    if c.deco.any():
        img = _blend(img, colour, c.deco)
    img = _blend(img, colour, c.text)
    if c.pen.any():
        pen = np.empty((h, w, 3), np.uint8)
        pen[:] = c.pen_colour
        img = _blend(img, pen, c.pen)
    return img


PEN_COLOURS = ((150, 60, 20), (35, 30, 30), (40, 40, 170))
"""BGR ballpoint colours of handwritten marks: blue, black, red."""


def pen_marks(rng: np.random.Generator, mask: np.ndarray, size: float, avoid: np.ndarray | None = None) -> None:
    """Handwriting over the print, not labelled: signatures, ticks, crosses, rings, figures and notes.

    Real receipts and forms come back signed, ticked and annotated. Large marks (1.5-6 text heights)
    cross several printed rows, so a detector must not join those rows through them; notes are written
    at text height (dates, amounts, initials), so the pipeline must not take them for print. ``size``
    is the page's text size in pixels; notes look for a spot clear of the ink in ``avoid`` first.
    """
    h, w = mask.shape
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < NOTE_SHARE:
            mh = float(rng.uniform(*NOTE_HEIGHT)) * size
            unit, aspect = _note(rng)
            mw = float(min(w * 0.9, mh * aspect))
            origin = _clear_spot(rng, avoid, h, w, mh, mw)
        else:
            mh = float(rng.uniform(1.5, 6.0)) * size
            mw = float(min(w * 0.9, mh * rng.uniform(0.8, 4.0)))
            origin = np.array([rng.uniform(0, max(1.0, w - mw)), rng.uniform(0, max(1.0, h - mh))])
            unit = PEN_MARKS[int(rng.choice(len(PEN_MARKS), p=PEN_MARK_WEIGHTS))](rng)
        strokes = [origin + p * np.array([mw, mh]) + rng.normal(0, 0.02 * size, p.shape) for p in unit]
        thick = max(1, round(size * rng.uniform(0.06, 0.16)))
        cv2.polylines(mask, [np.round(p * 4).astype(np.int32) for p in strokes], False, 255, thick, cv2.LINE_AA,
                      shift=2)


def _clear_spot(rng: np.random.Generator, avoid: np.ndarray | None, h: int, w: int, mh: float,
                mw: float) -> np.ndarray:
    """Top-left corner of an ``mw`` x ``mh`` box, clear of ``avoid`` ink if a few tries find one."""
    origin = np.zeros(2)
    for _ in range(NOTE_TRIES):
        origin = np.array([rng.uniform(0, max(1.0, w - mw)), rng.uniform(0, max(1.0, h - mh))])
        if avoid is None:
            break
        x, y = int(origin[0]), int(origin[1])
        if not avoid[y:y + int(mh) + 1, x:x + int(mw) + 1].any():
            break
    return origin


def _signature(rng: np.random.Generator) -> list[np.ndarray]:
    """A looping stroke drifting to the right, in a unit box (x right, y down)."""
    t = np.linspace(0, 1, 240)
    loops, r = rng.uniform(3, 9), 0.25 * rng.uniform(0.5, 1.0)
    x = t + r * np.cos(2 * np.pi * loops * t + rng.uniform(0, 2 * np.pi)) / 4
    y = 0.5 + r * np.sin(2 * np.pi * loops * t) + 0.25 * np.sin(2 * np.pi * rng.uniform(0.3, 1.2) * t)
    return [np.stack([x, y], 1)]


def _tick_or_cross(rng: np.random.Generator) -> list[np.ndarray]:
    """A check mark, or two crossing strokes."""
    if rng.random() < 0.6:
        return [np.array([[0.0, 0.6], [0.3, 1.0], [1.0, 0.0]])]
    return [np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0], [0.0, 1.0]])]


def _ring(rng: np.random.Generator) -> list[np.ndarray]:
    """An ellipse drawn round a figure, its end overshooting the start."""
    t = np.linspace(0, 2 * np.pi * rng.uniform(1.0, 1.3), 120)
    return [np.stack([0.5 + 0.5 * np.cos(t), 0.5 + 0.5 * np.sin(t)], 1)]


def _figures(rng: np.random.Generator) -> list[np.ndarray]:
    """Handwritten digits: wavy upright strokes side by side."""
    n = int(rng.integers(2, 7))
    t = np.linspace(0, 1, 30)
    return [np.stack([(k + 0.5 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi)))
                      / n, t], 1) for k in range(n)]


PEN_MARKS = (_signature, _tick_or_cross, _ring, _figures)
PEN_MARK_WEIGHTS = (0.45, 0.15, 0.2, 0.2)


# Single-stroke handwritten glyphs: polylines in a cell 1 high (y down), x from 0 to the glyph's width.
PEN_GLYPHS: dict[str, tuple[float, tuple[tuple[float, float], ...]]] = {
    "1": (0.45, ((0.1, 0.2), (0.3, 0.0), (0.3, 1.0))),
    "2": (0.6, ((0.05, 0.25), (0.2, 0.02), (0.45, 0.05), (0.55, 0.3), (0.3, 0.65), (0.02, 1.0), (0.58, 1.0))),
    "3": (0.6, ((0.05, 0.1), (0.3, 0.0), (0.5, 0.15), (0.45, 0.4), (0.25, 0.48), (0.5, 0.6), (0.55, 0.82),
                (0.3, 1.0), (0.02, 0.9))),
    "4": (0.6, ((0.45, 1.0), (0.45, 0.0), (0.02, 0.7), (0.6, 0.7))),
    "5": (0.6, ((0.55, 0.0), (0.1, 0.0), (0.05, 0.45), (0.35, 0.4), (0.55, 0.6), (0.5, 0.9), (0.25, 1.0),
                (0.02, 0.9))),
    "6": (0.6, ((0.5, 0.05), (0.25, 0.1), (0.05, 0.5), (0.1, 0.9), (0.3, 1.0), (0.52, 0.85), (0.5, 0.6),
                (0.3, 0.5), (0.08, 0.65))),
    "7": (0.6, ((0.02, 0.0), (0.58, 0.0), (0.2, 1.0))),
    "8": (0.6, ((0.3, 0.48), (0.08, 0.3), (0.15, 0.05), (0.45, 0.05), (0.52, 0.3), (0.3, 0.48), (0.05, 0.7),
                (0.12, 0.95), (0.48, 0.95), (0.55, 0.7), (0.3, 0.48))),
    "9": (0.6, ((0.52, 0.35), (0.3, 0.5), (0.08, 0.35), (0.15, 0.05), (0.45, 0.05), (0.55, 0.35), (0.5, 1.0))),
    "0": (0.6, tuple((0.3 + 0.28 * float(np.sin(t)), 0.5 - 0.5 * float(np.cos(t)))
                     for t in np.linspace(0, 2.15 * np.pi, 14))),
    "/": (0.5, ((0.5, 0.0), (0.0, 1.0))),
    "-": (0.5, ((0.05, 0.55), (0.45, 0.55))),
    ".": (0.25, ((0.08, 0.93), (0.14, 0.97))),
    ":": (0.25, ((0.08, 0.3), (0.12, 0.33))),
}
NOTE_FORMATS = ("{d}/{m}/{y}", "{d}.{m}.{y}", "{d}/{m}", "{a}.{c}", "{a}", "{n}", "{n}-{n}", "{h}:{c}")
NOTE_SHARE = 0.4
"""Share of pen marks that are text-height notes (the rest are the large marks of :data:`PEN_MARKS`)."""
NOTE_HEIGHT = (0.9, 1.6)
NOTE_TRIES = 8


def _chaikin(p: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Corner-cutting smoothing: a pen rounds the corners of a glyph's polyline."""
    for _ in range(rounds):
        if len(p) < 3:
            break
        q = np.empty((2 * (len(p) - 1), 2))
        q[0::2] = 0.75 * p[:-1] + 0.25 * p[1:]
        q[1::2] = 0.25 * p[:-1] + 0.75 * p[1:]
        p = np.concatenate([p[:1], q, p[-1:]])
    return p


def _note_text(rng: np.random.Generator) -> str:
    """What people write on a receipt: a date, an amount, a count, a time, a reference number."""
    fmt = NOTE_FORMATS[int(rng.integers(len(NOTE_FORMATS)))]
    return fmt.format(d=int(rng.integers(1, 32)), m=int(rng.integers(1, 13)), y=int(rng.integers(0, 100)),
                      a=int(rng.integers(1, 1000)), c=f"{int(rng.integers(0, 100)):02d}", n=int(rng.integers(1, 99999)),
                      h=int(rng.integers(0, 24)))


def _note(rng: np.random.Generator) -> tuple[list[np.ndarray], float]:
    """A handwritten note at text height, in a unit box, and its width / height.

    Figures are drawn glyph by glyph (jittered, slanted, corners rounded); a third of notes are a
    cursive word (initials, a name) instead: a small signature.
    """
    if rng.random() < 0.33:
        return _signature(rng), float(rng.uniform(1.5, 5.0))
    slant, x, strokes = float(rng.uniform(-0.1, 0.35)), 0.0, []
    for ch in _note_text(rng):
        width, pts = PEN_GLYPHS[ch]
        scale = rng.uniform(0.85, 1.15)
        p = np.asarray(pts) * scale + rng.normal(0, 0.04, (len(pts), 2))
        p[:, 0] += x + slant * (1.0 - p[:, 1])
        strokes.append(_chaikin(p))
        x += width * scale + float(rng.uniform(0.05, 0.2))
    span = x + max(slant, 0.0) + 0.1
    return [p / np.array([span, 1.0]) for p in strokes], span


def _homography(rng: np.random.Generator, h: int, w: int, cfg: PageConfig) -> tuple[np.ndarray, tuple[int, int]]:
    """A page rotation and photo perspective as one 3x3 matrix, and the output size holding the page."""
    e, s = cfg.effects, cfg.degrade
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = src.copy()
    persp = rng.random() < e.perspective * s
    if persp:
        dst += rng.uniform(-1, 1, (4, 2)).astype(np.float32) * cfg.perspective * np.float32(max(h, w))
    if rng.random() < e.rotation * s:
        a = np.deg2rad(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
        centre = np.array([w / 2, h / 2], np.float32)
        dst = (dst - centre) @ rot.T + centre
    if np.array_equal(dst, src):
        return np.eye(3), (w, h)
    border = rng.uniform(0.0, 0.06) * max(h, w) if persp else 0.0
    dst = dst - dst.min(axis=0) + np.float32(border)
    size = np.ceil(dst.max(axis=0) + border).astype(int)
    return cv2.getPerspectiveTransform(src, dst.astype(np.float32)), (int(size[0]), int(size[1]))


def _degrade(rng: np.random.Generator, img: np.ndarray, cfg: PageConfig) -> np.ndarray:
    """Lighting gradient, blur, sensor noise and JPEG on the finished uint8 BGR page."""
    e, s = cfg.effects, cfg.degrade
    h, w = img.shape[:2]
    if rng.random() < e.lighting * s:
        a = rng.uniform(0, 2 * np.pi)
        x = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :] * np.float32(np.cos(a))
        y = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None] * np.float32(np.sin(a))
        gain = np.float32(255) - np.float32(255 * rng.uniform(0.15, 0.5)) * (x + y + np.float32(0.5))
        g = np.clip(gain, 0, 255).astype(np.uint8)
        img = cv2.multiply(img, cv2.merge([g, g, g]), scale=1 / 255)
    if rng.random() < e.blur * s:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2))
    if rng.random() < e.noise * s:
        n = rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(2, 10))
        img = cv2.add(img, cv2.merge([n, n, n]), dtype=cv2.CV_8U)
    if rng.random() < e.jpeg * s:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img


# ------------------------------------------------------------------------------------------------ stream


PEN_STREAM = 7
"""Extra seed word of the random stream that draws a page's handwritten marks."""


class PageStream(LazyStream):
    """Synthetic pages: ``stream[i] -> (BGR uint8 page, (n, 4, 2) float32 line quads, texts)``.

    Quads run clockwise from the text's top-left corner, in page pixels. The stream is cheap to pickle
    (fonts and corpus are loaded once per process on first use).

    >>> stream = PageStream(PageConfig.load(None), seed=0)  # doctest: +SKIP
    >>> page, quads, texts = stream[0]  # doctest: +SKIP
    """

    def __init__(self, cfg: PageConfig | None = None, seed: int = 0, charset: Charset | None = None) -> None:
        self.cfg = cfg if cfg is not None else PageConfig.load(None)
        self.seed = int(seed)
        self.charset = charset if charset is not None else default_charset()
        self._res: Resources | None = None
        self._synth: SynthConfig | None = None

    @property
    def resources(self) -> Resources:
        """Fonts and corpus of the line synth (loaded on first use, shared per process)."""
        if self._res is None:
            self._synth = SynthConfig.load(self.cfg.synth or None)
            self._res = load_resources(self._synth, self.charset)
        return self._res

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        s = self.sample(i)
        return s.image, s.quads, s.texts

    def sample(self, i: int, masks: bool = False) -> PageSample:
        """Page ``i``; with ``masks`` also its labelled-ink and rule masks, warped like the image."""
        if i < 0:
            raise IndexError(f"page index must be >= 0, got {i}")
        rng = np.random.default_rng((self.seed, int(i)))
        res = self.resources
        cfg = self.cfg
        names = sorted(cfg.layouts)
        weights = np.array([cfg.layouts[k] for k in names], np.float64)
        layout = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        w = int(rng.uniform(*cfg.width))
        aspect = rng.uniform(*cfg.aspect)
        h = int(w * (max(aspect, 1.3) if layout == "receipt" else aspect))
        canvas = _Canvas(h, w)
        page = _Page(rng, res, self._synth or SynthConfig.load(None), cfg, canvas)
        m = rng.uniform(*cfg.margin) * w
        x0, x1, y, y_end = m, w - m, m, h - m
        if layout == "receipt":
            narrow = rng.uniform(0.5, 0.85) * (x1 - x0)
            x0, x1 = (w - narrow) / 2, (w + narrow) / 2
        if layout != "receipt" and rng.random() < 0.6:
            y = _title(page, x0, x1, y)
        {"paragraph": _paragraphs, "receipt": _receipt, "table": _tables, "form": _form}[layout](
            page, x0, x1, y, y_end)
        pen_rng = np.random.default_rng((self.seed, int(i), PEN_STREAM))  # pages without pen stay as they were
        if pen_rng.random() < cfg.effects.pen * cfg.degrade:
            pen_marks(pen_rng, canvas.pen, float(np.median(page.sizes)), canvas.text)
            colour = np.asarray(PEN_COLOURS[int(pen_rng.integers(len(PEN_COLOURS)))]) + pen_rng.integers(-20, 21, 3)
            canvas.pen_colour = np.clip(colour, 0, 255).astype(np.uint8)
        img = _compose(rng, canvas, cfg)
        boxes = np.array(canvas.boxes, np.float32).reshape(-1, 4)
        quads = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [2, 3]], boxes[:, [0, 3]]], axis=1)
        mat, (ow, oh) = _homography(rng, h, w, cfg)
        text_mask, deco_mask = (canvas.text, canvas.deco) if masks else (None, None)
        if not np.array_equal(mat, np.eye(3)):
            fill = tuple(float(v) for v in rng.uniform(20, 200, 3))  # the desk around the paper
            img = cv2.warpPerspective(img, mat, (ow, oh), flags=cv2.INTER_LINEAR, borderValue=fill)
            if len(quads):
                quads = cv2.perspectiveTransform(quads.reshape(1, -1, 2).astype(np.float64), mat)
                quads = quads.reshape(-1, 4, 2).astype(np.float32)
            if masks:
                text_mask = cv2.warpPerspective(canvas.text, mat, (ow, oh), flags=cv2.INTER_LINEAR)
                deco_mask = cv2.warpPerspective(canvas.deco, mat, (ow, oh), flags=cv2.INTER_LINEAR)
        out = _degrade(rng, img, cfg)
        return PageSample(out, quads.astype(np.float32), list(canvas.texts), layout, text_mask, deco_mask)


# ------------------------------------------------------------------------------------------------ output


def write_page(stream: PageStream, i: int, folder: str | Path) -> Path:
    """Page ``i`` as ``NAME.png`` + ``NAME.json`` (``{"lines": [{"box": [8 numbers], "text": ...}]}``)."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    page, quads, texts = stream[i]
    name = folder / f"page_{stream.seed}_{i:06d}"
    cv2.imwrite(str(name.with_suffix(".png")), page)
    lines = [{"box": [round(float(v), 2) for v in q.reshape(-1)], "text": t} for q, t in zip(quads, texts, strict=True)]
    name.with_suffix(".json").write_text(json.dumps({"lines": lines}, ensure_ascii=False), encoding="utf-8")
    return name.with_suffix(".png")


def write_page_preview(stream: PageStream, path: str | Path, count: int = 8, start: int = 0, height: int = 360,
                       columns: int = 4) -> Path:
    """A contact sheet of pages scaled to ``height`` with their line boxes drawn (green)."""
    cells = []
    for i in range(start, start + count):
        page, quads, _ = stream[i]
        s = height / page.shape[0]
        img = cv2.resize(page, (max(1, round(page.shape[1] * s)), height), interpolation=cv2.INTER_AREA)
        cv2.polylines(img, [np.round(q * s).astype(np.int32) for q in quads], True, (40, 200, 40), 1, cv2.LINE_AA)
        cells.append(img)
    width = max(c.shape[1] for c in cells)
    cells = [cv2.copyMakeBorder(c, 4, 4, 4, 4 + width - c.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
             for c in cells]
    cells += [np.full_like(cells[0], 255)] * (-len(cells) % columns)
    rows = [np.hstack(cells[r:r + columns]) for r in range(0, len(cells), columns)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.fromarray(cv2.cvtColor(np.vstack(rows), cv2.COLOR_BGR2RGB)).quantize(128).save(path, optimize=True)
    return path
