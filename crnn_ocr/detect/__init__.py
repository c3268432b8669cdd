"""Text detection: detectors chosen by name, reading order and crops (NumPy/OpenCV only, never torch)."""

from crnn_ocr.detect.base import DETECTORS, DetectedLine, Detector, create_detector, list_detectors
from crnn_ocr.detect.geometry import as_quad, crop_quad, polygon_iou, quad_angle, quad_size, to_tuple
from crnn_ocr.detect.order import reading_order

__all__ = [
    "DETECTORS",
    "DetectedLine",
    "Detector",
    "as_quad",
    "create_detector",
    "crop_quad",
    "list_detectors",
    "polygon_iou",
    "quad_angle",
    "quad_size",
    "reading_order",
    "to_tuple",
]
