"""DBNet training targets on hand-checked rectangles."""

from __future__ import annotations

import numpy as np
import pytest

from crnn_ocr.detect.db_targets import db_targets, offset_polygon, shrink_distance, signed_area
from crnn_ocr.detect.geometry import as_quad


def test_shrink_distance_and_offsets_of_a_rectangle() -> None:
    rect = as_quad([10, 10, 110, 30])  # 100 x 20
    d = shrink_distance(rect, 0.4)
    assert d == pytest.approx(2000 * 0.84 / 240)
    inner = offset_polygon(rect, -d)
    assert inner is not None
    np.testing.assert_allclose(inner, as_quad([10 + d, 10 + d, 110 - d, 30 - d]), atol=1e-4)
    outer = offset_polygon(rect[::-1].copy(), 5.0)  # counter-clockwise input grows outwards too
    assert abs(signed_area(outer)) == pytest.approx(110 * 30, rel=1e-5)
    assert offset_polygon(rect, -10.5) is None  # thinner than twice the offset: collapses


def test_targets_of_one_line() -> None:
    rect = as_quad([20, 20, 120, 40])
    t = db_targets((60, 140), [rect], shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7)
    d = shrink_distance(rect, 0.4)  # 7.0
    assert t.prob[30, 70] == 1.0 and t.prob[21, 70] == 0.0 and t.prob[30, 22] == 0.0
    assert t.prob.sum() == pytest.approx((100 - 2 * d + 1) * (20 - 2 * d + 1), rel=0.15)
    assert t.prob_mask.min() == 1.0
    assert t.thresh[20, 70] == pytest.approx(0.7)  # on the border
    assert t.thresh[30, 70] == pytest.approx(0.3)  # far inside (10 px from the edges > d)
    assert t.thresh[20 - 3, 70] == pytest.approx(0.3 + 0.4 * (1 - 3 / d), abs=1e-4)
    assert t.thresh_mask[20 - 6, 70] == 1.0 and t.thresh_mask[2, 70] == 0.0
    assert t.thresh.min() >= 0.3 - 1e-6 and t.thresh.max() <= 0.7 + 1e-6


def test_tiny_and_ignored_lines_are_masked_out() -> None:
    tiny, ignored = as_quad([5, 5, 40, 10]), as_quad([60, 20, 120, 45])
    t = db_targets((60, 140), [tiny, ignored], ignore=[False, True])
    assert t.prob.max() == 0.0
    assert t.prob_mask[7, 20] == 0.0 and t.prob_mask[30, 90] == 0.0 and t.prob_mask[55, 5] == 1.0
    assert np.all(t.thresh_mask == 0.0)
