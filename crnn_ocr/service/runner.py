"""The model side of the service: decode in a pool, prepare lines, recognise them in shared batches."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from crnn_ocr.engine.recognizer import MAX_LINE_WIDTH, Recognizer
from crnn_ocr.pipeline import OCR, full_box
from crnn_ocr.preprocess import PreprocessConfig, prepare_line
from crnn_ocr.results import LineResult
from crnn_ocr.service.batcher import MicroBatcher
from crnn_ocr.service.schemas import OCROptions
from crnn_ocr.service.uploads import DecodedImage, decode_image


class OcrRunner:
    """One loaded model shared by all requests.

    Pages without a detector (or with ``det=none``) are one line each: their lines go through the
    :class:`MicroBatcher`, so concurrent uploads share recogniser batches. With a detector, lines are
    found in the decode pool, then read by ``ocr.read_lines`` (one recogniser call for the page's lines)
    under the same inference slot limit as the batches.

    Args:
        ocr: an :class:`OCR` or a bare :class:`Recognizer` (then the whole image is one line).
        workers: recogniser batches (or detector pages) running at once.
        batch_wait_s, max_batch_lines: see :class:`MicroBatcher`.
    """

    def __init__(self, ocr: OCR | Recognizer, workers: int = 1, batch_wait_s: float = 0.005,
                 max_batch_lines: int = 32) -> None:
        self.ocr = OCR(detector="none", recognizer=ocr) if isinstance(ocr, Recognizer) else ocr
        self.recognizer: Recognizer = self.ocr.recognizer
        self.detector = self.ocr.detector_name
        self.workers = workers
        self.batch_wait_s = batch_wait_s
        self.max_batch_lines = max_batch_lines
        self.infer_pool: ThreadPoolExecutor | None = None
        self.decode_pool: ThreadPoolExecutor | None = None
        self.batcher: MicroBatcher | None = None

    @property
    def model_name(self) -> str:
        """The recogniser's model name (``/health``)."""
        return self.recognizer.name

    def start(self, on_batch: Any = None) -> None:
        """Create the pools and start the batcher (inside the running event loop)."""
        self.infer_pool = ThreadPoolExecutor(self.workers, thread_name_prefix="crnn-ocr-infer")
        self.decode_pool = ThreadPoolExecutor(max(2, self.workers), thread_name_prefix="crnn-ocr-decode")
        self.batcher = MicroBatcher(self.recognizer.recognize_prepared, self.infer_pool, slots=self.workers,
                                    max_wait_s=self.batch_wait_s, max_lines=self.max_batch_lines,
                                    on_batch=on_batch)
        self.batcher.start()

    async def stop(self) -> None:
        """Finish queued work, then release the threads."""
        if self.batcher is not None:
            await self.batcher.stop()
        for pool in (self.infer_pool, self.decode_pool):
            if pool is not None:
                pool.shutdown(wait=True)

    def warm_up(self) -> None:
        """One small forward pass, so the first real request does not pay for ORT's lazy initialisation."""
        line = np.full((32, 160), 255, dtype=np.uint8)
        line[10:22, 20:140:12] = 0
        self.recognizer([line])

    def config_for(self, steps: tuple[str, ...] | None) -> PreprocessConfig:
        """The model's preprocessing, with the optional steps replaced when a request names them.

        Lines are prepared as :meth:`Recognizer.__call__` prepares them: up to ``MAX_LINE_WIDTH`` wide, so
        the recogniser reads long lines in windows instead of squeezing them.
        """
        cfg = self.recognizer.config
        cfg = dataclasses.replace(cfg, max_width=max(cfg.max_width, MAX_LINE_WIDTH))
        if steps is None:
            return cfg
        return cfg.only_steps(steps)

    def _decode_and_prepare(self, data: bytes, max_pixels: int, options: OCROptions) -> tuple[DecodedImage, Any]:
        """Everything a request needs before recognition, in one pool task: decode, then detect or prepare."""
        decoded = decode_image(data, max_pixels)
        if self.uses_detector(options):
            return decoded, self.ocr.detect(decoded.gray)
        return decoded, prepare_line(decoded.gray, self.config_for(options.preprocess))

    def uses_detector(self, options: OCROptions) -> bool:
        """Whether this request's page goes through the detector."""
        return options.det == "auto" and self.detector != "none"

    async def read(self, loop: Any, data: bytes, max_pixels: int,
                   options: OCROptions) -> tuple[DecodedImage, list[LineResult]]:
        """Decode an upload and read its lines in reading order (empty lines dropped).

        Raises :class:`~crnn_ocr.service.errors.ApiError` for an upload that is not a usable image.
        """
        assert self.batcher is not None and self.decode_pool is not None, "start() first"
        decoded, prepared = await loop.run_in_executor(self.decode_pool, self._decode_and_prepare, data,
                                                       max_pixels, options)
        if self.uses_detector(options):
            # detection ran beside other requests' recognition; reading the lines takes an inference slot
            return decoded, await self.batcher.run_exclusive(self.ocr.read_lines, decoded.gray, prepared,
                                                             options.alphabet, options.lexicon)
        h, w = decoded.gray.shape
        (res,) = await self.batcher.submit([prepared], [float(w)], options.alphabet, options.lexicon)
        return decoded, [res.with_box(full_box(w, h))] if res.text else []
