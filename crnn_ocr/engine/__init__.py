"""The torch-free inference engine: ONNX Runtime sessions and the :class:`Recognizer`."""

from crnn_ocr.engine.recognizer import Recognizer, bundled_model_path

__all__ = ["Recognizer", "bundled_model_path"]
