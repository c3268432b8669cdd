"""The online synthetic stream: sample ``i`` is a pure function of ``(seed, i)`` and the config.

Fonts, word lists and the Faker pool are loaded lazily once per process (and shared by copies made with
:meth:`SynthStream.with_overrides`), so a stream is cheap to pickle into DataLoader workers.
"""

from __future__ import annotations

import copy
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, Self

import cv2
import numpy as np

from crnn_ocr.charset import Charset, default_charset, is_hanzi
from crnn_ocr.synth import degrade as dg
from crnn_ocr.synth import render as rd
from crnn_ocr.synth.config import EffectConfig, SynthConfig
from crnn_ocr.synth.corpus import CorpusData, load_corpus, sample_text, src_en_words, src_zh_words
from crnn_ocr.synth.fonts import FontFace, FontLibrary
from crnn_ocr.synth.pack import PACK_ENV, load_pack, resource_settings

EFFECTS = tuple(f.name for f in fields(EffectConfig))
"""Effect names in the order their on/off draws are taken from the sample's rng."""


@dataclass(frozen=True)
class Resources:
    """Per-process read-only data: fonts with coverage and the text corpus."""

    fonts: FontLibrary
    corpus: CorpusData


_CACHE: dict[tuple, Resources] = {}
_LOCK = threading.Lock()


def load_resources(cfg: SynthConfig, charset: Charset) -> Resources:
    """Fonts and corpus for a config and charset, built once per process and reused.

    With ``CRNN_OCR_SYNTH_PACK=<folder>`` they come from a pack (:mod:`crnn_ocr.synth.pack`) instead of the
    installed fonts and corpus packages.
    """
    pack = os.environ.get(PACK_ENV, "")
    key = (*resource_settings(cfg, charset), pack)
    with _LOCK:
        res = _CACHE.get(key)
        if res is None:
            res = load_pack(pack, cfg, charset) if pack else build_resources(cfg, charset)
            _CACHE[key] = res
    return res


def build_resources(cfg: SynthConfig, charset: Charset) -> Resources:
    """Fonts from fontconfig with their coverage, and the corpus (both cached on disk between runs)."""
    t, f = cfg.text, cfg.fonts
    lib = FontLibrary.build(charset, exclude=f.exclude, cjk_weight=f.cjk_weight, weights=f.weights)
    renderable = frozenset(s for s, ok in zip(charset.symbols, lib.covered(), strict=True) if ok)
    missing = lib.missing()
    if missing:
        warnings.warn(f"{len(missing)} charset symbols have no installed font and never appear in synthetic "
                      f"lines: {''.join(missing[:50])}", stacklevel=2)
    return Resources(lib, load_corpus(charset, t, renderable, lib.cache))


class LazyStream:
    """A config-driven stream whose per-process resources (``_res``) load on first use.

    Pickling and copying leave them out, so a stream is cheap to send to DataLoader workers; they come back
    from the per-process cache when next used.
    """

    cfg: Any
    _res: Resources | None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_res"] = None  # rebuilt (or found in the process cache) on first use
        return state

    def with_overrides(self, **kw: Any) -> Self:
        """A copy with config fields replaced, e.g. ``degrade=0`` or ``max_chars=12`` (curriculum stages)."""
        other = copy.copy(self)
        other.cfg = self.cfg.with_overrides(**kw)
        return other


@dataclass(frozen=True)
class Sample:
    """One synthetic line with what produced it (for previews, tests and debugging)."""

    image: np.ndarray
    text: str
    face: FontFace
    size: int
    source: str
    effects: tuple[str, ...]


class SynthStream(LazyStream):
    """Synthetic text lines: ``stream[i] -> (gray uint8 image, normalised text)`` for any ``i >= 0``.

    Args:
        cfg: distribution settings (``SynthConfig.load(None)`` for the bundled defaults).
        charset: labels only use its symbols (default: the bundled charset).
        seed: with ``i``, fixes every random choice of sample ``i``.

    >>> stream = SynthStream(SynthConfig.load(None), seed=1234)  # doctest: +SKIP
    >>> img, text = stream[0]  # doctest: +SKIP
    """

    def __init__(self, cfg: SynthConfig | None = None, charset: Charset | None = None, seed: int = 0) -> None:
        self.cfg = cfg if cfg is not None else SynthConfig.load(None)
        self.charset = charset if charset is not None else default_charset()
        self.seed = int(seed)
        self._res: Resources | None = None

    @property
    def resources(self) -> Resources:
        """Fonts and corpus (loaded on first use)."""
        if self._res is None:
            self._res = load_resources(self.cfg, self.charset)
        return self._res

    def _effect_probs(self) -> np.ndarray:
        """Effect probabilities times the strength (cached for the current config)."""
        cached = self.__dict__.get("_probs")
        if cached is None or cached[0] is not self.cfg:
            cached = (self.cfg, np.array([getattr(self.cfg.effects, n) for n in EFFECTS]) * self.cfg.degrade)
            self.__dict__["_probs"] = cached
        return cached[1]

    def missing_chars(self) -> list[str]:
        """Charset symbols no installed font has: they never appear in labels."""
        return self.resources.fonts.missing()

    def __getitem__(self, i: int) -> tuple[np.ndarray, str]:
        s = self.sample(i)
        return s.image, s.text

    def __iter__(self) -> Iterator[tuple[np.ndarray, str]]:
        i = 0
        while True:
            yield self[i]
            i += 1

    def sample(self, i: int) -> Sample:
        """Sample ``i`` with its metadata."""
        if i < 0:
            raise IndexError(f"synthetic sample index must be >= 0, got {i}")
        rng = np.random.default_rng((self.seed, int(i)))
        res = self.resources
        cfg = self.cfg
        text, source = sample_text(rng, res.corpus, cfg.text, int(i), cfg.min_chars, cfg.max_chars)
        face_idx = res.fonts.pick(text, rng)
        if face_idx is None:  # only with a custom charset: keep what the best face has
            face_idx = int(np.argmax(res.fonts.coverage[:, [res.fonts.col(c) for c in set(text)]].sum(1)))
            text = "".join(c for c in text if res.fonts.has(face_idx, c)).strip() or "0"
        on = dict(zip(EFFECTS, (rng.random(len(EFFECTS)) < self._effect_probs()).tolist(), strict=True))
        image, size = render_line(rng, text, face_idx, res, cfg, on)
        return Sample(image, text, res.fonts.faces[face_idx], size, source, tuple(k for k, v in on.items() if v))


def _font_size(rng: np.random.Generator, cfg: SynthConfig, n_chars: int) -> int:
    """Font size; long lines are usually small text (screenshots, dense documents)."""
    sizes = sorted(cfg.fonts.sizes)
    if n_chars > 25:
        limit = sizes[-1] * 25 / n_chars
        sizes = [s for s in sizes if s <= limit] or sizes[:2]
    return int(sizes[int(rng.integers(len(sizes)))])


def _neighbour_text(rng: np.random.Generator, cd: CorpusData, text: str, lib: FontLibrary, face: int) -> str:
    """A line of the same script as ``text`` for the neighbour fragments, restricted to the face."""
    n = max(4, len(text) + int(rng.integers(-3, 8)))
    src = src_zh_words if any(is_hanzi(c) for c in text) else src_en_words
    return "".join(c for c in src(rng, cd, n) if lib.has(face, c))


def width_scale(rng: np.random.Generator, span: tuple[float, float], n_chars: int) -> float:
    """A log-uniform horizontal stretch; widening is capped so that lines of many characters stay in range."""
    lo, hi = span
    f = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return min(f, max(1.0, 24.0 / max(1, n_chars)))


def stretch_x(text_mask: np.ndarray, deco: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
    """Both masks scaled horizontally by ``f`` (condensed below 1, extended above), height unchanged."""
    h, w = text_mask.shape
    tw = max(1, round(w * f))
    if tw == w:
        return text_mask, deco
    return (cv2.resize(text_mask, (tw, h), interpolation=cv2.INTER_LINEAR),
            cv2.resize(deco, (tw, h), interpolation=cv2.INTER_LINEAR))


def render_line(rng: np.random.Generator, text: str, face_idx: int, res: Resources, cfg: SynthConfig,
                on: dict[str, bool]) -> tuple[np.ndarray, int]:
    """Render and degrade one line; returns the gray uint8 image and the font size used."""
    lib, rc = res.fonts, cfg.render
    size = _font_size(rng, cfg, len(text))
    face = lib.faces[face_idx]
    stroke = 1 if (not face.bold and size >= 22 and rng.random() < cfg.fonts.fake_bold_p) else 0

    glyph = lib.glyph_fn(face_idx, size, stroke)

    tracking = rng.uniform(*rc.char_spacing) * size if rng.random() < rc.char_spacing_p else 0.0
    space = rng.uniform(*rc.word_spacing) if rng.random() < 0.3 else 1.0
    curve = (rng.uniform(0.03, 0.09) * size, rng.uniform(4, 12) * size, rng.uniform(0, 2 * np.pi)) \
        if on["curve"] and len(text) > 3 else (0.0, 1.0, 0.0)
    layout = rd.Layout(tracking, space, stroke, *curve)
    margin = size
    m = rd.render_masks(text, glyph, size, layout, margin, margin)

    gaps = (rng.uniform(0.1, 0.45), rng.uniform(0.1, 0.45))
    if on["neighbour_lines"]:
        which = rng.integers(1, 4)  # 1 above, 2 below, 3 both
        above = _neighbour_text(rng, res.corpus, text, lib, face_idx) if which & 1 else None
        below = _neighbour_text(rng, res.corpus, text, lib, face_idx) if which & 2 else None
        rd.draw_neighbours(m, glyph, (above, below), gaps, rng.uniform(-1, 1))
    if on["underline"]:
        rd.draw_underline(m, rng)
    if rng.random() < rc.tight_p:
        pads = [int(rng.integers(0, max(2, size // 12))) for _ in range(4)]
    else:
        px, py = rc.pad_x, rc.pad_y
        pads = [int(rng.uniform(*px) * size), int(rng.uniform(*py) * size),
                int(rng.uniform(*px) * size), int(rng.uniform(*py) * size)]
    if on["neighbour_lines"]:  # let part of the neighbours show
        pads[1] = max(pads[1], int((gaps[0] + rng.uniform(0.05, 0.25)) * size))
        pads[3] = max(pads[3], int((gaps[1] + rng.uniform(0.05, 0.25)) * size))
    if on["rotation"] or on["shear"] or on["perspective"]:
        m = rd.subcanvas(m, pads, slack=int(0.6 * size) + 2)  # warp only what the crop can show
        mat = rd.warp_matrix(rng, m.box, size, on["rotation"], on["shear"], on["perspective"])
        m = rd.apply_warp(m, mat)
    text_mask, deco = rd.crop(m, (pads[0], pads[1], pads[2], pads[3]))
    if rng.random() < rc.width_scale_p:
        text_mask, deco = stretch_x(text_mask, deco, width_scale(rng, rc.width_scale, len(text)))
    if on["table_rules"] or on["box_border"]:
        rd.draw_rules(deco, text_mask, rng, size, box=on["box_border"])
    thin = stroke == 0 and (size < 24 or "Light" in face.style)
    if on["ink_bleed"]:
        text_mask = dg.ink_bleed(text_mask, rng, thin)
    if on["erosion"]:
        text_mask = dg.morph(text_mask, rng, size, thin)
    if on["ink_dropout"]:
        text_mask = dg.ink_dropout(text_mask, rng, rd.CAP * size)
    if on["dot_matrix"] or on["bitmap_font"]:
        dense = any(is_hanzi(c) for c in text)
        if on["dot_matrix"] and (size >= 27 or not dense):  # smaller hanzi get too few dots to stay legible
            text_mask = dg.dot_matrix(text_mask, rng, rd.CAP * size, dense)
        elif on["bitmap_font"]:
            text_mask = dg.bitmap_font(text_mask, rng, rd.CAP * size, dense)
    if on["faint_marks"] and not any(is_hanzi(c) for c in text):  # hanzi dots are strokes of the letter
        text_mask = dg.faint_marks(text_mask, rng, rd.CAP * size)

    h, w = text_mask.shape
    bg, ink = dg.colours(rng, on["inverted"], on["low_contrast"])
    if on["clutter"]:
        back: np.ndarray | float = dg.clutter(h, w, bg, ink, rng)
    else:
        back = dg.background(h, w, bg, rng, on["gradient_bg"], on["paper_texture"])
    deco_ink = ink + rng.uniform(-30, 30) if rng.random() < 0.5 else ink
    img = dg.compose(text_mask, deco, back, ink, deco_ink, rng, faded=on["low_contrast"] and rng.random() < 0.5)
    if on["thermal_fade"]:
        img = dg.thermal_fade(img, back, abs(bg - ink), rng)
    if on["shadow"]:
        img = dg.shadow(img, rng)
    if on["uneven_light"]:
        img = dg.uneven_light(img, rng)
    if on["gaussian_blur"]:
        img = dg.gaussian_blur(img, rng, size)
    elif on["motion_blur"]:
        img = dg.motion_blur(img, rng, size)
    elif on["defocus_blur"]:
        img = dg.defocus_blur(img, rng, size)
    if on["low_res"] and size >= 22:
        img = dg.low_res(img, rng)
    if on["binarize"]:
        img = dg.binarize(img, rng)
    if on["noise"]:
        img = dg.noise(img, rng)
    if on["salt_pepper"]:
        img = dg.salt_pepper(img, rng)
    if on["jpeg"]:
        img = dg.jpeg(img, rng)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if out.shape[0] > rc.max_height:
        th = int(rng.integers(int(rc.max_height * 0.75), rc.max_height + 1))
        tw = max(1, round(out.shape[1] * th / out.shape[0]))
        out = cv2.resize(out, (tw, th), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out), size
