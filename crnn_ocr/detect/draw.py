"""Pictures for people to check a page: boxes on the page, the recognised text beside it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from crnn_ocr.preprocess import array_to_gray
from crnn_ocr.results import LineResult


@lru_cache(maxsize=1)
def cjk_font_path() -> str | None:
    """A font file that covers Chinese, from fontconfig, or None (then PIL's default font is used)."""
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}", "Noto Sans CJK SC:lang=zh"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _font(size: int) -> Any:
    from PIL import ImageFont

    path = cjk_font_path()
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size)


def _color(i: int) -> tuple[int, int, int]:
    hue = (i * 47) % 180
    bgr = cv2.cvtColor(np.array([[[hue, 200, 210]]], dtype=np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def draw_lines(page: np.ndarray, lines: Sequence[LineResult]) -> np.ndarray:
    """BGR image: the page with numbered boxes on the left, each line's text in its box on the right."""
    from PIL import Image, ImageDraw

    gray = array_to_gray(page)
    h, w = gray.shape
    left = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    right = Image.new("RGB", (w, h), (255, 255, 255))
    pen = ImageDraw.Draw(right)
    thick = max(1, round(max(h, w) / 800))
    for i, ln in enumerate(lines):
        if ln.box is None:
            continue
        quad = np.asarray(ln.box, dtype=np.float32)
        b, g, r = _color(i)
        cv2.polylines(left, [quad.round().astype(np.int32)], True, (b, g, r), thick)
        pen.polygon([tuple(p) for p in quad.tolist()], outline=(r, g, b), width=thick)
        x0, y0 = float(quad[:, 0].min()), float(quad[:, 1].min())
        box_h = float(quad[:, 1].max()) - y0
        box_w = float(quad[:, 0].max()) - x0
        size = max(8, int(min(box_h, box_w) * 0.8) if box_h <= box_w else int(box_w * 0.8))
        pen.text((x0 + thick + 1, y0 + thick), ln.text, fill=(0, 0, 0), font=_font(size))
    text_side = cv2.cvtColor(np.asarray(right), cv2.COLOR_RGB2BGR)
    return np.hstack([left, text_side])
