"""Page metrics on hand-computed examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crnn_ocr.detect.geometry import as_quad
from crnn_ocr.detect.metrics import (
    PageCounts,
    TrueLine,
    char_counts,
    find_pages,
    iou_matrix,
    match,
    read_page_labels,
    score_page,
    text_key,
)


def test_match_is_one_to_one_greedy_by_iou() -> None:
    ious = np.array([[0.9, 0.6, 0.0],
                     [0.8, 0.7, 0.0],
                     [0.0, 0.0, 0.4]])
    assert match(ious) == [(0, 0), (1, 1)]
    assert match(ious, threshold=0.3) == [(0, 0), (1, 1), (2, 2)]
    assert match(np.zeros((0, 3))) == []


def test_iou_matrix_against_hand_values() -> None:
    pred = [as_quad([0, 0, 10, 10]), as_quad([100, 100, 110, 110])]
    true = [as_quad([0, 0, 10, 20]), as_quad([5, 0, 15, 10])]
    m = iou_matrix(pred, true)
    assert m.shape == (2, 2)
    assert m[0] == pytest.approx([0.5, 50 / 150])
    assert m[1] == pytest.approx([0.0, 0.0])


def test_text_key_and_char_bag_ignore_spaces_and_case() -> None:
    assert text_key(" Total  12.50 ") == "total12.50"
    assert char_counts(["ab a", "B"]) == {"a": 2, "b": 2}


def test_score_page_counts_by_hand() -> None:
    truth = [TrueLine(as_quad([0, 0, 100, 20]), "TOTAL 12.50"),
             TrueLine(as_quad([0, 40, 100, 60]), "发票"),
             TrueLine(as_quad([0, 80, 100, 100]), "abc")]
    pred = [as_quad([2, 1, 100, 21]), as_quad([0, 40, 100, 60]), as_quad([300, 0, 400, 20])]
    texts = ["total12.50", "发栗", "xyz"]
    c = score_page(pred, texts, truth, seconds=2.0)
    assert (c.true_lines, c.pred_lines, c.det_matched, c.e2e_matched) == (3, 3, 2, 1)
    # truth chars: TOTAL12.50 (10) + 发票 (2) + abc (3) = 15; predicted: 10 + 2 + 3 = 15; common: 10 + 发 = 11
    assert (c.true_chars, c.pred_chars, c.common_chars) == (15, 15, 11)
    r = c.rates()
    assert r["det_recall"] == pytest.approx(2 / 3) and r["det_precision"] == pytest.approx(2 / 3)
    assert r["e2e_recall"] == pytest.approx(1 / 3)
    assert r["char_f1"] == pytest.approx(11 / 15)
    assert r["s_per_page"] == pytest.approx(2.0)


def test_detection_only_and_sums() -> None:
    truth = [TrueLine(as_quad([0, 0, 10, 10]), "a")]
    a = score_page([as_quad([0, 0, 10, 10])], None, truth, seconds=1.0)
    b = score_page([], None, truth, seconds=3.0)
    total = a + b
    assert isinstance(total, PageCounts)
    assert (total.pages, total.true_lines, total.det_matched, total.true_chars) == (2, 2, 1, 0)
    assert total.rates()["det_recall"] == 0.5 and total.rates()["s_per_page"] == 2.0
    assert score_page([], None, truth, cpu_seconds=4.0).rates()["cpu_s_per_page"] == 4.0
    assert PageCounts().rates()["det_precision"] == 0.0


def test_labels_with_xyxy_and_quads(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "a.json").write_text(json.dumps({"lines": [{"box": [1, 2, 3, 4], "text": "x"},
                                                           {"box": [0, 0, 5, 0, 5, 5, 0, 5], "text": "y"}]}))
    (tmp_path / "b.jpg").write_bytes(b"")  # no labels: skipped
    pages = find_pages(tmp_path)
    assert [p.name for p, _ in pages] == ["a.png"]
    lines = read_page_labels(pages[0][1])
    assert [ln.text for ln in lines] == ["x", "y"]
    assert lines[0].quad.tolist() == [[1, 2], [3, 2], [3, 4], [1, 4]]
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(ValueError, match="lines"):
        read_page_labels(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        find_pages(tmp_path / "missing")
