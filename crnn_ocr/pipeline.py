"""Whole-image OCR: find text lines (detector), recognise each (recogniser), return them in reading order.

Until a detector is chosen, ``detector="none"`` treats the whole image as one line, boxed by the image.
"""

from __future__ import annotations

from crnn_ocr.engine.recognizer import Recognizer
from crnn_ocr.preprocess import ImageInput, load_gray
from crnn_ocr.results import LineResult, Quad


def full_box(width: int, height: int) -> Quad:
    """The quadrilateral of a whole image, clockwise from the top-left corner."""
    return ((0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height)))


class OCR:
    """Detector + recogniser over whole images.

    Args:
        detector: ``"none"`` (the image is one line).
        recognizer: a :class:`Recognizer` (default: the bundled model).

    >>> ocr = OCR(detector="none")         # doctest: +SKIP
    >>> [line.text for line in ocr("receipt.png")]  # doctest: +SKIP
    """

    def __init__(self, detector: str = "none", recognizer: Recognizer | None = None) -> None:
        if detector != "none":
            raise ValueError(f"unknown detector {detector!r}; available: none")
        self.detector = detector
        self.recognizer = recognizer or Recognizer()

    def __call__(self, image: ImageInput) -> list[LineResult]:
        """Recognise the lines of one image; boxes are in the image's pixels."""
        gray = load_gray(image)
        h, w = gray.shape
        (res,) = self.recognizer([gray])
        return [res.with_box(full_box(w, h))] if res.text else []
