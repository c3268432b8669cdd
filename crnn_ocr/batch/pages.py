"""One page in, one JSON-ready record out: the unit of work shared by the local and the Ray engines."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crnn_ocr.results import MIN_CONFIDENCE

if TYPE_CHECKING:
    from crnn_ocr.pipeline import OCR

DEFAULT_DPI = 200
OBJECT_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
"""Object addresses in error messages (``<_io.BytesIO object at 0x7f...>``) differ from process to process."""


def read_page(path: str | Path, page: int, dpi: int = DEFAULT_DPI) -> np.ndarray:
    """Gray pixels of page ``page`` (from 1) of a PDF, multi-page TIFF or (page 1 only) image.

    Only the asked page is rendered or decoded, so a worker holds one page in memory, whatever the file.
    """
    from crnn_ocr.preprocess import load_gray

    p = Path(path)
    suffix = p.suffix.lower()
    if page < 1:
        raise ValueError(f"pages count from 1, got {page}")
    if suffix == ".pdf":
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument(str(p))
        try:
            if page > len(pdf):
                raise ValueError(f"{p.name} has {len(pdf)} pages, not {page}")
            bitmap = pdf[page - 1].render(scale=dpi / 72.0, grayscale=True)
            return load_gray(np.asarray(bitmap.to_numpy()))
        finally:
            pdf.close()
    if suffix in (".tif", ".tiff") and page > 1:
        from PIL import Image

        with Image.open(p) as img:
            img.seek(page - 1)  # EOFError past the last frame
            return load_gray(img.copy())
    if page != 1:
        raise ValueError(f"{p.name} is a single image, it has no page {page}")
    return load_gray(p)


def error_record(source: str, page: int | None, exc: BaseException | str) -> dict[str, Any]:
    """The record of a page (or, with ``page=None``, a whole file) that could not be read."""
    message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return {"source": source, "page": page, "error": OBJECT_ADDRESS.sub("", message)}


@dataclass(frozen=True)
class PageJob:
    """Everything a worker needs to rebuild the page pipeline: picklable, sent once per worker or actor.

    Args:
        model: recogniser ``.onnx`` file (None: the bundled model).
        detector: ``classical``, ``db`` or ``none`` (each page is one line).
        detector_options: settings of the detector (e.g. ``{"model": "db.onnx"}`` for ``db``).
        threads: ONNX Runtime and OpenCV threads inside one worker.
        dpi: resolution PDF pages are rendered at.
        alphabet: read only these characters (see :class:`~crnn_ocr.engine.Recognizer`); None: all.
        lexicon: correct English words misread by one letter from the bundled lexicon (the default).
        min_confidence: drop lines found on a page that are read less confidently (see :class:`OCR`).
    """

    model: str | None = None
    detector: str = "classical"
    detector_options: dict[str, Any] = field(default_factory=dict)
    threads: int = 1
    dpi: int = DEFAULT_DPI
    alphabet: str | None = None
    lexicon: bool = True
    min_confidence: float = MIN_CONFIDENCE

    def build(self) -> OCR:
        """The page pipeline, with this worker's thread limits applied (OpenCV threads are per process)."""
        import cv2

        from crnn_ocr.engine import Recognizer
        from crnn_ocr.pipeline import OCR

        cv2.setNumThreads(self.threads)
        options = dict(self.detector_options)
        if self.detector == "db":
            options.setdefault("threads", self.threads)
        rec = Recognizer(self.model, threads=self.threads, alphabet=self.alphabet, lexicon=self.lexicon)
        return OCR(detector=self.detector, recognizer=rec, min_confidence=self.min_confidence, **options)


def ocr_page(ocr: OCR, source: str, page: int, dpi: int = DEFAULT_DPI) -> dict[str, Any]:
    """The record of one page; any failure becomes an error record, so one bad file never stops a run.

    Everything but ``timings`` depends only on the page and the model, not on workers or order. ``cpu_ms``
    is the worker process's CPU time for the page (all its threads): ``1000 / cpu_ms`` is the pages/s one
    core gives, whatever else runs on the machine.
    """
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        gray = read_page(source, page, dpi)
        t1 = time.perf_counter()
        if ocr.detector == "none":
            lines, t2 = ocr(gray), t1
        else:
            found = ocr.detect(gray)
            t2 = time.perf_counter()
            lines = ocr.read_lines(gray, found)
        t3, c3 = time.perf_counter(), time.process_time()
    except Exception as e:  # any failure of one file is recorded, the run goes on
        return error_record(source, page, e)
    height, width = gray.shape[:2]
    return {
        "source": source,
        "page": page,
        "width": int(width),
        "height": int(height),
        "lines": [ln.to_dict(chars=False) for ln in lines],
        "timings": {"load_ms": ms(t1 - t0), "detect_ms": ms(t2 - t1), "recognize_ms": ms(t3 - t2),
                    "cpu_ms": ms(c3 - c0)},
    }


def ms(seconds: float) -> float:
    """Seconds as milliseconds, rounded to 0.1 ms."""
    return round(seconds * 1000.0, 1)


def without_timings(record: dict[str, Any]) -> dict[str, Any]:
    """A record minus the fields that vary from run to run (for comparing runs)."""
    return {k: v for k, v in record.items() if k != "timings"}
