"""Contact sheets of synthetic samples with their labels, for people to judge realism at a glance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crnn_ocr.synth.fonts import discover_fonts


def label_font_path() -> str | None:
    """A CJK sans face for writing labels (Noto Sans CJK SC, else any face with hanzi), or None."""
    try:
        faces = discover_fonts()
    except RuntimeError:
        return None
    for want in ("Noto Sans CJK SC", "WenQuanYi Micro Hei", "CJK", "WenQuanYi"):
        for f in faces:
            if want in f.family and not f.bold:
                return f"{f.path}#{f.index}"
    return None


def fit_label(text: str, font, width: float) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels in ``font``."""
    if font.getlength(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid] + "…") <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "…"


def contact_sheet(items: Sequence[tuple[np.ndarray, str]], width: int = 900, line_h: int = 32,
                  label_size: int = 14, columns: int = 2):
    """A PIL image with each sample scaled to ``line_h`` pixels and its label written under it."""
    from PIL import Image, ImageDraw, ImageFont

    spec = label_font_path()
    if spec:
        path, idx = spec.rsplit("#", 1)
        font = ImageFont.truetype(path, label_size, index=int(idx))
    else:
        font = ImageFont.load_default()
    col_w = width // columns
    cell_h = line_h + label_size + 12
    rows = (len(items) + columns - 1) // columns
    sheet = Image.new("L", (width, rows * cell_h + 4), 235)
    draw = ImageDraw.Draw(sheet)
    for k, (img, text) in enumerate(items):
        r, c = divmod(k, columns)
        x, y = c * col_w + 4, r * cell_h + 4
        h, w = img.shape
        tw = max(1, round(w * line_h / h))
        line = Image.fromarray(img).resize((tw, line_h), Image.Resampling.BILINEAR)
        if tw > col_w - 8:  # squeeze very long lines into the column, as the model's max width does
            line = line.resize((col_w - 8, line_h), Image.Resampling.BILINEAR)
        sheet.paste(line, (x, y))
        draw.text((x, y + line_h + 2), fit_label(text, font, col_w - 8), font=font, fill=20)
    return sheet


def write_preview(stream, path: str | Path, count: int = 64, start: int = 0, columns: int = 2) -> Path:
    """Render samples ``start .. start + count - 1`` of a stream into a PNG contact sheet."""
    items = [stream[i] for i in range(start, start + count)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(items, columns=columns).save(path, optimize=True)
    return path
