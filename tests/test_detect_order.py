"""Reading order: rows, receipts, columns, skew."""

from __future__ import annotations

import numpy as np

from crnn_ocr.detect.geometry import as_quad, rotation_matrix, transform_points
from crnn_ocr.detect.order import page_skew, reading_order


def boxes(*xyxy: tuple[int, int, int, int]) -> list[np.ndarray]:
    return [as_quad(b) for b in xyxy]


def test_lines_top_to_bottom() -> None:
    quads = boxes((0, 100, 300, 120), (0, 0, 300, 20), (0, 50, 300, 70))
    assert reading_order(quads) == [1, 2, 0]
    assert reading_order([]) == []


def test_receipt_row_left_to_right_then_next_row() -> None:
    quads = boxes((600, 52, 660, 72), (20, 50, 120, 70), (20, 100, 200, 120), (600, 101, 660, 121))
    assert reading_order(quads) == [1, 0, 2, 3]


def test_receipt_price_column_is_not_read_as_a_column() -> None:
    labels = [(40 + 10 * k, 30 * k, 300, 30 * k + 20) for k in range(5)]
    prices = [(560, 30 * k, 620, 30 * k + 20) for k in range(5)]
    quads = boxes(*(b for pair in zip(labels, prices, strict=True) for b in pair))
    assert reading_order(quads) == list(range(10))


def test_two_columns_under_a_title() -> None:
    title = (100, 0, 800, 40)
    left = [(0, 80 + 30 * k, 420, 100 + 30 * k) for k in range(6)]
    right = [(480, 80 + 30 * k, 900, 100 + 30 * k) for k in range(6)]
    # interleave in the input, as a detector might return them
    quads = boxes(*[b for pair in zip(right, left, strict=True) for b in pair], title)
    order = reading_order(quads)
    text = [("T" if i == 12 else ("R" if i % 2 == 0 else "L")) + str(i // 2 if i < 12 else 0) for i in order]
    assert text == ["T0"] + [f"L{k}" for k in range(6)] + [f"R{k}" for k in range(6)]


def test_skewed_page_keeps_row_order() -> None:
    quads = boxes((20, 50, 120, 70), (600, 50, 660, 70), (20, 100, 200, 120))
    m, _ = rotation_matrix((400, 800), 5.0)
    turned = [transform_points(q, m) for q in quads]
    assert abs(page_skew(turned) - 5.0) < 0.1
    assert reading_order(turned) == [0, 1, 2]


def test_vertical_columns_are_read_right_to_left() -> None:
    columns = [np.array([[x + 40, 0], [x + 40, 300], [x, 300], [x, 0]], dtype=np.float32) for x in (0, 60, 120)]
    assert reading_order(columns) == [2, 1, 0]
    mixed = columns[:2] + [as_quad([0, 320, 200, 340])]
    assert reading_order(mixed) == [1, 0, 2]
