"""Training targets of a DBNet-style detector, from line polygons (NumPy/OpenCV, shared with evaluation).

DBNet learns two maps: a *probability* map of text kernels (each line polygon shrunk by
``D = area * (1 - r^2) / perimeter``) and a *threshold* map that is high on the polygon border and fades
to ``thresh_min`` at distance ``D``; the differentiable binarisation of the two is trained as well. At
inference only the probability map is used and kernels are grown back by ``unclip`` in
:mod:`crnn_ocr.detect.db`. Lines too small to shrink are masked out of the loss instead of teaching the
model that they are background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def signed_area(poly: np.ndarray) -> float:
    """Shoelace area; positive when the corners run clockwise on the page (y down)."""
    x, y = poly[:, 0].astype(np.float64), poly[:, 1].astype(np.float64)
    return float((np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def perimeter(poly: np.ndarray) -> float:
    """Length of the closed polygon's boundary."""
    return float(np.linalg.norm(np.roll(poly, -1, axis=0) - poly, axis=1).sum())


def shrink_distance(poly: np.ndarray, ratio: float) -> float:
    """DBNet's offset ``area * (1 - ratio^2) / perimeter``."""
    return abs(signed_area(poly)) * (1.0 - ratio ** 2) / max(perimeter(poly), 1e-6)


def offset_polygon(poly: np.ndarray, distance: float) -> np.ndarray | None:
    """Move every edge of a convex polygon outwards by ``distance`` (inwards when negative).

    Returns the new corners (intersections of neighbouring moved edges), or None when the polygon
    collapses (an inward offset of half its thickness or more).
    """
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    sign = 1.0 if signed_area(p) > 0 else -1.0
    edges = np.roll(p, -1, axis=0) - p
    lengths = np.linalg.norm(edges, axis=1)
    if (lengths < 1e-9).any():
        return None
    normals = sign * np.stack([edges[:, 1], -edges[:, 0]], axis=1) / lengths[:, None]  # outward
    starts = p + distance * normals
    out = []
    n = len(p)
    for i in range(n):
        a0, da = starts[i - 1], edges[i - 1]
        b0, db = starts[i], edges[i]
        det = da[0] * db[1] - da[1] * db[0]
        if abs(det) < 1e-12:
            out.append(b0)
            continue
        t = ((b0[0] - a0[0]) * db[1] - (b0[1] - a0[1]) * db[0]) / det
        out.append(a0 + t * da)
    q = np.array(out)
    if distance < 0 and (signed_area(q) * signed_area(p) <= 0 or abs(signed_area(q)) < 1.0):
        return None
    return q.astype(np.float32)


def segment_distance(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of points ``(px, py)`` to the segment ``a-b``."""
    d = b - a
    t = ((px - a[0]) * d[0] + (py - a[1]) * d[1]) / max(float(d @ d), 1e-12)
    t = np.clip(t, 0.0, 1.0)
    return np.hypot(px - (a[0] + t * d[0]), py - (a[1] + t * d[1]))


@dataclass(frozen=True)
class DBTargets:
    """The four ``(H, W)`` float32 maps of one page."""

    prob: np.ndarray
    prob_mask: np.ndarray
    thresh: np.ndarray
    thresh_mask: np.ndarray


def db_targets(shape: tuple[int, int], polys: list[np.ndarray], ignore: list[bool] | None = None,
               shrink_ratio: float = 0.4, thresh_min: float = 0.3, thresh_max: float = 0.7,
               min_size: float = 8.0) -> DBTargets:
    """DBNet targets for lines ``polys`` on a page of ``shape``; ``ignore[k]`` masks a line out of the loss.

    Lines whose shorter side is below ``min_size`` or that collapse when shrunk are masked out too.
    """
    h, w = shape
    prob = np.zeros((h, w), np.float32)
    prob_mask = np.ones((h, w), np.float32)
    border = np.zeros((h, w), np.float32)
    thresh_mask = np.zeros((h, w), np.float32)
    ignore = ignore or [False] * len(polys)
    for poly, skip in zip(polys, ignore, strict=True):
        p = np.asarray(poly, dtype=np.float32).reshape(-1, 2)
        rect_w, rect_h = cv2.minAreaRect(p)[1]
        d = shrink_distance(p, shrink_ratio)
        kernel = offset_polygon(p, -d) if not skip and min(rect_w, rect_h) >= min_size else None
        if kernel is None:
            cv2.fillPoly(prob_mask, [p.round().astype(np.int32)], 0.0)
            continue
        cv2.fillPoly(prob, [kernel.round().astype(np.int32)], 1.0)
        grown = offset_polygon(p, d)
        if grown is None:
            continue
        cv2.fillPoly(thresh_mask, [grown.round().astype(np.int32)], 1.0)
        _draw_border(border, p, grown, d)
    thresh = thresh_min + (thresh_max - thresh_min) * border
    return DBTargets(prob, prob_mask, thresh.astype(np.float32), thresh_mask)


def _draw_border(border: np.ndarray, poly: np.ndarray, grown: np.ndarray, d: float) -> None:
    """``1 - distance_to_edge / d`` (clipped at 0) around ``poly``, merged into ``border`` by maximum."""
    h, w = border.shape
    x0, y0 = np.floor(grown.min(axis=0)).astype(int)
    x1, y1 = np.ceil(grown.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
    if x1 < x0 or y1 < y0:
        return
    ys, xs = np.mgrid[y0: y1 + 1, x0: x1 + 1].astype(np.float64)
    dist = np.full(xs.shape, np.inf)
    pts = poly.astype(np.float64)
    for k in range(len(pts)):
        dist = np.minimum(dist, segment_distance(xs, ys, pts[k], pts[(k + 1) % len(pts)]))
    value = np.clip(1.0 - dist / max(d, 1e-6), 0.0, 1.0).astype(np.float32)
    region = border[y0: y1 + 1, x0: x1 + 1]
    np.maximum(region, value, out=region)
