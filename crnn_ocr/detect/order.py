"""Reading order of detected lines: top to bottom, left to right, one column after the other.

A recursive XY-cut on the lines' boxes (levelled by the page skew first):

1. a *column split* is taken first when a vertical gutter separates two groups of lines that both look like
   columns (several lines, each side a real share of the width, lines filling their column);
2. otherwise the lines are cut into horizontal bands at the empty rows; when a few gaps are clearly wider
   than the usual line spacing (a title above two columns), only those are cut and each piece is ordered
   again, so columns inside it are found;
3. a band is read as rows, each row left to right (``TOTAL`` before ``12.50`` on a receipt); a row made
   only of vertical lines (quads reading downwards) is read right to left, as vertical Chinese is.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from crnn_ocr.detect.geometry import quad_angle, quad_size, transform_points


def page_skew(quads: Sequence[np.ndarray]) -> float:
    """Width-weighted median angle of the horizontal lines (degrees, CCW positive); 0 without any."""
    angles, weights = [], []
    for q in quads:
        a = quad_angle(q)
        if abs(a) < 30:
            angles.append(a)
            weights.append(quad_size(q)[0])
    if not angles:
        return 0.0
    order = np.argsort(angles)
    cum = np.cumsum(np.asarray(weights)[order])
    return float(np.asarray(angles)[order][np.searchsorted(cum, cum[-1] / 2)])


def level_boxes(quads: Sequence[np.ndarray]) -> np.ndarray:
    """Axis-aligned ``(n, 4)`` boxes of the quads after turning the page by minus its skew."""
    m = cv2.getRotationMatrix2D((0.0, 0.0), -page_skew(quads), 1.0)
    out = np.zeros((len(quads), 4), dtype=np.float64)
    for i, q in enumerate(quads):
        p = transform_points(np.asarray(q, dtype=np.float32).reshape(4, 2), m)
        out[i] = (p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max())
    return out


def reading_order(quads: Sequence[np.ndarray]) -> list[int]:
    """Indices of ``quads`` in reading order.

    >>> from crnn_ocr.detect.geometry import as_quad
    >>> reading_order([as_quad([0, 50, 90, 70]), as_quad([0, 0, 90, 20])])
    [1, 0]
    """
    if not quads:
        return []
    boxes = level_boxes(quads)
    down = np.array([quad_angle(q) < -45 for q in quads])
    return _order(boxes, list(range(len(boxes))), down)


def _order(boxes: np.ndarray, idx: list[int], down: np.ndarray) -> list[int]:
    if len(idx) <= 1:
        return list(idx)
    cols = column_split(boxes, idx)
    if cols is not None:
        return _order(boxes, cols[0], down) + _order(boxes, cols[1], down)
    bands, gaps = y_bands(boxes, idx)
    if len(bands) == 1:
        return rows_left_to_right(boxes, idx, down)
    heights = boxes[idx, 3] - boxes[idx, 1]
    wide = np.asarray(gaps) > max(1.5 * float(np.median(gaps)), 0.5 * float(np.median(heights)))
    if wide.any() and not wide.all():
        pieces, cur = [], list(bands[0])
        for band, cut in zip(bands[1:], wide, strict=True):
            if cut:
                pieces.append(cur)
                cur = []
            cur.extend(band)
        pieces.append(cur)
        return [i for piece in pieces for i in _order(boxes, piece, down)]
    return [i for band in bands for i in rows_left_to_right(boxes, band, down)]


def y_bands(boxes: np.ndarray, idx: list[int]) -> tuple[list[list[int]], list[float]]:
    """Split lines into bands at empty rows (a slight overlap of padded boxes still counts as a gap).

    Returns the bands top to bottom and the gap above each band after the first.
    """
    order = sorted(idx, key=lambda i: boxes[i, 1])
    bands: list[list[int]] = [[order[0]]]
    gaps: list[float] = []
    bottom = boxes[order[0], 3]
    for i in order[1:]:
        h = boxes[i, 3] - boxes[i, 1]
        if boxes[i, 1] >= bottom - 0.3 * h:
            gaps.append(float(boxes[i, 1] - bottom))
            bands.append([])
        bands[-1].append(i)
        bottom = max(bottom, boxes[i, 3])
    return bands, gaps


def rows_left_to_right(boxes: np.ndarray, idx: list[int], down: np.ndarray | None = None) -> list[int]:
    """Lines grouped into rows by their vertical centres (top to bottom), each row read left to right.

    A row of vertical lines only (``down``) is read right to left.
    """
    order = sorted(idx, key=lambda i: (boxes[i, 1] + boxes[i, 3]) / 2)
    rows: list[list[int]] = []
    for i in order:
        cy = (boxes[i, 1] + boxes[i, 3]) / 2
        if rows and boxes[rows[-1][0], 1] <= cy <= boxes[rows[-1][0], 3]:
            rows[-1].append(i)
        else:
            rows.append([i])
    out = []
    for row in rows:
        rtl = down is not None and bool(down[row].all())
        out.extend(sorted(row, key=lambda k: -boxes[k, 2] if rtl else boxes[k, 0]))
    return out


def column_split(boxes: np.ndarray, idx: list[int]) -> tuple[list[int], list[int]] | None:
    """The widest vertical gutter that separates two column-like groups of lines, as (left, right), or None."""
    b = boxes[idx]
    heights = b[:, 3] - b[:, 1]
    x0, x1 = float(b[:, 0].min()), float(b[:, 2].max())
    best: tuple[float, list[int], list[int]] | None = None
    order = np.argsort(b[:, 0])
    reach = b[order[0], 2]
    for k in order[1:]:
        gap = b[k, 0] - reach
        if gap >= 0.5 * float(np.median(heights)):
            left = [idx[j] for j in range(len(idx)) if b[j, 2] <= reach]
            right = [idx[j] for j in range(len(idx)) if b[j, 2] > reach]
            if _is_column(boxes, left, x1 - x0) and _is_column(boxes, right, x1 - x0) and \
                    (best is None or gap > best[0]):
                best = (gap, left, right)
        reach = max(reach, b[k, 2])
    return None if best is None else (best[1], best[2])


def _is_column(boxes: np.ndarray, idx: list[int], page_width: float) -> bool:
    """Several lines, a real share of the width, lines mostly filling it (not a narrow list of prices)."""
    if len(idx) < 2:
        return False
    b = boxes[idx]
    extent = float(b[:, 2].max() - b[:, 0].min())
    return extent >= 0.2 * page_width and float(np.median(b[:, 2] - b[:, 0])) >= 0.5 * extent
