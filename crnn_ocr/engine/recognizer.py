"""The :class:`Recognizer`: line images in, text with confidences and character positions out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from crnn_ocr.ctc import Decoded, greedy_decode_batch
from crnn_ocr.engine.session import Backend, OrtBackend
from crnn_ocr.preprocess import ImageInput, PreprocessConfig, pad_batch, prepare_line, width_buckets
from crnn_ocr.results import CharResult, LineResult

BUNDLED_MODEL = "crnn_lite.int8.onnx"
MAX_BATCH_COLUMNS = 32 * 1024
"""Cap on ``lines x padded width`` per batch, so a batch of very long lines stays small in memory."""


def bundled_model_path(verify: bool = True) -> Path:
    """Path of the model shipped in the package, checked against its recorded sha256."""
    base = resources.files("crnn_ocr").joinpath("assets/models")
    path = Path(str(base.joinpath(BUNDLED_MODEL)))
    if not path.is_file():
        raise FileNotFoundError(f"the bundled model {BUNDLED_MODEL} is missing from the package")
    sums = Path(str(base.joinpath(BUNDLED_MODEL + ".sha256")))
    if verify and sums.is_file():
        want = sums.read_text().split()[0]
        got = hashlib.sha256(path.read_bytes()).hexdigest()
        if got != want:
            raise ValueError(f"bundled model {path.name} is corrupt: sha256 {got[:12]}... != {want[:12]}...")
    return path


class Recognizer:
    """Recognise single text lines.

    Args:
        model: an exported ``.onnx`` file, a :class:`Backend` (e.g. a PyTorch checkpoint wrapper used by
            ``eval``), or ``None`` for the bundled model.
        threads: ONNX Runtime intra-op threads (default: ``CRNN_OCR_THREADS`` or the physical cores).
        batch_size: most lines per forward pass; lines are grouped by width to keep padding small.
        preprocess: override of the model's optional enhancement steps (height and normalisation always
            come from the model).

    >>> rec = Recognizer()                                 # doctest: +SKIP
    >>> [r.text for r in rec(["line.png", image_array])]   # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Path | Backend | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        preprocess: PreprocessConfig | None = None,
    ) -> None:
        if model is None:
            model = bundled_model_path()
        self.backend: Backend = OrtBackend(model, threads) if isinstance(model, (str, Path)) else model
        self.meta = self.backend.meta
        self.charset = self.meta.charset
        self.config = self._merge(self.meta.preprocess, preprocess)
        self.batch_size = max(1, int(batch_size))

    @staticmethod
    def _merge(model_cfg: PreprocessConfig, override: PreprocessConfig | None) -> PreprocessConfig:
        if override is None:
            return model_cfg
        steps = [s for s in ("clahe", "denoise", "adaptive_threshold") if getattr(override, s)]
        base = PreprocessConfig(**{**model_cfg.__dict__, "clahe": False, "denoise": False,
                                   "adaptive_threshold": False})
        return base.with_steps(steps)

    @property
    def name(self) -> str:
        """The model's name, as reported by the service's health check."""
        return self.meta.name

    def __call__(self, images: ImageInput | Sequence[ImageInput]) -> list[LineResult]:
        """Recognise one image or a list of them; results come back in input order."""
        if not isinstance(images, (list, tuple)):
            images = [images]
        lines = [prepare_line(img, self.config) for img in images]
        return self.recognize_prepared(lines, [self._source_width(img, ln) for img, ln in zip(images, lines,
                                                                                                strict=True)])

    @staticmethod
    def _source_width(img: ImageInput, line: np.ndarray) -> float:
        shape = getattr(img, "shape", None)
        if shape is not None and len(shape) >= 2:
            return float(shape[1])
        size = getattr(img, "size", None)
        if isinstance(size, tuple) and len(size) == 2:
            return float(size[0])
        return float(line.shape[1])

    def recognize_prepared(self, lines: Sequence[np.ndarray], source_widths: Sequence[float] | None = None,
                           ) -> list[LineResult]:
        """Recognise already preprocessed lines (``prepare_line`` output), batched by width."""
        results: list[LineResult | None] = [None] * len(lines)
        widths = [ln.shape[1] for ln in lines]
        for idx in width_buckets(widths, self.batch_size, MAX_BATCH_COLUMNS):
            batch, true_w = pad_batch([lines[i] for i in idx], self.config)
            probs = self.backend.run(batch)
            stride = batch.shape[3] / probs.shape[1]
            lengths = np.ceil(true_w / stride).astype(np.int64)
            for i, dec, w in zip(idx, greedy_decode_batch(probs, lengths), true_w, strict=True):
                src_w = float(source_widths[i]) if source_widths is not None else float(w)
                results[i] = self._to_result(dec, stride * src_w / w, src_w)
        return [r for r in results if r is not None]

    def _to_result(self, dec: Decoded, px_per_frame: float, width: float) -> LineResult:
        chars = tuple(
            CharResult(self.charset.decode([c]), float(p), min(width, t0 * px_per_frame),
                       min(width, (t1 + 1) * px_per_frame))
            for c, p, (t0, t1) in zip(dec.labels, dec.char_probs, dec.spans, strict=True)
        )
        text = "".join(c.char for c in chars)
        stripped = text.strip()
        if stripped != text:  # a leading/trailing space predicted at the padding edge carries no information
            lead = len(text) - len(text.lstrip())
            chars = chars[lead: lead + len(stripped)]
        return LineResult(stripped, float(dec.confidence), chars)
