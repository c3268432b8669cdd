"""Text line rendering: ink masks drawn at the final size, then geometry and the crop.

Glyphs are rasterised once by Pillow and pasted from a cache. The renderer works on *coverage masks*
(uint8, 255 = ink): one for the labelled text and one for things that are not in the label (rules,
borders, fragments of neighbouring lines). Colours, backgrounds and degradations are applied afterwards
(:mod:`crnn_ocr.synth.degrade`). The crop is computed from the text mask after the geometric transform,
so the labelled text is never cut horizontally.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from crnn_ocr.synth.fonts import Glyph

CAP = 0.78
"""Nominal top of a line (hanzi and capitals) above the baseline, in font sizes."""
DESC = 0.2
"""Nominal bottom of a line (descenders) below the baseline, in font sizes."""


@dataclass
class TextMasks:
    """Ink masks on one canvas and where the line sits on it.

    ``box`` is the nominal line box ``(x0, y0, x1, y1)``: the text's horizontal ink extent and the
    font-size-based vertical extent (so ``"..."`` and ``"Ag"`` get crops of the same height).
    """

    text: np.ndarray
    deco: np.ndarray
    box: tuple[int, int, int, int]
    size: int


GlyphFn = Callable[[str], Glyph]
"""Character -> cached glyph bitmap for the chosen face, size and stroke."""


@dataclass(frozen=True)
class Layout:
    """How a line is laid out: spacing and baseline shape, in pixels."""

    tracking: float = 0.0
    space_scale: float = 1.0
    stroke: int = 0
    curve_amp: float = 0.0
    curve_period: float = 1.0
    curve_phase: float = 0.0


def char_positions(text: str, glyph: GlyphFn, layout: Layout) -> tuple[list[Glyph], list[float], float]:
    """Glyphs, pen x of each character and the line's total advance, with tracking and word spacing."""
    glyphs = [glyph(ch) for ch in text]
    advances = [g.advance for g in glyphs]
    if layout.space_scale != 1.0:
        advances = [a * layout.space_scale if ch == " " else a for a, ch in zip(advances, text, strict=True)]
    if layout.tracking:
        advances = [a + layout.tracking for a in advances]
    xs = list(itertools.accumulate(advances, initial=0.0))
    return glyphs, xs[:-1], max(xs[-1] - layout.tracking, 1.0)


def paste(mask: np.ndarray, bitmap: np.ndarray, x: int, y: int) -> None:
    """Max-blend a glyph bitmap into ``mask`` with its top-left at ``(x, y)``, clipped to the canvas."""
    h, w = bitmap.shape
    H, W = mask.shape
    if x >= 0 and y >= 0 and x + w <= W and y + h <= H:
        region = mask[y:y + h, x:x + w]
        np.maximum(region, bitmap, out=region)
        return
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return
    region = mask[y0:y1, x0:x1]
    np.maximum(region, bitmap[y0 - y:y1 - y, x0 - x:x1 - x], out=region)


def ink_bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of the non-zero pixels, or None for an empty mask."""
    x, y, w, h = cv2.boundingRect(mask)
    return (x, y, x + w, y + h) if w and h else None


def draw_text(mask: np.ndarray, origin: tuple[float, float], text: str, glyph: GlyphFn, layout: Layout,
              placed: tuple[list[Glyph], list[float], float] | None = None) -> float:
    """Draw ``text`` with its baseline starting at ``origin``; returns the advance width.

    ``placed`` is the result of :func:`char_positions` when the caller already has it.
    """
    x0, y0 = origin
    glyphs, xs, width = placed or char_positions(text, glyph, layout)
    H, W = mask.shape
    curve = layout.curve_amp
    for g, x in zip(glyphs, xs, strict=True):
        bmp = g.bitmap
        h, w = bmp.shape
        if h == 0:
            continue
        dy = curve * math.sin(2 * math.pi * x / layout.curve_period + layout.curve_phase) if curve else 0.0
        px, py = round(x0 + x) + g.left, round(y0 + dy) + g.top
        if px >= 0 and py >= 0 and px + w <= W and py + h <= H:  # the usual case: no clipping needed
            region = mask[py:py + h, px:px + w]
            np.maximum(region, bmp, out=region)
        else:
            paste(mask, bmp, px, py)
    return width


def render_masks(text: str, glyph: GlyphFn, size: int, layout: Layout, margin_x: int, margin_y: int) -> TextMasks:
    """Draw the line on a canvas with the given margins around the nominal line box."""
    placed = char_positions(text, glyph, layout)
    width = placed[2]
    extra = int(abs(layout.curve_amp)) + layout.stroke
    line_h = int(np.ceil((CAP + DESC) * size)) + 2 * extra
    w = int(np.ceil(width)) + 2 * margin_x + 2 * layout.stroke + size // 2
    h = line_h + 2 * margin_y
    mask = np.zeros((h, w), np.uint8)
    baseline = margin_y + extra + round(CAP * size)
    draw_text(mask, (margin_x + layout.stroke, baseline), text, glyph, layout, placed)
    ink = ink_bounds(mask)
    x0, x1 = (ink[0], ink[2]) if ink else (margin_x, margin_x + 1)
    y0, y1 = margin_y, margin_y + line_h
    if ink:  # glyphs taller than the nominal box (accents, brackets) extend it
        y0, y1 = min(y0, ink[1]), max(y1, ink[3])
    return TextMasks(mask, np.zeros_like(mask), (x0, y0, x1, y1), size)


def draw_neighbours(m: TextMasks, glyph: GlyphFn, texts: tuple[str | None, str | None],
                    gaps: tuple[float, float], shift: float) -> None:
    """Draw fragments of the lines above and below into the decoration mask (they are not labelled)."""
    x0, y0, _, y1 = m.box
    s = m.size
    if texts[0]:
        draw_text(m.deco, (x0 + shift * s, y0 - gaps[0] * s - DESC * s * 0.3), texts[0], glyph, Layout())
    if texts[1]:
        draw_text(m.deco, (x0 - shift * s, y1 + gaps[1] * s + CAP * s), texts[1], glyph, Layout())


def draw_underline(m: TextMasks, rng: np.random.Generator) -> None:
    """An underline just below the baseline, as in forms and links; may touch descenders."""
    x0, _, x1, y1 = m.box
    y = int(y1 - DESC * m.size * rng.uniform(0.1, 0.9))
    t = max(1, int(round(m.size * rng.uniform(0.03, 0.08))))
    ext = int(m.size * rng.uniform(0, 0.5))
    cv2.line(m.deco, (x0 - ext, y), (x1 + ext, y), 255, t)


def warp_matrix(rng: np.random.Generator, box: tuple[int, int, int, int], size: int, rotate: bool, shear: bool,
                perspective: bool) -> np.ndarray:
    """A mild 3x3 transform about the line centre: rotation, shear (slant), perspective.

    Rotation is bounded so a long line moves at most half a font size vertically, as line crops from a
    detector are aligned with the text.
    """
    x0, y0, x1, y1 = box
    cx, cy, w = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, 1)
    m = np.eye(3)
    if rotate:
        lim = min(np.deg2rad(2.5), np.arcsin(min(1.0, 0.5 * size / w)))
        a = rng.uniform(-lim, lim)
        m = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ m
    if shear:
        m = np.array([[1, rng.uniform(-0.3, 0.3), 0], [0, 1, 0], [0, 0, 1]]) @ m
    if perspective:
        k = rng.uniform(-0.12, 0.12) / w
        m = np.array([[1, 0, 0], [rng.uniform(-0.05, 0.05), 1, 0], [k, 0, 1]]) @ m
    t = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    ti = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    return t @ m @ ti


def apply_warp(m: TextMasks, mat: np.ndarray) -> TextMasks:
    """Warp both masks; the nominal box becomes the bounding box of its warped corners and the ink."""
    h, w = m.text.shape
    has_deco = bool(m.deco.any())
    src = cv2.merge([m.text, m.deco]) if has_deco else m.text
    if mat[2, 0] == 0 and mat[2, 1] == 0 and mat[2, 2] == 1:
        out = cv2.warpAffine(src, mat[:2], (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    else:
        out = cv2.warpPerspective(src, mat, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    text, deco = (out[..., 0].copy(), out[..., 1].copy()) if has_deco else (out, np.zeros_like(out))
    x0, y0, x1, y1 = m.box
    corners = cv2.perspectiveTransform(np.array([[[x0, y0], [x1, y0], [x0, y1], [x1, y1]]], np.float64), mat)[0]
    ink = ink_bounds(text)
    bx0, bx1 = (ink[0], ink[2]) if ink else (x0, x1)
    by0, by1 = int(np.floor(corners[:, 1].min())), int(np.ceil(corners[:, 1].max()))
    if ink:
        by0, by1 = min(by0, ink[1]), max(by1, ink[3])
    return TextMasks(text, deco, (bx0, max(by0, 0), bx1, min(by1, h)), m.size)


def subcanvas(m: TextMasks, pads: Sequence[int], slack: int) -> TextMasks:
    """The part of the canvas within ``pads + slack`` of the line box (less to warp, same result)."""
    x0, y0, x1, y1 = m.box
    h, w = m.text.shape
    cx0, cy0 = max(0, x0 - pads[0] - slack), max(0, y0 - pads[1] - slack)
    cx1, cy1 = min(w, x1 + pads[2] + slack), min(h, y1 + pads[3] + slack)
    return TextMasks(m.text[cy0:cy1, cx0:cx1], m.deco[cy0:cy1, cx0:cx1], (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0),
                     m.size)


def crop(m: TextMasks, pads: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cut the line out with ``(left, top, right, bottom)`` padding; outside the canvas is empty."""
    x0, y0, x1, y1 = m.box
    left, top, right, bottom = pads
    h, w = m.text.shape
    cx0, cy0, cx1, cy1 = x0 - left, y0 - top, x1 + right, y1 + bottom
    px0, py0, px1, py1 = max(0, -cx0), max(0, -cy0), max(0, cx1 - w), max(0, cy1 - h)
    text = m.text[max(cy0, 0):min(cy1, h), max(cx0, 0):min(cx1, w)]
    deco = m.deco[max(cy0, 0):min(cy1, h), max(cx0, 0):min(cx1, w)]
    if px0 or py0 or px1 or py1:
        text = cv2.copyMakeBorder(text, py0, py1, px0, px1, cv2.BORDER_CONSTANT, value=0)
        deco = cv2.copyMakeBorder(deco, py0, py1, px0, px1, cv2.BORDER_CONSTANT, value=0)
    return text, deco


def draw_rules(deco: np.ndarray, text: np.ndarray, rng: np.random.Generator, size: int, box: bool) -> None:
    """Table rules above/below the line, or a box border at the crop edges (touching tight text)."""
    h, w = deco.shape
    t = max(1, int(round(size * rng.uniform(0.03, 0.07))))
    if box:
        inset = int(rng.integers(0, 3))
        sides = rng.random(4) < np.array([0.8, 0.8, 0.5, 0.5])  # top, bottom, left, right
        if sides[0]:
            cv2.line(deco, (0, inset), (w, inset), 255, t)
        if sides[1]:
            cv2.line(deco, (0, h - 1 - inset), (w, h - 1 - inset), 255, t)
        if sides[2]:
            cv2.line(deco, (inset, 0), (inset, h), 255, t)
        if sides[3]:
            cv2.line(deco, (w - 1 - inset, 0), (w - 1 - inset, h), 255, t)
        return
    ink = ink_bounds(text)
    top, bottom = (ink[1], ink[3] - 1) if ink else (0, h - 1)
    if rng.random() < 0.7:
        y = int(rng.integers(0, max(top, 0) + 2))
        cv2.line(deco, (0, y), (w, y), 255, t)
    if rng.random() < 0.7:
        y = int(rng.integers(min(bottom, h - 1), h))
        cv2.line(deco, (0, y), (w, y), 255, t)
