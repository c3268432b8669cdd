"""Quadrilateral geometry shared by detectors, the pipeline and the page metrics (NumPy/OpenCV only).

A quad is a ``(4, 2)`` float array of corners in reading orientation: top-left, top-right, bottom-right,
bottom-left *of the text*. For a horizontal line that is clockwise from the page's top-left corner; for a
vertical (top-to-bottom) line it starts at the page's top-right corner, so that :func:`crop_quad` returns
the line already turned to read left to right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from crnn_ocr.results import Quad


def as_quad(points: Sequence[float] | np.ndarray) -> np.ndarray:
    """A ``(4, 2)`` float32 quad from 8 numbers (x1, y1, ..., x4, y4), 4 numbers (x0, y0, x1, y1) or corners.

    >>> as_quad([0, 0, 10, 5]).tolist()
    [[0.0, 0.0], [10.0, 0.0], [10.0, 5.0], [0.0, 5.0]]
    """
    a = np.asarray(points, dtype=np.float32).reshape(-1)
    if a.size == 4:
        x0, y0, x1, y1 = a
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
    if a.size == 8:
        return a.reshape(4, 2).copy()
    raise ValueError(f"a box needs 4 (xyxy) or 8 (quad) numbers, got {a.size}")


def to_tuple(quad: np.ndarray) -> Quad:
    """The public ``Quad`` tuple form of a quad array."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    return tuple((float(x), float(y)) for x, y in q)  # type: ignore[return-value]


def quad_size(quad: np.ndarray) -> tuple[float, float]:
    """Width and height of a quad along its own top edge and left edge (the longer of opposite sides)."""
    q = np.asarray(quad, dtype=np.float64)
    w = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
    h = max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]))
    return float(w), float(h)


def quad_angle(quad: np.ndarray) -> float:
    """Angle of the quad's reading direction (top edge) in degrees, counter-clockwise positive on the page."""
    q = np.asarray(quad, dtype=np.float64)
    d = (q[1] - q[0]) + (q[2] - q[3])
    return float(math.degrees(math.atan2(-d[1], d[0])))


def rotated_rect_quad(points: np.ndarray, angle_deg: float, pad_x: float = 0.0, pad_y: float = 0.0) -> np.ndarray:
    """Smallest rectangle at ``angle_deg`` (reading direction, CCW positive) around ``points``, padded.

    Fixing the angle instead of letting ``cv2.minAreaRect`` choose it keeps short words (two letters, a
    number) from getting diagonal boxes: the angle comes from the line fit or the page skew.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    t = math.radians(angle_deg)
    u = np.array([math.cos(t), -math.sin(t)])  # reading direction in image coordinates (y down)
    v = np.array([math.sin(t), math.cos(t)])  # "down" in the text's frame
    pu, pv = pts @ u, pts @ v
    u0, u1 = pu.min() - pad_x, pu.max() + pad_x
    v0, v1 = pv.min() - pad_y, pv.max() + pad_y
    corners = [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]
    return np.array([a * u + b * v for a, b in corners], dtype=np.float32)


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Perspective-warp the region of ``quad`` to an upright rectangle (corner 0 becomes top-left).

    The output size is the quad's own width and height, so a slanted line keeps its resolution. Pixels
    outside the image repeat the border (a box touching the edge gets no black bar).
    """
    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    w, h = quad_size(q)
    w, h = max(1, int(round(w))), max(1, int(round(h)))
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def rotation_matrix(shape: tuple[int, int], angle_deg: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Affine matrix turning an image of ``shape`` by ``angle_deg`` (CCW) onto a canvas that holds all of it.

    Returns the ``2x3`` matrix and the new ``(width, height)``.
    """
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(math.ceil(round(w * c + h * s, 6))), int(math.ceil(round(w * s + h * c, 6)))
    m[0, 2] += nw / 2.0 - w / 2.0
    m[1, 2] += nh / 2.0 - h / 2.0
    return m, (nw, nh)


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a ``2x3`` affine matrix to ``(..., 2)`` points."""
    p = np.asarray(points, dtype=np.float64)
    flat = p.reshape(-1, 2)
    out = flat @ m[:, :2].T + m[:, 2]
    return out.reshape(p.shape).astype(np.float32)


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a ``2x3`` affine matrix."""
    return cv2.invertAffineTransform(m)


def polygon_area(poly: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula)."""
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def polygon_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two quads (convex hulls are used, as quads from boxes are convex).

    >>> round(polygon_iou(as_quad([0, 0, 2, 2]), as_quad([1, 0, 3, 2])), 4)
    0.3333
    """
    pa = cv2.convexHull(np.asarray(a, dtype=np.float32).reshape(-1, 1, 2))
    pb = cv2.convexHull(np.asarray(b, dtype=np.float32).reshape(-1, 1, 2))
    area_a, area_b = polygon_area(pa), polygon_area(pb)
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter, _ = cv2.intersectConvexConvex(pa, pb)
    inter = max(0.0, float(inter))
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0
