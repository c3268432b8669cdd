"""Image decoding and line preprocessing, shared by synthesis, training, calibration and inference.

One :class:`PreprocessConfig` travels with every checkpoint and exported model, so a model is always fed
exactly what it was trained on. The chain is: decode (path / bytes / ndarray / PIL, any bit depth or
channel count) -> gray uint8 -> optional enhancement steps -> polarity (dark text on light background) ->
resize to ``height`` keeping the aspect ratio -> normalise -> (at inference, background margins at the
clean ends of the line, the model's ``edge_margin``) -> pad on the right to a width bucket with the
background value. Text is never cut off: a line wider than ``max_width`` is squeezed horizontally, not
truncated.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ImageInput = Any
"""A path (str/Path), encoded bytes, a NumPy array (gray, BGR or BGRA; uint8/uint16/float) or a PIL image."""


class ImageDecodeError(ValueError):
    """The input is not an image that can be decoded (corrupt, truncated, empty or of an unknown type)."""


@dataclass(frozen=True)
class PreprocessConfig:
    """Every setting that turns a line image into model input; stored in checkpoints and ONNX metadata.

    Args:
        height: input height of the model in pixels.
        width_multiple: padded widths are rounded up to a multiple of this (the width bucket).
        min_width: narrowest model input, so a one-character line still gives the CTC enough frames.
        max_width: wider lines are squeezed horizontally to this width, never cut.
        mean, std: normalisation ``(x / 255 - mean) / std``.
        auto_invert: turn light-on-dark lines into dark-on-light ones (one polarity for the model).
        clahe: contrast-limited histogram equalisation (for low contrast photos).
        denoise: fastNlMeans denoising (for noisy scans; slow).
        adaptive_threshold: binarise with a local threshold (for shadows and uneven light).
        edge_margin: background added at each clean side of a line before it is read, in line heights
            (:func:`paper_margins`; 0: none). An inference setting of a model, written at export: training
            lines are never margined (their crops have margins of their own).
    """

    height: int = 32
    width_multiple: int = 8
    min_width: int = 32
    max_width: int = 4096
    mean: float = 0.5
    std: float = 0.5
    auto_invert: bool = True
    clahe: bool = False
    denoise: bool = False
    adaptive_threshold: bool = False
    edge_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.edge_margin < 0.0:
            raise ValueError(f"edge_margin must not be negative, got {self.edge_margin}")

    def to_json(self) -> str:
        """Compact JSON for metadata."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessConfig:
        """Build from a dict, rejecting unknown keys (a typo must not silently fall back to a default)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown preprocessing settings: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> PreprocessConfig:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def with_steps(self, steps: Sequence[str]) -> PreprocessConfig:
        """A copy with the named optional steps (``clahe``, ``denoise``, ``adaptive_threshold``) on."""
        allowed = {"clahe", "denoise", "adaptive_threshold"}
        bad = set(steps) - allowed
        if bad:
            raise ValueError(f"unknown preprocessing step(s) {sorted(bad)}; choose from {sorted(allowed)}")
        d = asdict(self)
        d.update({s: True for s in steps})
        return PreprocessConfig(**d)

    def only_steps(self, steps: Sequence[str]) -> PreprocessConfig:
        """A copy with exactly the named optional steps on (the others off); model settings kept."""
        return PreprocessConfig(**{**asdict(self), "clahe": False, "denoise": False,
                                   "adaptive_threshold": False}).with_steps(steps)


# ----------------------------------------------------------------------------------------------- decoding


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        a = np.nan_to_num(arr.astype(np.float32))
        scale = 255.0 if a.size and float(a.max()) <= 1.0 else 1.0
        return np.clip(a * scale, 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        return np.clip(arr, 0, 255).astype(np.uint8)
    raise ImageDecodeError(f"unsupported array dtype {arr.dtype}")


def _composite_white(bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None] / 255.0
    return (bgr.astype(np.float32) * a + 255.0 * (1.0 - a)).astype(np.uint8)


def array_to_gray(arr: np.ndarray) -> np.ndarray:
    """Gray uint8 from a gray, BGR or BGRA array of any common dtype (alpha composited on white)."""
    if not isinstance(arr, np.ndarray):
        raise ImageDecodeError(f"expected a NumPy array, got {type(arr).__name__}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageDecodeError(f"not an image array: shape {arr.shape}")
    arr = _to_uint8(arr)
    if arr.ndim == 2:
        return np.ascontiguousarray(arr)
    if arr.shape[2] == 4:
        return cv2.cvtColor(_composite_white(arr[..., :3], arr[..., 3]), cv2.COLOR_BGR2GRAY)
    if arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2GRAY)
    if arr.shape[2] == 2:
        return _composite_white(np.repeat(arr[..., :1], 3, axis=2), arr[..., 1])[..., 0]
    raise ImageDecodeError(f"unsupported channel count {arr.shape[2]}")


def _pil_to_gray(img: Any) -> np.ndarray:
    from PIL import ImageOps

    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.int64)
        top = 65535 if arr.size and arr.max() > 255 else 255
        return np.clip(arr * 255 // top, 0, 255).astype(np.uint8)
    if mode == "F":
        return _to_uint8(np.asarray(img, dtype=np.float32))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        return array_to_gray(rgba[..., [2, 1, 0, 3]])
    return np.asarray(img.convert("L"), dtype=np.uint8).copy()


def _decode_bytes(data: bytes) -> np.ndarray:
    if not data:
        raise ImageDecodeError("empty image data")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return _pil_to_gray(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        buf = np.frombuffer(data, dtype=np.uint8)
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if arr is None:
            # Pillow names its file object ("<_io.BytesIO object at 0x...>") where it finds no format.
            why = "not an image in a known format" if isinstance(e, UnidentifiedImageError) else str(e)
            raise ImageDecodeError(f"cannot decode image data ({len(data)} bytes): {why}") from None
        return array_to_gray(arr)


def load_gray(src: ImageInput) -> np.ndarray:
    """Decode any supported input to a gray uint8 array; raise :class:`ImageDecodeError` on bad input."""
    if isinstance(src, np.ndarray):
        return array_to_gray(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(src))
    if isinstance(src, (str, Path)):
        p = Path(src)
        if not p.is_file():
            raise ImageDecodeError(f"no such image file: {p}")
        return _decode_bytes(p.read_bytes())
    from PIL import Image

    if isinstance(src, Image.Image):
        if src.width == 0 or src.height == 0:
            raise ImageDecodeError("empty PIL image")
        return _pil_to_gray(src)
    raise ImageDecodeError(f"unsupported image input type {type(src).__name__}")


# ------------------------------------------------------------------------------------------ line pipeline


def enhance(gray: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """The optional enhancement steps of ``cfg``, in a fixed order (denoise, contrast, threshold)."""
    if cfg.denoise:
        gray = cv2.fastNlMeansDenoising(gray, None, h=10, templateWindowSize=7, searchWindowSize=21)
    if cfg.clahe:
        gray = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 8)).apply(gray)
    if cfg.adaptive_threshold and min(gray.shape) >= 3:
        block = max(3, (min(gray.shape) // 2) | 1)
        gray = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, 10)
    return gray


def is_light_on_dark(gray: np.ndarray) -> bool:
    """True when the ink is lighter than the background.

    The background is the majority of a line (its median); the ink is the minority on one side of it, so
    whichever tail reaches further from the median is the ink.
    """
    lo, med, hi = np.percentile(gray, (3, 50, 97))
    return float(hi - med) > float(med - lo)


def resized_width(h: int, w: int, cfg: PreprocessConfig) -> int:
    """Width after resizing to ``cfg.height`` (aspect kept, clamped to ``[min_width?, max_width]``)."""
    return int(min(cfg.max_width, max(1, round(w * cfg.height / max(h, 1)))))


def resize_line(gray: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Resize a gray line to the model height, keeping the aspect ratio (squeezing past ``max_width``)."""
    h, w = gray.shape
    nw = resized_width(h, w, cfg)
    interp = cv2.INTER_AREA if h > cfg.height else cv2.INTER_LINEAR
    return cv2.resize(gray, (nw, cfg.height), interpolation=interp)


def prepare_line(src: ImageInput, cfg: PreprocessConfig) -> np.ndarray:
    """Any input -> float32 ``(height, w)`` normalised line, unpadded; ``w`` is the true resized width."""
    gray = load_gray(src)
    gray = enhance(gray, cfg)
    if cfg.auto_invert and is_light_on_dark(gray):
        gray = 255 - gray
    line = resize_line(gray, cfg)
    return normalize(line, cfg)


def normalize(gray: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """uint8 -> float32 with the model's mean/std."""
    return ((gray.astype(np.float32) / 255.0) - cfg.mean) / cfg.std


def padded_width(w: int, cfg: PreprocessConfig) -> int:
    """The width bucket of a line of width ``w``."""
    m = cfg.width_multiple
    return max(cfg.min_width, -(-w // m) * m)


def pad_batch(lines: Sequence[np.ndarray], cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """Stack normalised lines into ``(N, 1, H, W)`` padded on the right with each line's background.

    Returns the batch and the true widths. The pad value is the line's own background (its brightest
    decile after normalisation), so padding looks like more paper rather than a black bar.
    """
    if not lines:
        raise ValueError("empty batch")
    widths = np.array([ln.shape[1] for ln in lines], dtype=np.int64)
    width = padded_width(int(widths.max()), cfg)
    batch = np.empty((len(lines), 1, cfg.height, width), dtype=np.float32)
    for i, ln in enumerate(lines):
        w = ln.shape[1]
        batch[i, 0, :, :w] = ln
        batch[i, 0, :, w:] = background_value(ln)
    return batch, widths


EDGE_MARGIN = 0.4
"""The bundled model's ``edge_margin``: crops cut close to the text (detector or labelled boxes, a user's
tight crop) read worse than the padded crops most of its training lines are. With it, 209 real receipt and
screenshot lines went from 85.6% to 88.0% correct and 129 Chinese ones from 92.2% to 93.8%, and 1,000
synthetic lines of the training mix from 67.9% to 67.8%. A side where ink reaches the edge gets none:
paper beside a cut-off rule, border or neighbouring glyph makes it a lone mark, read as ``[`` or ``「``.
"""


def paper_margins(line: np.ndarray, fraction: float = EDGE_MARGIN) -> tuple[np.ndarray, int]:
    """A normalised dark-on-light line with background added at its clean sides, and the columns added left.

    ``fraction`` of the line's height is added on each side whose outer columns (a tenth of the height)
    hold no ink, ink being darker than halfway from the background to the darkest pixels.
    """
    h, w = line.shape
    m = int(round(fraction * h))
    if m <= 0 or w == 0:
        return line, 0
    lo, bg = (float(v) for v in np.percentile(line, (2, 90)))
    ink = line < bg - 0.5 * (bg - lo)
    strip = max(1, h // 10)
    left = 0 if ink[:, :strip].any() else m
    right = 0 if ink[:, -strip:].any() else m
    if not (left or right):
        return line, 0
    out = np.full((h, w + left + right), bg, dtype=line.dtype)
    out[:, left: left + w] = line
    return out, left


def background_value(line: np.ndarray) -> float:
    """Background level of a dark-on-light normalised line (its 90th percentile)."""
    return float(np.percentile(line, 90)) if line.size else 0.0


def width_buckets(widths: Sequence[int], max_batch: int, max_pixels: int | None = None,
                  max_pad: float | None = None) -> list[list[int]]:
    """Group indices into batches of similar width (sorted), to keep padding small.

    ``max_pixels`` caps ``len(batch) * widest`` so that a batch of very long lines stays small in memory.
    ``max_pad`` caps the padding: a batch's widest line is at most ``1 + max_pad`` times its narrowest
    (plus one 8-px step). Lines padded to several times their width are read worse (the recurrent layers
    run on through the padding), and a page's short title batched with its long lines is just that case.
    Indices refer to ``widths``; callers restore input order themselves.
    """
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        widest = widths[i]
        full = len(cur) >= max_batch or (max_pixels is not None and (len(cur) + 1) * widest > max_pixels)
        full = full or (max_pad is not None and bool(cur) and widest > (1 + max_pad) * widths[cur[0]] + 8)
        if cur and full:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches
