"""Line crops cut from synthetic pages: recogniser training lines that look like what the page pipeline reads.

A real receipt line reaches the recogniser as a crop of a scanned or photographed page: resampled by the
page's perspective warp, blurred, noised and JPEG-compressed at page scale, cut by a detector box that is
a little loose or a little tight, with bits of the rows above and below and of the table rules. Lines
rendered one at a time (:mod:`crnn_ocr.synth.stream`) imitate each of these separately; a crop of a
synthetic page (:mod:`crnn_ocr.synth.page`) has them together, as the page made them.

Sample ``n`` is a pure function of ``(seed, n)``: it comes from page ``n // group`` (a few consecutive
sample numbers share a page, which is rendered once per process and kept in a small cache), and its line
and box padding come from ``n``'s own generator.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Self

import cv2
import numpy as np

from crnn_ocr.charset import Charset
from crnn_ocr.detect.geometry import crop_quad
from crnn_ocr.synth.page import PageConfig, PageStream

PAD_X = (-0.05, 0.6)
"""Horizontal padding of a crop per side, in line heights (slightly tight to loose, as detectors cut)."""
PAD_Y = (-0.05, 0.35)
"""Vertical padding of a crop per side, in line heights."""
SPARE_PAGES = 1_000_003
"""Offset to the page tried next when a page has no usable line (far from the pages in use)."""


def padded_quad(quad: np.ndarray, pad_x: tuple[float, float], pad_y: tuple[float, float]) -> np.ndarray:
    """``quad`` (clockwise from top-left) grown along its own axes by paddings given in line heights.

    ``pad_x`` is ``(left, right)`` and ``pad_y`` ``(top, bottom)``; negative values cut into the ink.
    """
    q = np.asarray(quad, np.float64).reshape(4, 2)
    u = q[1] - q[0]
    v = q[3] - q[0]
    height = max(float(np.linalg.norm(v)), 1.0)
    u = u / max(float(np.linalg.norm(u)), 1e-6)
    v = v / height
    (left, right), (top, bottom) = (p * height for p in pad_x), (p * height for p in pad_y)
    out = q + np.array([-left * u - top * v, right * u - top * v, right * u + bottom * v, -left * u + bottom * v])
    return out.astype(np.float32)


class PageLineStream:
    """``stream[n] -> (gray uint8 line crop, text)`` for any ``n >= 0``, from synthetic pages.

    Args:
        cfg: page settings (``PageConfig.load(None)``: the bundled ``pages.yaml``).
        seed: with ``n``, fixes every random choice of sample ``n``.
        charset: labels only use its symbols (default: the bundled charset).
        group: consecutive sample numbers drawn from one page.
        max_chars: longest label; a page's longer lines are not drawn (curriculum stages lower it).

    >>> stream = PageLineStream(seed=1234)  # doctest: +SKIP
    >>> crop, text = stream[0]  # doctest: +SKIP
    """

    cache_pages = 4

    def __init__(self, cfg: PageConfig | None = None, seed: int = 0, charset: Charset | None = None,
                 group: int = 32, max_chars: int = 10_000) -> None:
        if group < 1:
            raise ValueError(f"group must be >= 1, got {group}")
        self.pages = PageStream(cfg, seed=seed, charset=charset)
        self.seed = int(seed)
        self.group = int(group)
        self.max_chars = int(max_chars)
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray, list[str]]] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()  # pages are re-rendered where the stream is used
        return state

    def with_overrides(self, **kw: Any) -> Self:
        """A copy with ``max_chars`` and/or ``degrade`` (the pages' effect strength) replaced."""
        unknown = set(kw) - {"max_chars", "degrade"}
        if unknown:
            raise ValueError(f"page lines take max_chars and degrade overrides, not {sorted(unknown)}")
        other = copy.copy(self)
        other._cache = OrderedDict()
        if "max_chars" in kw:
            other.max_chars = int(kw["max_chars"])
        if "degrade" in kw:
            other.pages = copy.copy(self.pages)
            other.pages.cfg = self.pages.cfg.with_overrides(degrade=float(kw["degrade"]))
        return other

    def page(self, p: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Page ``p`` as gray image, quads and texts (cached: a page serves ``group`` samples)."""
        hit = self._cache.get(p)
        if hit is not None:
            self._cache.move_to_end(p)
            return hit
        img, quads, texts = self.pages[p]
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
        entry = (gray, quads, texts)
        self._cache[p] = entry
        while len(self._cache) > self.cache_pages:
            self._cache.popitem(last=False)
        return entry

    def __getitem__(self, n: int) -> tuple[np.ndarray, str]:
        if n < 0:
            raise IndexError(f"page line index must be >= 0, got {n}")
        rng = np.random.default_rng((self.seed, 31337, int(n)))
        for attempt in range(8):  # a page with no usable line (rare: all too long) gives way to another
            gray, quads, texts = self.page(n // self.group + attempt * SPARE_PAGES)
            usable = [k for k, t in enumerate(texts) if t.strip() and len(t) <= self.max_chars]
            if usable:
                break
        else:
            raise RuntimeError("eight synthetic pages in a row had no line to crop")
        k = usable[int(rng.integers(len(usable)))]
        quad = padded_quad(quads[k], (rng.uniform(*PAD_X), rng.uniform(*PAD_X)),
                           (rng.uniform(*PAD_Y), rng.uniform(*PAD_Y)))
        return crop_quad(gray, quad), texts[k]
