"""DB-style detection: post-processing on hand-made maps, and the ONNX plumbing with a tiny fake model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_detect_classical import PAGE, recall_precision, render_page

from crnn_ocr.detect import create_detector, quad_angle, quad_size
from crnn_ocr.detect.db import META_KEY, DBConfig, DBDetector, boxes_from_map, input_size, reading_quad, unclip_rect


def test_unclip_grows_every_side_by_area_times_ratio_over_perimeter() -> None:
    (c, (w, h), a) = unclip_rect(((50.0, 20.0), (100.0, 10.0), 0.0), 1.5)
    d = 100 * 10 * 1.5 / 220
    assert c == (50.0, 20.0) and a == 0.0
    assert (w, h) == pytest.approx((100 + 2 * d, 10 + 2 * d))


def test_input_size_keeps_aspect_in_multiples_of_32() -> None:
    cfg = DBConfig(limit_side=960)
    assert input_size(1700, 900, cfg) == (960, 512)
    assert input_size(40, 300, cfg) == (64, 480)  # small images are enlarged to min_side
    h, w = input_size(500, 700, cfg)
    assert h % 32 == 0 and w % 32 == 0


def test_reading_quad_orders_corners_for_horizontal_and_vertical_boxes() -> None:
    flat = np.array([[100, 10], [100, 30], [0, 30], [0, 10]], dtype=np.float32)  # any start, any direction
    quad, vertical = reading_quad(flat)
    assert not vertical and quad.round().tolist() == [[0, 10], [100, 10], [100, 30], [0, 30]]
    tall = np.array([[10, 0], [30, 0], [30, 100], [10, 100]], dtype=np.float32)
    quad, vertical = reading_quad(tall)
    assert vertical and quad.round().tolist() == [[30, 0], [30, 100], [10, 100], [10, 0]]
    assert quad_size(quad) == pytest.approx((100.0, 20.0))


def test_boxes_from_a_probability_map() -> None:
    prob = np.zeros((100, 200), np.float32)
    prob[20:30, 20:120] = 0.9  # a confident line kernel
    prob[60:66, 20:60] = 0.35  # above thresh, below box_thresh
    prob[40:90, 170:180] = 0.8  # a vertical column
    lines = boxes_from_map(prob, DBConfig(unclip_ratio=1.0, box_thresh=0.5), (2.0, 2.0))
    assert len(lines) == 2
    horizontal = next(ln for ln in lines if not ln.vertical)
    w0, h0 = 99.0, 9.0  # minAreaRect of the region's pixel centres
    d = w0 * h0 * 1.0 / (2 * (w0 + h0))
    w, h = quad_size(horizontal.quad)
    assert w == pytest.approx(2 * (w0 + 2 * d), abs=0.5) and h == pytest.approx(2 * (h0 + 2 * d), abs=0.5)
    assert abs(quad_angle(horizontal.quad)) < 1e-3 and horizontal.score == pytest.approx(0.9)
    assert any(ln.vertical for ln in lines)


def fake_db_model(path: Path) -> Path:
    """(1,1,H,W) gray page -> probability of 'near dark ink' (a dilated ink map), with crnn-ocr metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Neg", ["x"], ["neg"]),
        helper.make_node("MaxPool", ["neg"], ["pooled"], kernel_shape=[3, 15], pads=[1, 7, 1, 7], strides=[1, 1]),
        helper.make_node("Mul", ["pooled", "gain"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["prob"]),
    ]
    graph = helper.make_graph(
        nodes, "fake_db",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "H", "W"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 1, "H", "W"])],
        [numpy_helper.from_array(np.array(6.0, dtype=np.float32), "gain")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps({"channels": 1, "mean": [0.5], "std": [0.5]})
    onnx.save(model, str(path))
    return path


def test_db_detector_runs_an_onnx_model_and_maps_boxes_back_to_the_page(tmp_path: Path) -> None:
    gray, true = render_page(PAGE)
    det = create_detector("db", model=fake_db_model(tmp_path / "db.onnx"), threads=1, unclip_ratio=0.2,
                          limit_side=640)
    assert isinstance(det, DBDetector) and det.spec.channels == 1
    found = det(gray)
    recall, precision = recall_precision([ln.quad for ln in found], true)
    assert recall >= 0.7 and precision >= 0.5  # a crude dilated-ink model splits lines at word spaces
    assert all(0 <= ln.score <= 1 for ln in found)


def test_db_detector_needs_a_model_and_known_settings(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no detection model"):
        create_detector("db")
    with pytest.raises(FileNotFoundError):
        DBDetector(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="unknown db"):
        DBDetector(fake_db_model(tmp_path / "m.onnx"), treshold=0.2)
