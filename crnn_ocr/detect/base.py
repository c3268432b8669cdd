"""The detector interface and the registry of detectors by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class DetectedLine:
    """One text line found on a page.

    Args:
        quad: ``(4, 2)`` corners in page pixels, in reading orientation (see :mod:`crnn_ocr.detect.geometry`).
        score: the detector's confidence in [0, 1].
        vertical: the line reads top to bottom (its quad starts at the page's top-right corner).
    """

    quad: np.ndarray
    score: float = 1.0
    vertical: bool = False


@runtime_checkable
class Detector(Protocol):
    """Anything that turns a page (gray ``(H, W)`` or BGR ``(H, W, 3)`` uint8) into text lines."""

    name: str

    def __call__(self, image: np.ndarray) -> list[DetectedLine]:
        """Find the text lines of one page; order is not significant (the pipeline orders them)."""
        ...


DetectorFactory = Callable[..., Detector]


def _classical(**kw: Any) -> Detector:
    from crnn_ocr.detect.classical import ClassicalDetector

    return ClassicalDetector(**kw)


def _db(**kw: Any) -> Detector:
    from crnn_ocr.detect.db import DBDetector

    return DBDetector(**kw)


DETECTORS: dict[str, DetectorFactory] = {"classical": _classical, "db": _db}
"""Name -> factory; ``"none"`` (the whole image is one line) is handled by the pipeline."""


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector` and ``OCR(detector=...)``."""
    return sorted(DETECTORS)


def create_detector(name: str, **kwargs: Any) -> Detector:
    """Build a detector by name.

    >>> det = create_detector("classical")
    >>> det.name
    'classical'
    """
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; available: {', '.join(list_detectors())}") from None
    return factory(**kwargs)
