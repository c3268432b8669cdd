"""A model-free line finder for clean documents, receipts and screenshots (OpenCV + NumPy).

Steps, each a small function:

1. **Ink mask**: the background is estimated with a large max-filter on a smoothed, downscaled copy
   (robust to uneven light, shadows, sensor noise and JPEG ringing); ink is what is darker than its
   background by a contrast threshold (Otsu on the difference, with floors: a fixed one and three times
   the median contrast, the paper's own mottling). Light-on-dark pages are inverted first.
2. **Components**: connected components, without specks, table rules, frames, solid blocks and
   components far larger than the text in both directions (the desk around a photographed page). Large
   sparse strokes that are not straight (a ring around an amount, a scribble across the print) stay:
   they hold the glyphs they touch, and step 4 cuts them between the rows.
3. **Lines**: components are linked when they sit side by side on one line (vertical overlap, horizontal
   gap at most ``max_gap`` text heights: wide receipt gaps such as ``TOTAL        12.50`` split the line,
   as line-level ground truth does) or are stacked parts of one glyph (i-dots, 二). Chinese characters
   made of several blobs join through the same rules. A line is also cut where a gap is two of its own
   letter pitches wide (the double space between the columns of monospaced receipt print).
4. **Projection splitting**: a group taller than its characters (two lines bridged by a tall blob) is cut
   at the empty rows of its horizontal projection.
5. **Quads**: a rectangle at the line's fitted angle (or the page skew for short words), padded.
6. **Deskew**: when the lines agree on a skew, the page is turned upright, detected again and the quads
   are mapped back, so projection and grouping work on level text. Lines holding pieces of a cut
   stroke follow the pen, not the print, and have no vote.
7. **Vertical lines**: stacks of single glyphs become one vertical line whose quad reads top to bottom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import cv2
import numpy as np

from crnn_ocr.detect.base import DetectedLine
from crnn_ocr.detect.geometry import invert_affine, rotated_rect_quad, rotation_matrix, transform_points
from crnn_ocr.preprocess import array_to_gray, is_light_on_dark

POLARITIES = ("auto", "dark", "light")
GLYPH_BARS = 3.0
"""Tallest glyph made of separate bars (二, 三, =), in text heights: display type up to three times the body."""
HOUGH_SIDE = 512
"""Large components are judged straight or not on a copy at most this many pixels on a side."""
SNAP_DEG = 1.0
"""A line whose fitted angle is this close to the page skew takes the page skew (glyph centres wobble)."""
LETTER_GAP = 0.5
"""Gaps under this many text heights lie between the letters of a word (they measure the line's pitch)."""
MIN_PITCH_GAPS = 3
"""Letter gaps a line needs before its pitch is trusted to split it into columns."""
WORD_OUTLIER = 1.5
"""In a line of several words, a column gap is also this many times its median word gap."""


@dataclass(frozen=True)
class ClassicalConfig:
    """Settings of the classical detector (sizes are in text heights where possible, so scale-free).

    Args:
        polarity: ``dark`` (dark text on light), ``light`` or ``auto`` (decided per page); text of the
            other polarity inside solid areas (a dark banner with white text) is found in any case.
        max_gap: largest horizontal gap inside one line, in text heights (a word space is about 0.3-0.9).
        min_contrast: least gray-level difference between ink and its background.
        min_height: smallest text height in pixels (smaller specks are noise).
        pad: margin added around each line, in line heights.
        max_side: larger pages are analysed downscaled to this longest side (boxes are scaled back).
        deskew: detect page skew and re-run on the straightened page.
        min_skew: skew in degrees below which the page is left as it is.
        vertical: join stacks of single glyphs into vertical lines.
        cut_tall: cut the ink between the printed rows of a group several rows tall (handwriting,
            stamps or rings drawn across the print join them); off, such strokes are dropped as frames.
        cut_valley: a row with at most this fraction of the busiest row's glyphs lies between text rows.
        column_gap: a gap of at least this many of the line's own letter pitches splits it into columns
            (a double space in monospaced receipt print, ``2.10  SR``); 0 splits by ``max_gap`` alone.
    """

    polarity: str = "auto"
    max_gap: float = 1.2
    min_contrast: float = 24.0
    min_height: int = 6
    pad: float = 0.15
    max_side: int = 2560
    deskew: bool = True
    min_skew: float = 0.5
    vertical: bool = True
    cut_tall: bool = True
    cut_valley: float = 0.1
    column_gap: float = 1.9

    def __post_init__(self) -> None:
        if self.polarity not in POLARITIES:
            raise ValueError(f"polarity must be one of {POLARITIES}, not {self.polarity!r}")


# ------------------------------------------------------------------------------------------ ink mask


def _odd(n: float) -> int:
    return max(3, int(n) | 1)


def estimate_background(dark_text: np.ndarray) -> np.ndarray:
    """Paper brightness under dark text: a max-filter wider than any stroke, on a downscaled copy, smoothed."""
    h, w = dark_text.shape
    f = max(1, min(h, w) // 400)
    small = cv2.resize(dark_text, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA) if f > 1 \
        else dark_text
    k = min(_odd(max(min(small.shape) / 12, 15 / f)), _odd(min(small.shape)))  # wider than any stroke
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    smooth = cv2.GaussianBlur(small, (0, 0), 1.5)  # the max of sensor noise or JPEG ringing is no paper level
    bg = cv2.blur(cv2.dilate(smooth, kernel), (k, k))
    return cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR) if f > 1 else bg


def ink_contrast(gray: np.ndarray, dark: bool) -> np.ndarray:
    """How much darker (``dark``) or lighter than its local background each pixel is, as uint8."""
    g = gray if dark else 255 - gray
    return cv2.subtract(estimate_background(g), g)


def ink_mask(contrast: np.ndarray, min_contrast: float) -> np.ndarray:
    """Binary ink mask: Otsu on the contrast map, never below ``min_contrast`` (an empty page stays empty).

    Nor below three times the median contrast (most pixels are paper: on textured or noisy paper the
    median is the paper's own mottling, whose blotches would otherwise pass as ink), capped at Otsu.
    """
    otsu, _ = cv2.threshold(contrast, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    paper = float(np.median(contrast[::2, ::2]))
    thr = max(float(min_contrast), 0.5 * float(otsu), min(3.0 * paper, float(otsu)))
    return (contrast > thr).astype(np.uint8)


# ---------------------------------------------------------------------------------------- components


def components(mask: np.ndarray, contrast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(n, 4)`` as x0, y0, x1, y1 (exclusive) and mean contrast of each connected component."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    sums = np.bincount(labels.ravel(), weights=contrast.ravel().astype(np.float64), minlength=n)
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    boxes = np.stack([stats[:, 0], stats[:, 1], stats[:, 0] + stats[:, 2], stats[:, 1] + stats[:, 3],
                      stats[:, cv2.CC_STAT_AREA]], axis=1)[1:]
    return boxes.astype(np.float64), (sums / np.maximum(area, 1))[1:]


def typical_height(boxes: np.ndarray, min_height: int, page_h: int) -> float:
    """Median height of glyph-like components (the body text size)."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    ok = (h >= min_height) & (h <= 0.9 * page_h) & (w <= 4 * h)
    return float(np.median(h[ok])) if ok.any() else float(min_height)


def touches_edge(boxes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Mask of boxes reaching the border of an image of ``shape`` (height, width)."""
    h, w = shape[:2]
    return (boxes[:, 0] <= 0) | (boxes[:, 1] <= 0) | (boxes[:, 2] >= w) | (boxes[:, 3] >= h)


def keep_glyphs(boxes: np.ndarray, min_height: int, page_shape: tuple[int, int],
                strokes: np.ndarray | None = None) -> np.ndarray:
    """Mask of components that can be text: not specks, rules, frames, grids or solid blocks.

    ``strokes`` marks large components kept all the same (:func:`large_strokes`: handwriting over the
    print, to be cut between the rows rather than dropped with the glyphs it touches).
    """
    ph, pw = page_shape
    w, h, area = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], boxes[:, 4]
    hmed = typical_height(boxes, min_height, ph)
    fill = area / np.maximum(w * h, 1)
    speck = area < 3
    rule = ((w >= 12 * h) & (w > 4 * hmed)) | ((h >= 10 * w) & (h > 1.5 * hmed))
    frame = (np.maximum(w, h) > 4 * hmed) & (np.minimum(w, h) > 1.5 * hmed) & (fill < 0.08)
    block = (w * h > 0.05 * ph * pw) & (fill > 0.5) & (np.minimum(w, h) > 1.5 * hmed)  # not a glyph of a tight crop
    edge = touches_edge(boxes, page_shape) & (np.minimum(w, h) <= 0.25 * hmed)  # scan edges, border shadows
    huge = np.minimum(w, h) > 6 * hmed  # the desk around a photographed page, large stains: no glyph
    spared = strokes if strokes is not None else np.zeros(len(boxes), dtype=bool)
    return ~(speck | rule | block | edge | ((frame | huge) & ~spared))


def straight_share(mask: np.ndarray, box: np.ndarray) -> float:
    """Share of the largest blob's ink in ``box`` on long straight segments (near 1 for frames and grids).

    Segments of a quarter of the blob's longer side or more (probabilistic Hough); straight stays
    straight under rotation and perspective, so a photographed grid counts as one. Rings and scribbles
    have few such pixels.
    """
    x0, y0, x1, y1 = box[:4].astype(int)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(mask[y0:y1, x0:x1]), connectivity=8)
    if n < 2:
        return 0.0
    blob = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    scale = min(1.0, HOUGH_SIDE / max(blob.shape))
    if scale < 1.0:  # straightness survives downscaling; the transform's cost does not
        size = (max(1, round(blob.shape[1] * scale)), max(1, round(blob.shape[0] * scale)))
        blob = (cv2.resize(blob * 255, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    length = max(blob.shape)
    segments = cv2.HoughLinesP(blob, 1, np.pi / 360, threshold=max(10, length // 5),
                               minLineLength=max(10, length // 4), maxLineGap=3)
    if segments is None:
        return 0.0
    near = np.zeros_like(blob)
    for xa, ya, xb, yb in segments.reshape(-1, 4):
        cv2.line(near, (int(xa), int(ya)), (int(xb), int(yb)), 1, thickness=max(2, round(5 * scale)))
    return float((blob & near).sum() / max(int(blob.sum()), 1))


def large_strokes(mask: np.ndarray, boxes: np.ndarray, hmed: float, max_fill: float = 0.35,
                  max_straight: float = 0.5) -> np.ndarray:
    """Mask of handwriting-like components: large, sparse, not straight, clear of the page edge.

    A ring drawn around an amount or a scribble across the print joins the glyphs it touches into one
    component as large as a frame; dropped as a frame, it would take those glyphs with it. Kept, it is
    cut between the printed rows with the rest of the ink (:func:`cut_tall_groups`). Frames and grids
    are straight (:func:`straight_share`) and stay dropped.
    """
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    fill = boxes[:, 4] / np.maximum(w * h, 1)
    out = (np.maximum(w, h) > 4 * hmed) & (np.minimum(w, h) > 1.5 * hmed) & (fill < max_fill) & \
        ~touches_edge(boxes, mask.shape)
    for k in np.flatnonzero(out):
        out[k] = straight_share(mask, boxes[k]) < max_straight
    return out


def barcode_bars(boxes: np.ndarray, hmed: float, min_bars: int = 8) -> np.ndarray:
    """Mask of the bars of barcodes: ``min_bars`` or more thin bars side by side on the same rows.

    A bar is at least 4 times taller than wide and 1.5 text heights tall; the thinnest are dropped as
    rules anyway, but the wider ones would be linked into a line of junk (and the text above or below).
    """
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    bars = np.flatnonzero((h >= 4 * w) & (h >= 1.5 * hmed))
    out = np.zeros(len(boxes), dtype=bool)
    if len(bars) < min_bars:
        return out
    b = boxes[bars]
    yov = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    hmin = np.minimum(b[:, None, 3] - b[:, None, 1], b[None, :, 3] - b[None, :, 1])
    near = np.abs((b[:, None, 0] + b[:, None, 2]) - (b[None, :, 0] + b[None, :, 2])) / 2 <= 6 * hmed
    out[bars] = ((yov >= 0.7 * hmin) & near).sum(1) >= min_bars
    return out


def solidity(mask: np.ndarray, box: np.ndarray) -> float:
    """Area of the outer contour of the largest blob in ``box`` over its convex hull's (1 for a disc)."""
    x0, y0, x1, y1 = box[:4].astype(int)
    contours, _ = cv2.findContours(np.ascontiguousarray(mask[y0:y1, x0:x1]), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return 0.0
    c = max(contours, key=cv2.contourArea)
    hull = cv2.contourArea(cv2.convexHull(c))
    return float(cv2.contourArea(c) / hull) if hull > 0 else 0.0


def convex(mask: np.ndarray, boxes: np.ndarray, candidates: np.ndarray, min_solidity: float = 0.9) -> np.ndarray:
    """``candidates`` narrowed to convex blobs (discs, rectangles), which bold or blurred glyphs are not."""
    out = candidates.copy()
    for k in np.flatnonzero(candidates):
        out[k] = solidity(mask, boxes[k]) >= min_solidity
    return out


def logos(boxes: np.ndarray, hmed: float) -> np.ndarray:
    """Candidates for solid round or square marks larger than the text: logos, punch holes, stamps."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    fill = boxes[:, 4] / np.maximum(w * h, 1)
    return (fill > 0.6) & (np.minimum(w, h) >= 1.3 * hmed) & (w <= 2 * h) & (h <= 2 * w)


def solid_areas(boxes: np.ndarray, hmed: float, min_height: int) -> np.ndarray:
    """Candidates for solid ink areas large enough to hold inverted (light-on-dark) text."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    fill = boxes[:, 4] / np.maximum(w * h, 1)
    return (fill > 0.5) & (h >= 1.5 * hmed) & (w >= 3 * hmed) & (h >= 2 * min_height)


def inside_any(boxes: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Mask of ``boxes`` lying entirely within one of ``blocks`` (the holes of an inverted area)."""
    if not len(blocks) or not len(boxes):
        return np.zeros(len(boxes), dtype=bool)
    b, k = boxes[:, None, :4], blocks[None]
    return ((b[..., 0] >= k[..., 0]) & (b[..., 1] >= k[..., 1]) & (b[..., 2] <= k[..., 2])
            & (b[..., 3] <= k[..., 3])).any(axis=1)


# --------------------------------------------------------------------------------------------- linking


class UnionFind:
    """Disjoint sets over ``0..n-1`` (path halving)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        """Representative of ``i``'s set."""
        p = self.parent
        while p[i] != i:
            p[i] = p[p[i]]
            i = p[i]
        return i

    def union(self, i: int, j: int) -> None:
        """Join the sets of ``i`` and ``j``."""
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        """All sets, each sorted, in order of their smallest member."""
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return list(out.values())


def same_line(a: np.ndarray, b: np.ndarray, max_gap: float) -> np.ndarray:
    """Whether boxes ``a[k]`` and ``b[k]`` (``b`` starting right of ``a``'s left edge) share a line.

    Side by side: the smaller box overlaps the larger vertically by half its height, its centre lies in
    the larger's rows, the heights are comparable unless the smaller is a mark (dot, comma, dash, 一), and
    the horizontal gap is at most ``max_gap`` times the larger height. Stacked: boxes overlapping in x by
    half the narrower width, close vertically, whose union is still one glyph tall (i-dots, accents).
    """
    ax0, ay0, ax1, ay1 = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx0, by0, bx1, by1 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    ha, hb, wa, wb = ay1 - ay0, by1 - by0, ax1 - ax0, bx1 - bx0
    a_small = ha <= hb
    hs, hl = np.minimum(ha, hb), np.maximum(ha, hb)
    ws = np.where(a_small, wa, wb)
    small_cy = np.where(a_small, (ay0 + ay1) / 2, (by0 + by1) / 2)
    big_y0, big_y1 = np.where(a_small, by0, ay0), np.where(a_small, by1, ay1)
    yov = np.minimum(ay1, by1) - np.maximum(ay0, by0)
    comparable = (hl <= 2.5 * hs) | (np.maximum(ws, hs) <= 0.6 * hl) | (hs <= 0.4 * ws)
    side = (yov >= 0.5 * hs) & (small_cy >= big_y0) & (small_cy <= big_y1) & comparable & \
        (bx0 - ax1 <= max_gap * hl)
    xov = np.minimum(ax1, bx1) - np.maximum(ax0, bx0)
    union_h = np.maximum(ay1, by1) - np.minimum(ay0, by0)
    stacked = (xov >= 0.5 * np.minimum(wa, wb)) & (-yov <= 0.3 * hl) & (union_h <= 1.5 * hl)
    return side | stacked


def candidate_pairs(boxes: np.ndarray, max_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)`` with ``j`` starting at or right of ``i``'s left edge, within linking reach."""
    n = len(boxes)
    order = np.argsort(boxes[:, 0], kind="stable")
    xs = boxes[order, 0]
    heights = boxes[order, 3] - boxes[order, 1]
    hmax = float(heights.max()) if n else 0.0
    reach = boxes[order, 2] + np.minimum(max_gap * np.maximum(heights, 1.0) * 2.5, max_gap * hmax)
    stop = np.searchsorted(xs, reach, side="right")
    start = np.arange(1, n + 1)
    counts = np.maximum(stop - start, 0)
    first = np.repeat(np.arange(n), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    second = np.repeat(start, counts) + offsets
    return order[first], order[second]


def link_components(boxes: np.ndarray, max_gap: float) -> list[list[int]]:
    """Group component indices into lines with :func:`same_line` (all candidate pairs at once)."""
    uf = UnionFind(len(boxes))
    i, j = candidate_pairs(boxes, max_gap)
    ok = same_line(boxes[i], boxes[j], max_gap)
    for a, b in zip(i[ok].tolist(), j[ok].tolist(), strict=True):
        uf.union(a, b)
    return uf.groups()


def stacked_bars(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether flat bars ``a[k]`` and ``b[k]`` lie above each other about one glyph apart (二, 三, =)."""
    wa, wb = a[..., 2] - a[..., 0], b[..., 2] - b[..., 0]
    ha, hb = a[..., 3] - a[..., 1], b[..., 3] - b[..., 1]
    wn = np.minimum(wa, wb)
    xov = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    ygap = np.maximum(a[..., 1], b[..., 1]) - np.minimum(a[..., 3], b[..., 3])
    union_h = np.maximum(a[..., 3], b[..., 3]) - np.minimum(a[..., 1], b[..., 1])
    thin = (np.maximum(ha, hb) <= 0.25 * wn) & (np.maximum(ha, hb) <= 0.6 * ygap)  # bars, not flat words
    return thin & (wn >= 0.5 * np.maximum(wa, wb)) & (xov >= 0.6 * wn) & (ygap <= 0.8 * wn) & \
        (union_h <= 1.2 * wn)


def merge_bars(boxes: np.ndarray, contrast: np.ndarray, max_height: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    """Join the separate bars of one glyph into one box, so that 二 is one glyph of full height.

    Without this, the bars look like rows of their own to linking and projection splitting. Bars whose
    union would be taller than ``max_height`` are no glyph's (flat pieces of a stroke cut between rows:
    joined into one box, they would bridge the rows again).
    """
    if len(boxes) < 2:
        return boxes, contrast
    i, j = candidate_pairs(boxes, 1.0)
    union_h = np.maximum(boxes[i, 3], boxes[j, 3]) - np.minimum(boxes[i, 1], boxes[j, 1])
    ok = stacked_bars(boxes[i], boxes[j]) & (union_h <= max_height)
    if not ok.any():
        return boxes, contrast
    uf = UnionFind(len(boxes))
    for a, b in zip(i[ok].tolist(), j[ok].tolist(), strict=True):
        if not _between(boxes, a, b):
            uf.union(a, b)
    groups = uf.groups()
    merged = np.array([[*boxes[g, :2].min(0), *boxes[g, 2:4].max(0), boxes[g, 4].sum()] for g in groups])
    means = np.array([np.average(contrast[g], weights=np.maximum(boxes[g, 4], 1)) for g in groups])
    return merged, means


def _between(boxes: np.ndarray, a: int, b: int) -> bool:
    """Whether another component lies in the vertical gap between boxes ``a`` and ``b`` (where they overlap)."""
    x0, x1 = max(boxes[a, 0], boxes[b, 0]), min(boxes[a, 2], boxes[b, 2])
    y0, y1 = min(boxes[a, 3], boxes[b, 3]), max(boxes[a, 1], boxes[b, 1])
    hit = (boxes[:, 0] < x1) & (boxes[:, 2] > x0) & (boxes[:, 1] < y1) & (boxes[:, 3] > y0)
    hit[[a, b]] = False
    return bool(hit.any())


def row_cover(boxes: np.ndarray, y0: int, n: int) -> np.ndarray:
    """How many of ``boxes`` lie on each of the ``n`` rows from ``y0`` (a horizontal projection of boxes)."""
    cover = np.zeros(n, dtype=np.int32)
    for r in boxes:
        cover[int(r[1]) - y0: int(r[3]) - y0] += 1
    return cover


def split_rows(boxes: np.ndarray, idx: list[int]) -> list[list[int]]:
    """Cut a group that spans several text rows at the empty rows of its projection (projection splitting).

    Only glyphs of ordinary height vote, so the tall blob that bridged the rows does not hide the gap;
    every component then goes to the row band holding its centre.
    """
    b = boxes[idx]
    h = b[:, 3] - b[:, 1]
    med = float(np.median(h))
    y0, y1 = int(b[:, 1].min()), int(b[:, 3].max())
    if len(idx) < 3 or (y1 - y0) <= 1.8 * med:
        return [idx]
    cover = row_cover(b[h <= 1.5 * med], y0, y1 - y0 + 1)
    filled = np.flatnonzero(cover > 0)
    if filled.size == 0:
        return [idx]
    empty = np.flatnonzero(cover[filled[0]: filled[-1] + 1] == 0) + filled[0]
    if empty.size == 0:
        return [idx]
    breaks = np.split(empty, np.flatnonzero(np.diff(empty) > 1) + 1)
    cuts = [y0 + float(run.mean()) for run in breaks]
    cy = (b[:, 1] + b[:, 3]) / 2
    band = np.searchsorted(np.array(cuts), cy)
    return [[idx[k] for k in np.flatnonzero(band == v)] for v in np.unique(band)]


def group_lines(boxes: np.ndarray, max_gap: float) -> list[list[int]]:
    """Lines as lists of component indices.

    Components are linked, groups spanning several rows are split by projection and each band re-linked;
    then the groups themselves are linked by the same rule, so gaps are measured in the height of whole
    pieces of line (a full-width ``）：`` leaves a wide gap between two small marks).
    """
    pieces: list[list[int]] = []
    for group in link_components(boxes, max_gap):
        bands = split_rows(boxes, group)
        if len(bands) == 1:
            pieces.append(group)
            continue
        for band in bands:
            pieces.extend([[band[k] for k in sub] for sub in link_components(boxes[band], max_gap)])
    cores = np.array([piece_core(boxes[g]) for g in pieces])
    return [[i for k in joined for i in pieces[k]] for joined in link_components(cores, max_gap)]


def piece_core(b: np.ndarray) -> list[float]:
    """A piece of line as one box: its full width, its tallest glyph's height around its median centre.

    Unlike the bounding box, this stays one text line tall when the piece is tilted (before deskew).
    """
    cy = float(np.median((b[:, 1] + b[:, 3]) / 2))
    half = float((b[:, 3] - b[:, 1]).max()) / 2
    return [float(b[:, 0].min()), cy - half, float(b[:, 2].max()), cy + half, float(b[:, 4].sum())]


# ---------------------------------------------------------------------------------------------- geometry


def line_angle(b: np.ndarray) -> float | None:
    """Angle (degrees, CCW positive) of a line through its glyph centres, or None when too short to tell.

    The slope is the median of pairwise slopes (Theil-Sen), so punctuation, descenders and the parts of
    multi-blob characters do not tilt it.
    """
    if len(b) < 4:
        return None
    h = b[:, 3] - b[:, 1]
    big = b[h >= 0.7 * np.median(h)]
    if len(big) < 4:
        return None
    big = big[np.linspace(0, len(big) - 1, min(len(big), 60)).astype(int)]
    cx, cy = (big[:, 0] + big[:, 2]) / 2, (big[:, 1] + big[:, 3]) / 2
    if cx.max() - cx.min() < 6 * np.median(big[:, 3] - big[:, 1]):  # too short to trust a slope
        return None
    i, j = np.triu_indices(len(big), 1)
    dx = cx[j] - cx[i]
    ok = np.abs(dx) > 0.5 * np.median(big[:, 3] - big[:, 1])
    if not ok.any():
        return None
    slope = float(np.median((cy[j] - cy[i])[ok] / dx[ok]))
    return float(np.clip(-math.degrees(math.atan(slope)), -45, 45))


def box_corners(b: np.ndarray) -> np.ndarray:
    """All four corners of every box in ``b``, as ``(4n, 2)`` points."""
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return np.concatenate([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1),
                           np.stack([x0, y1], 1)])


def line_quad(b: np.ndarray, angle: float, pad: float) -> np.ndarray:
    """Padded rectangle around a line's glyph boxes at ``angle``."""
    pts = box_corners(b)
    tight = rotated_rect_quad(pts, angle)
    height = float(np.linalg.norm(tight[3] - tight[0]))
    return rotated_rect_quad(pts, angle, pad_x=pad * height, pad_y=pad * height)


def vertical_stacks(spans: np.ndarray) -> list[list[int]]:
    """Chains of at least three square-ish line boxes stacked top to bottom (vertical CJK text)."""
    w, h = spans[:, 2] - spans[:, 0], spans[:, 3] - spans[:, 1]
    square = np.flatnonzero((w >= 0.6 * h) & (w <= 1.67 * h))
    uf = UnionFind(len(spans))
    for i in square:
        s = np.maximum(w[i], h[i])
        for j in square:
            if spans[j, 1] <= spans[i, 1]:
                continue
            xov = min(spans[i, 2], spans[j, 2]) - max(spans[i, 0], spans[j, 0])
            gap = spans[j, 1] - spans[i, 3]
            sj = max(w[j], h[j])
            if xov >= 0.6 * min(w[i], w[j]) and -0.1 * s <= gap <= 0.6 * max(s, sj) and max(s, sj) <= 1.7 * min(s, sj):
                uf.union(int(i), int(j))
    return [g for g in uf.groups() if len(g) >= 3]


def vertical_quad(span: np.ndarray, pad: float) -> np.ndarray:
    """Quad of a vertical line starting at its top-right corner, so the crop reads left to right."""
    x0, y0, x1, y1 = span[:4]
    p = pad * (x1 - x0)
    x0, y0, x1, y1 = x0 - p, y0 - p, x1 + p, y1 + p
    return np.array([[x1, y0], [x1, y1], [x0, y1], [x0, y0]], dtype=np.float32)


def split_columns(b: np.ndarray, ratio: float) -> list[np.ndarray]:
    """Positions (into ``b``) of a line's columns: it is cut at gaps of at least ``ratio`` letter pitches.

    The pitch is the median distance between the centres of neighbouring glyphs a letter gap apart
    (overlapping boxes counted as one glyph). A word space is about one pitch wider than a letter gap, and
    a column gap in monospaced print about two, whatever the face's size or width, where a gap in text
    heights cannot tell a condensed face's double space from a wide face's single one. In a line of
    several words the gap must also stand out from its word gaps (:data:`WORD_OUTLIER`), so a justified
    line, whose spaces are all stretched, stays whole; so do lines with fewer than
    :data:`MIN_PITCH_GAPS` letter gaps.
    """
    order = np.argsort(b[:, 0], kind="stable")
    if ratio <= 0 or len(b) < MIN_PITCH_GAPS + 1:
        return [order]
    ends = np.maximum.accumulate(b[order, 2])
    starts = b[order, 0]
    new_run = np.concatenate([[True], starts[1:] > ends[:-1]])
    run_id = np.cumsum(new_run) - 1
    first = np.flatnonzero(new_run)
    r0, r1 = starts[first], ends[np.append(first[1:] - 1, len(b) - 1)]  # ``ends`` is a running maximum
    gaps = r0[1:] - r1[:-1]
    height = float(np.median(b[:, 3] - b[:, 1]))
    letter = gaps < LETTER_GAP * height
    if letter.sum() < MIN_PITCH_GAPS:
        return [order]
    pitch = float(np.median(np.diff((r0 + r1) / 2)[letter]))
    wide = gaps >= max(ratio * pitch, LETTER_GAP * height)
    spaces = gaps[~letter & ~wide]
    if len(spaces) or wide.sum() > 1:  # justified text widens all its spaces alike: a column gap stands out
        wide &= gaps >= WORD_OUTLIER * float(np.median(spaces) if len(spaces) else gaps[wide].min())
    cut = np.flatnonzero(wide) + 1
    return [order[np.isin(run_id, part)] for part in np.split(np.arange(len(r0)), cut)]


@dataclass(frozen=True)
class _Glyphs:
    boxes: np.ndarray
    mean_contrast: np.ndarray
    blocks: np.ndarray
    groups: list[list[int]]


def glyph_lines(ink: np.ndarray, contrast: np.ndarray, cfg: ClassicalConfig, inner: bool = False) -> _Glyphs:
    """Glyph components of an ink mask grouped into lines, and the solid areas found on the way.

    ``inner``: the mask is the inside of a solid area; what touches its edge is the paper around it.
    """
    boxes, mean_contrast = components(ink, contrast)
    if len(boxes) == 0:
        return _Glyphs(boxes, mean_contrast, np.zeros((0, 4)), [])
    hmed0 = typical_height(boxes, cfg.min_height, ink.shape[0])
    blocks = boxes[convex(ink, boxes, solid_areas(boxes, hmed0, cfg.min_height)), :4]
    strokes = large_strokes(ink, boxes, hmed0) if cfg.cut_tall else None
    keep = keep_glyphs(boxes, cfg.min_height, ink.shape, strokes) & ~inside_any(boxes, blocks)
    keep &= ~convex(ink, boxes, logos(boxes, hmed0)) & ~barcode_bars(boxes, hmed0)
    if inner:
        keep &= ~touches_edge(boxes, ink.shape)
    boxes, mean_contrast = merge_bars(boxes[keep], mean_contrast[keep], GLYPH_BARS * hmed0)
    groups = group_lines(boxes, cfg.max_gap) if len(boxes) else []
    return _Glyphs(boxes, mean_contrast, blocks, groups)


def row_cuts(b: np.ndarray, valley: float, text_height: float = 0.0) -> list[tuple[int, int]]:
    """Strips ``(first, last)`` of rows at which a group several text rows tall is cut between its rows.

    The text rows are the runs of rows covered by more than ``valley`` times the busiest row's ordinary
    glyphs (at most 1.5 median heights). A cut may only pass through strokes: a component at least 2.2
    glyph heights tall must cross it, and no shorter one (a glyph, of this font or a larger one). Each
    gap between two rows is cut away from the first row that only strokes cross to the last (around any
    row of larger glyphs in it), so a stroke across or around the rows is left in row-sized pieces and
    none of it, nor the fragments beside it, stays in the gap to bridge the rows; above the first row and
    below the last, one cut next to the row. Empty when the group is one line (its span under 2.5 glyph heights).

    The glyph height is the group's median component height, but never below ``text_height`` (the
    page's): faint print breaks into stroke fragments, whose small median would make the intact glyphs
    of the same line look like strokes across several rows.
    """
    h = b[:, 3] - b[:, 1]
    med = max(float(np.median(h)), text_height)
    y0, y1 = int(b[:, 1].min()), int(b[:, 3].max())
    if len(b) < 6 or (y1 - y0) < 2.5 * med:
        return []
    n = y1 - y0
    cover = row_cover(b[h <= 1.5 * med], y0, n)
    high = cover > valley * cover.max()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], high.astype(np.int8), [0]])))
    rows = [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True) if e - s >= 0.4 * med]
    if not rows:
        return []
    tall = h >= 2.2 * med
    ok = (row_cover(b[tall], y0, n) > 0) & (row_cover(b[~tall], y0, n) == 0)
    # a row of larger glyphs in a gap is no bridge: never cut away
    keep = row_cover(b[(h > 1.5 * med) & ~tall], y0, n) >= 2
    bounds = [0] + [v for s, e in rows for v in (s, e)] + [n]
    cuts: list[tuple[int, int]] = []
    for k in range(0, len(bounds), 2):
        gap = np.flatnonzero(ok[bounds[k]: bounds[k + 1]]) + bounds[k]
        if not gap.size:
            continue
        if k == 0:
            cuts.append((y0 + int(gap[-1]),) * 2)  # above the first row: next to it
        elif k == len(bounds) - 2:
            cuts.append((y0 + int(gap[0]),) * 2)  # below the last row
        else:  # between two rows: from the first row only strokes cross to the last, around larger type
            rows_in = np.arange(bounds[k], bounds[k + 1])
            for part in np.split(rows_in, np.flatnonzero(keep[rows_in])):
                part = part[~keep[part]]
                hits = part[ok[part]]
                if hits.size:
                    cuts.append((y0 + int(hits[0]), y0 + int(hits[-1])))
    return cuts


def cut_tall_groups(ink: np.ndarray, contrast: np.ndarray, found: _Glyphs, cfg: ClassicalConfig,
                    inner: bool = False) -> tuple[np.ndarray, _Glyphs, np.ndarray | None]:
    """Mask and lines after cutting the groups that span several text rows, and where ink was cut off.

    Handwriting or a stamp over printed rows joins glyphs of several rows into one component, which no
    grouping of whole components can split; cutting the mask between the rows leaves the strokes in
    row-sized pieces, so each printed row becomes a line of its own. The third value marks the ink left
    next to what was cut away (``None`` when nothing was: pages without such groups cost nothing more).
    """
    original = ink
    for _ in range(3):  # a cut can leave a group that is still several rows tall
        b = found.boxes
        if not len(b):
            break
        hmed = typical_height(b, cfg.min_height, ink.shape[0])
        cuts = [(top, bottom, int(b[g, 0].min()), int(b[g, 2].max())) for g in found.groups
                for top, bottom in row_cuts(b[g], cfg.cut_valley, hmed)]
        cuts = [c for c in cuts if ink[c[0]: c[1] + 1, c[2]: c[3]].any()]
        if not cuts:
            break
        ink = ink.copy() if ink is original else ink
        for top, bottom, x0, x1 in cuts:
            ink[top: bottom + 1, x0:x1] = 0
        found = glyph_lines(ink, contrast, cfg, inner)
    if ink is original:
        return ink, found, None
    removed = original & (1 - ink)
    scars = cv2.dilate(removed, np.ones((3, 3), np.uint8)) & ink
    return ink, found, scars


def cut_pieces(boxes: np.ndarray, scars: np.ndarray) -> np.ndarray:
    """Which components hold ink that was joined to ink cut away: pieces of a cut stroke.

    (Or glyphs a stroke touched; a printed glyph the strokes never touched holds none.)
    """
    total = cv2.integral(scars)
    x0, y0, x1, y1 = (boxes[:, k].astype(int) for k in range(4))
    return (total[y1, x1] - total[y0, x1] - total[y1, x0] + total[y0, x0]) > 0


# ------------------------------------------------------------------------------------------ detector


@dataclass(frozen=True)
class _Found:
    lines: list[DetectedLine]
    skew: float
    blocks: np.ndarray


def detect_polarity(gray: np.ndarray, dark: bool, cfg: ClassicalConfig, inner: bool = False) -> _Found:
    """Lines of one polarity on an unrotated page, the skew the long lines agree on, and solid areas.

    ``inner``: ``gray`` is the inside of a solid area; what touches its edge is the paper around it.
    """
    contrast = ink_contrast(gray, dark)
    ink = ink_mask(contrast, cfg.min_contrast)
    found = glyph_lines(ink, contrast, cfg, inner)
    scars = None
    if cfg.cut_tall:
        ink, found, scars = cut_tall_groups(ink, contrast, found, cfg, inner)
    boxes, mean_contrast, blocks = found.boxes, found.mean_contrast, found.blocks
    if len(boxes) == 0:
        return _Found([], 0.0, blocks)
    hmed = typical_height(boxes, cfg.min_height, gray.shape[0])
    columns = [[g[k] for k in part] for g in found.groups for part in split_columns(boxes[g], cfg.column_gap)]
    groups = [g for g in columns if _is_text(boxes[g], hmed, cfg.min_height)]
    cut_piece = cut_pieces(boxes, scars) if scars is not None else np.zeros(len(boxes), dtype=bool)
    groups = [g for g in groups if not cut_piece[g].all()]  # nothing but pieces of cut strokes
    fitted = [line_angle(boxes[g]) for g in groups]
    # only lines of print vote on the skew: a line holding pieces of handwriting follows the pen
    angles = [(a, len(g)) for g, a in zip(groups, fitted, strict=True)
              if a is not None and not cut_piece[g].any()]
    skew = _weighted_median([a for a, _ in angles], [n for _, n in angles]) if angles else 0.0
    skew = skew if abs(skew) >= cfg.min_skew else 0.0
    spans = np.array([[*boxes[g, :2].min(0), *boxes[g, 2:4].max(0)] for g in groups]) if groups \
        else np.zeros((0, 4))
    stacks = vertical_stacks(spans) if cfg.vertical and abs(skew) < 3 and len(groups) else []
    in_stack = {i for s in stacks for i in s}
    out: list[DetectedLine] = []
    for k, g in enumerate(groups):
        if k in in_stack:
            continue
        b = boxes[g]
        angle = fitted[k]
        if angle is None or abs(angle - skew) < SNAP_DEG:
            angle = skew
        score = _score(mean_contrast[g], b)
        out.append(DetectedLine(line_quad(b, angle, cfg.pad), score))
    for s in stacks:
        members = [i for k in s for i in groups[k]]
        span = np.array([*spans[s, :2].min(0), *spans[s, 2:4].max(0)])
        out.append(DetectedLine(vertical_quad(span, cfg.pad), _score(mean_contrast[members], boxes[members]),
                                vertical=True))
    return _Found(out, skew, blocks)


def _is_text(b: np.ndarray, hmed: float, min_height: int) -> bool:
    """A group is text if it has a glyph of text height, and is not one isolated small blob."""
    h = b[:, 3] - b[:, 1]
    w = b[:, 2] - b[:, 0]
    if h.max() < min_height and (b[:, 3].max() - b[:, 1].min()) < min_height:
        return False
    if len(b) > 1:
        flat_or_low = (h < 0.35 * w) | (h < 0.5 * hmed)
        low_row = (b[:, 3].max() - b[:, 1].min()) < 0.6 * hmed  # unlike 一二三, whose strokes are stacked
        return not (len(b) >= 3 and flat_or_low.all() and low_row)  # a separator: ----, ====, ....., ~~~~
    fill = b[0, 4] / max(h[0] * w[0], 1)
    blob = fill > 0.65 and 0.5 <= w[0] / max(h[0], 1) <= 2  # a dot, bullet or smudge, not a glyph
    return not (blob or max(h[0], w[0]) < 0.5 * hmed)


def _score(mean_contrast: np.ndarray, b: np.ndarray) -> float:
    """Confidence from ink contrast (area-weighted): faint marks score low."""
    c = float(np.average(mean_contrast, weights=np.maximum(b[:, 4], 1)))
    return float(np.clip(c / 128.0, 0.0, 1.0))


def _weighted_median(values: list[float], weights: list[int]) -> float:
    order = np.argsort(values)
    v, w = np.asarray(values)[order], np.asarray(weights, dtype=np.float64)[order]
    return float(v[np.searchsorted(np.cumsum(w), w.sum() / 2)])


class ClassicalDetector:
    """The OpenCV line finder behind ``OCR(detector="classical")``.

    Args:
        config: a :class:`ClassicalConfig`; keyword arguments override its fields.

    >>> det = ClassicalDetector(max_gap=2.0)
    >>> det.config.max_gap
    2.0
    """

    name = "classical"

    def __init__(self, config: ClassicalConfig | None = None, **overrides: Any) -> None:
        known = {f.name for f in fields(ClassicalConfig)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown classical detector settings: {sorted(unknown)}")
        self.config = replace(config or ClassicalConfig(), **overrides)

    def __call__(self, image: np.ndarray) -> list[DetectedLine]:
        """Text lines of a gray or BGR page, quads in the page's pixels (unordered)."""
        gray = array_to_gray(image)
        cfg = self.config
        scale = min(1.0, cfg.max_side / max(gray.shape))
        if scale < 1.0:
            size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        lines = self._detect(gray)
        if scale < 1.0:
            lines = [replace(ln, quad=(ln.quad / scale).astype(np.float32)) for ln in lines]
        return lines

    def _dark_text(self, gray: np.ndarray) -> bool:
        p = self.config.polarity
        return not is_light_on_dark(gray[::4, ::4]) if p == "auto" else p == "dark"

    def _detect(self, gray: np.ndarray) -> list[DetectedLine]:
        return self._detect_one(gray, self._dark_text(gray))

    def _detect_one(self, gray: np.ndarray, dark: bool) -> list[DetectedLine]:
        cfg = self.config
        found = detect_polarity(gray, dark, cfg)
        if not cfg.deskew or abs(found.skew) < cfg.min_skew:
            return found.lines + self._inverted_areas(gray, dark, found.blocks)
        m, size = rotation_matrix(gray.shape, -found.skew)
        paper = int(np.median(gray))
        upright = cv2.warpAffine(gray, m, size, flags=cv2.INTER_LINEAR, borderValue=paper)
        again = detect_polarity(upright, dark, cfg)
        lines = again.lines + self._inverted_areas(upright, dark, again.blocks)
        back = invert_affine(m)
        return [replace(ln, quad=transform_points(ln.quad, back)) for ln in lines]

    def _inverted_areas(self, gray: np.ndarray, dark: bool, blocks: np.ndarray) -> list[DetectedLine]:
        """Lines of the opposite polarity inside solid ink areas (a dark banner with white text on paper)."""
        out: list[DetectedLine] = []
        for x0, y0, x1, y1 in blocks.astype(int):
            inner = detect_polarity(gray[y0:y1, x0:x1], not dark, replace(self.config, deskew=False), inner=True)
            offset = np.array([x0, y0], dtype=np.float32)
            out.extend(replace(ln, quad=ln.quad + offset) for ln in inner.lines)
        return out
