"""DBNet-style detection: an ONNX probability-map model, with pre- and post-processing in NumPy/OpenCV.

The model maps a ``(1, C, H, W)`` float32 page (H and W multiples of 32) to a ``(1, 1, H, W)`` map of
text probability (a DBNet shrunk text-kernel map). Post-processing follows DBNet: threshold the map, take
each connected region's minimum-area rectangle, score it by the mean probability inside the region, and
grow it back ("unclip") by ``area * unclip_ratio / perimeter`` on every side, since the model was trained
to predict text kernels shrunk by that offset.

Models carry their input convention in ONNX metadata under ``crnn_ocr.det`` (JSON: ``mean``, ``std``,
``channels``); a model without it (e.g. a PP-OCR det export) gets ImageNet-free defaults of mean 0.5 and
std 0.5 on BGR. No model ships yet: pass ``model=PATH``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crnn_ocr.detect.base import DetectedLine
from crnn_ocr.detect.geometry import rotated_rect_quad

META_KEY = "crnn_ocr.det"


@dataclass(frozen=True)
class DBConfig:
    """Settings of the DB post-processing and input size.

    Args:
        limit_side: the page is resized so that its longer side is at most this (then to multiples of 32).
        min_side: ... and its shorter side at least this (small screenshots are enlarged).
        thresh: probability above which a pixel is text.
        box_thresh: mean probability a region needs to be kept.
        unclip_ratio: how far shrunk kernels are grown back (DBNet's training offset).
        min_size: regions with a shorter side below this (in map pixels) are dropped.
        max_candidates: most regions examined per page.
    """

    limit_side: int = 1280
    min_side: int = 64
    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    min_size: float = 3.0
    max_candidates: int = 1000


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its page: channel count and per-channel normalisation ``(x/255 - mean) / std``."""

    channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)

    @classmethod
    def from_props(cls, props: dict[str, str]) -> InputSpec:
        """From ONNX metadata (defaults when the model has none)."""
        if META_KEY not in props:
            return cls()
        d = json.loads(props[META_KEY])
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown keys in {META_KEY} metadata: {sorted(unknown)}")
        return cls(int(d.get("channels", 3)), tuple(d.get("mean", cls.mean)), tuple(d.get("std", cls.std)))


def input_size(h: int, w: int, cfg: DBConfig) -> tuple[int, int]:
    """Model input ``(height, width)``: aspect kept, longer side <= ``limit_side``, multiples of 32."""
    scale = min(1.0, cfg.limit_side / max(h, w))
    scale = max(scale, cfg.min_side / min(h, w)) if min(h, w) * scale < cfg.min_side else scale
    return max(32, int(round(h * scale / 32)) * 32), max(32, int(round(w * scale / 32)) * 32)


def preprocess(page: np.ndarray, size: tuple[int, int], spec: InputSpec) -> np.ndarray:
    """Gray or BGR uint8 page -> ``(1, C, H, W)`` float32 model input."""
    img = page if page.ndim == 3 else cv2.cvtColor(page, cv2.COLOR_GRAY2BGR)
    if spec.channels == 1:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[..., None]
    img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR).reshape(size[0], size[1], -1)
    x = (img.astype(np.float32) / 255.0 - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def unclip_rect(rect: tuple[tuple[float, float], tuple[float, float], float], ratio: float,
                ) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Grow a rotated rectangle by ``area * ratio / perimeter`` on every side (DBNet's unclip for a box)."""
    (cx, cy), (w, h), a = rect
    d = w * h * ratio / max(2 * (w + h), 1e-6)
    return (cx, cy), (w + 2 * d, h + 2 * d), a


def reading_quad(points: np.ndarray) -> tuple[np.ndarray, bool]:
    """Order a rotated rectangle's corners in reading orientation; vertical when much taller than wide.

    Horizontal text reads along the side closest to the page's x axis; a rectangle at least 1.5 times
    taller than wide along the page's y axis reads top to bottom (quad starting at its top-right corner).
    """
    p = np.asarray(points, dtype=np.float64).reshape(4, 2)
    e1, e2 = p[1] - p[0], p[2] - p[1]
    long_, short = (e1, e2) if np.linalg.norm(e1) >= np.linalg.norm(e2) else (e2, e1)
    if abs(long_[1]) > abs(long_[0]) and np.linalg.norm(long_) >= 1.5 * np.linalg.norm(short):
        down = long_ if long_[1] > 0 else -long_
        return rotated_rect_quad(p, -90.0 + math.degrees(math.atan2(down[0], down[1]))), True
    along = long_ if abs(long_[0]) >= abs(long_[1]) else short
    if along[0] < 0:
        along = -along
    return rotated_rect_quad(p, math.degrees(math.atan2(-along[1], along[0]))), False


def region_score(prob: np.ndarray, contour: np.ndarray) -> float:
    """Mean probability inside a contour (its bounding box, masked)."""
    x, y, w, h = cv2.boundingRect(contour)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [contour.reshape(-1, 2) - np.array([x, y])], 1)
    return float(cv2.mean(prob[y: y + h, x: x + w], mask)[0])


def boxes_from_map(prob: np.ndarray, cfg: DBConfig, scale_xy: tuple[float, float]) -> list[DetectedLine]:
    """Text lines from a probability map, quads scaled by ``scale_xy`` into page pixels."""
    bitmap = (prob > cfg.thresh).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    sx, sy = scale_xy
    for c in contours[: cfg.max_candidates]:
        rect = cv2.minAreaRect(c)
        if min(rect[1]) < cfg.min_size:
            continue
        score = region_score(prob, c)
        if score < cfg.box_thresh:
            continue
        big = unclip_rect(rect, cfg.unclip_ratio)
        if min(big[1]) < cfg.min_size + 2:
            continue
        pts = cv2.boxPoints(big) * np.array([sx, sy], dtype=np.float32)
        quad, vertical = reading_quad(pts)
        out.append(DetectedLine(quad, score, vertical))
    return out


class DBDetector:
    """A DBNet-style ONNX detector (``OCR(detector="db", model=PATH)``).

    Args:
        model: path of the ONNX detection model.
        threads: ONNX Runtime intra-op threads (default: ``CRNN_OCR_THREADS`` or the physical cores).
        config: a :class:`DBConfig`; keyword arguments override its fields.
    """

    name = "db"

    def __init__(self, model: str | Path | None = None, threads: int | None = None,
                 config: DBConfig | None = None, **overrides: Any) -> None:
        import onnxruntime as ort

        from crnn_ocr.engine.session import default_threads

        if model is None:
            raise FileNotFoundError("no detection model is bundled yet: pass model=PATH to an ONNX DB model")
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"detection model not found: {path}")
        known = {f.name for f in fields(DBConfig)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown db detector settings: {sorted(unknown)}")
        self.config = replace(config or DBConfig(), **overrides)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.spec = InputSpec.from_props(dict(self.session.get_modelmeta().custom_metadata_map))
        self.input_name = self.session.get_inputs()[0].name

    def probability_map(self, page: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """The model's text probability map and the map-to-page scale ``(sx, sy)``."""
        h, w = page.shape[:2]
        size = input_size(h, w, self.config)
        out = self.session.run(None, {self.input_name: preprocess(page, size, self.spec)})[0]
        prob = np.asarray(out, dtype=np.float32).reshape(out.shape[-2], out.shape[-1])
        return prob, (w / prob.shape[1], h / prob.shape[0])

    def __call__(self, image: np.ndarray) -> list[DetectedLine]:
        """Text lines of a gray or BGR uint8 page, quads in page pixels."""
        prob, scale = self.probability_map(np.asarray(image))
        return boxes_from_map(prob, self.config, scale)
