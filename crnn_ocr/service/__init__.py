"""The web service: REST API, web UI, metrics (``crnn-ocr serve``).

>>> from crnn_ocr.service import create_app, Settings   # doctest: +SKIP
"""

from __future__ import annotations

from crnn_ocr.service.app import create_app
from crnn_ocr.service.settings import Settings

__all__ = ["Settings", "create_app"]
