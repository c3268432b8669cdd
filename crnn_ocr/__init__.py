"""crnn-ocr: a small, fast CRNN recogniser for mixed Chinese/English printed text.

>>> from crnn_ocr import Recognizer, OCR       # doctest: +SKIP
>>> Recognizer()(["line.png"])[0].text          # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["OCR", "Recognizer", "__version__"]

if TYPE_CHECKING:
    from crnn_ocr.engine.recognizer import Recognizer
    from crnn_ocr.pipeline import OCR


def __getattr__(name: str) -> Any:
    """Import the public classes lazily, so ``import crnn_ocr`` stays cheap (no onnxruntime, no cv2)."""
    if name == "Recognizer":
        from crnn_ocr.engine.recognizer import Recognizer

        return Recognizer
    if name == "OCR":
        from crnn_ocr.pipeline import OCR

        return OCR
    raise AttributeError(f"module 'crnn_ocr' has no attribute {name!r}")
