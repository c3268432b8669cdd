"""Quad helpers: parsing, IoU, crops."""

from __future__ import annotations

import numpy as np
import pytest

from crnn_ocr.detect.geometry import (
    as_quad,
    crop_quad,
    polygon_iou,
    quad_angle,
    quad_size,
    rotated_rect_quad,
    rotation_matrix,
    transform_points,
)


def test_as_quad_reads_xyxy_and_eight_numbers() -> None:
    assert as_quad([1, 2, 5, 7]).tolist() == [[1, 2], [5, 2], [5, 7], [1, 7]]
    assert as_quad([0, 0, 4, 0, 4, 3, 0, 3]).tolist() == [[0, 0], [4, 0], [4, 3], [0, 3]]
    with pytest.raises(ValueError, match="4 .xyxy. or 8"):
        as_quad([1, 2, 3])


@pytest.mark.parametrize(("a", "b", "iou"), [
    ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
    ([0, 0, 10, 10], [20, 0, 30, 10], 0.0),
    ([0, 0, 2, 2], [1, 0, 3, 2], 2 / 6),
    ([0, 0, 4, 4], [1, 1, 3, 3], 4 / 16),
    ([0, 0, 10, 10], [5, 5, 15, 15], 25 / 175),
])
def test_polygon_iou_hand_computed(a: list[int], b: list[int], iou: float) -> None:
    assert polygon_iou(as_quad(a), as_quad(b)) == pytest.approx(iou, abs=1e-6)
    assert polygon_iou(as_quad(b), as_quad(a)) == pytest.approx(iou, abs=1e-6)


def test_polygon_iou_of_a_diamond_in_its_square() -> None:
    square = as_quad([0, 0, 2, 2])
    diamond = np.array([[1, 0], [2, 1], [1, 2], [0, 1]], dtype=np.float32)
    assert polygon_iou(square, diamond) == pytest.approx(0.5, abs=1e-6)


def test_crop_of_an_axis_aligned_quad_is_the_slice() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (60, 80), dtype=np.uint8)
    crop = crop_quad(img, as_quad([10, 5, 50, 25]))
    assert crop.shape == (20, 40)
    assert np.abs(crop.astype(int) - img[5:25, 10:50]).max() <= 1


def turned_rect(cx: float, cy: float, w: float, h: float, angle: float) -> np.ndarray:
    """A ``w x h`` rectangle centred at ``(cx, cy)``, its top edge at ``angle`` degrees (CCW)."""
    t = np.radians(angle)
    u, v = np.array([np.cos(t), -np.sin(t)]), np.array([np.sin(t), np.cos(t)])
    c = np.array([cx, cy])
    return np.array([c + a * u * w / 2 + b * v * h / 2 for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))],
                    dtype=np.float32)


def test_crop_of_a_rotated_quad_is_upright_and_keeps_its_size() -> None:
    import cv2

    img = np.full((200, 200), 255, np.uint8)
    cv2.fillConvexPoly(img, turned_rect(100, 100, 60, 10, 30.0).round().astype(np.int32), 0)
    quad = turned_rect(100, 100, 100, 30, 30.0)
    crop = crop_quad(img, quad)
    assert crop.shape == (30, 100)
    dark = crop < 128
    rows, cols = np.flatnonzero(dark.mean(axis=1) > 0.3), np.flatnonzero(dark.any(axis=0))
    assert 8 <= rows.size <= 12 and abs(rows.mean() - 14.5) <= 1.5  # a level bar in the middle
    assert 56 <= np.ptp(cols) + 1 <= 64
    assert quad_angle(quad) == pytest.approx(30.0, abs=1e-4)
    assert quad_size(quad) == pytest.approx((100.0, 30.0), abs=1e-3)


def test_rotated_rect_quad_bounds_points_at_the_given_angle() -> None:
    pts = turned_rect(50, 50, 40, 10, -10.0)
    q = rotated_rect_quad(pts, -10.0, pad_x=2.0, pad_y=1.0)
    assert quad_size(q) == pytest.approx((44.0, 12.0), abs=1e-3)
    assert quad_angle(q) == pytest.approx(-10.0, abs=1e-4)


def test_quad_starting_at_top_right_crops_a_column_turned_to_read_left_to_right() -> None:
    img = np.full((100, 30), 255, np.uint8)
    img[5:20, 10:20] = 0  # first "character" at the top
    quad = np.array([[30, 0], [30, 100], [0, 100], [0, 0]], dtype=np.float32)
    crop = crop_quad(img, quad)
    assert crop.shape == (30, 100)
    cols = np.flatnonzero((crop < 128).any(axis=0))
    assert cols.max() < 25  # the top of the column is now on the left


def test_rotation_matrix_keeps_the_whole_image() -> None:
    m, (w, h) = rotation_matrix((100, 200), 90.0)
    assert (w, h) == (100, 200)
    corners = transform_points(as_quad([0, 0, 200, 100]), m)
    assert corners.min() >= -1e-3 and corners[:, 0].max() <= w + 1e-3 and corners[:, 1].max() <= h + 1e-3
