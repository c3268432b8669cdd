"""The :class:`Recognizer`: line images in, text with confidences and character positions out."""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from crnn_ocr.ctc import Decoded, greedy_decode
from crnn_ocr.engine.session import Backend, OrtBackend
from crnn_ocr.lexicon import MARGIN, Lexicon, bundled_lexicon, correct_words
from crnn_ocr.preprocess import (
    ImageInput,
    PreprocessConfig,
    pad_batch,
    paper_margins,
    prepare_line,
    width_buckets,
)
from crnn_ocr.results import CharResult, LineResult

BUNDLED_MODEL = "crnn_lite.int8.onnx"
MAX_BATCH_COLUMNS = 32 * 1024
"""Cap on ``lines x padded width`` per batch, so a batch of very long lines stays small in memory."""
MAX_BATCH_CELLS = 1 << 24
"""Cap on ``padded width x classes`` per batch. The ``(N, T, C)`` output dominates memory and time with a
7k-symbol charset: on crnn_lite (1 thread) batches of ~2k columns ran 25% faster than 32k-column ones
and halved peak RSS, so large charsets get narrower batches."""
MAX_PAD = 0.25
"""Most padding a line gets in a batch, as a share of its width (``preprocess.width_buckets``)."""
WINDOW_OVERLAP = 256
"""Pixels shared by neighbouring windows of a line wider than the model's ``max_width``; each window keeps
only the frames at least half this far from its cut edges, so every frame has context on both sides."""
MAX_LINE_WIDTH = 1 << 17
"""Widest line (after resizing to the model height) read at full resolution; wider ones are squeezed."""
LATIN_CONTEXT_WEIGHT = 0.25
"""Prior on CJK punctuation and letters in a line read as Latin script (:meth:`Recognizer.is_latin_context`):
a frame then reads ``，`` or ``：`` over its ASCII twin only if the model finds it four times likelier.
Latin text is set with ASCII punctuation; a spaced colon or a degraded ``*`` otherwise reads as its
full-width form, which parsers of the output do not expect. 1 turns the prior off."""
LATIN_CONTEXT_MIN_ALNUM = 2
"""ASCII letters and digits a line needs before it counts as Latin script."""
LATIN_CONTEXT_SURE = 0.5
"""A CJK letter read at least this confidently makes the line CJK (or mixed) text, which keeps its
full-width punctuation."""

LATIN_HOMOGLYPHS = {"Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
                    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o"}
"""Greek letters drawn exactly as Latin ones: the model can only tell them apart by context."""
HOMOGLYPH_MAX = 2
"""Most Greek letters a line may hold for its Greek homoglyphs to be read as Latin: a Greek word has more."""


_NUMERIC_MARKS = ".,"
"""Separators inside a number (``0.50``, ``1,000``)."""
_CURRENCY = ("$", "¥", "€", "£")
_BEFORE_NUMBER = " (:=+-/"
"""What may stand right before a number that starts with an O read as a letter (not ``№``, not a letter)."""


def zeros_in_numbers(text: str) -> list[int]:
    """Positions of letters ``O``/``o`` that are zeros of a number: ``RMO.5O`` -> ``RM0.50``, ``2O18``.

    In many receipt and dot-matrix fonts the two are the same glyph, so the model can only guess. An O
    counts as a zero when a digit (or a zero found before it) touches it and no letter does, or a ``%``
    follows it, or it starts a number (after a space or a bracket, or a currency: ``RM``, ``$``) and a ``.``/``,``
    follows. Words of letters (``BOX``, ``NO.5``, ``Kopi O``) and codes that mix letters and digits
    (``YO595``) are left alone.
    """
    chars = list(text)
    out = []

    def digit(k: int) -> bool:
        return 0 <= k < len(chars) and chars[k].isdigit()

    def letter(k: int) -> bool:  # another O may be a zero yet
        return 0 <= k < len(chars) and chars[k].isalpha() and chars[k] not in "Oo"

    def starts_number(i: int) -> bool:
        nxt = chars[i + 1] if i + 1 < len(chars) else " "
        before = text[:i].rstrip(" ")
        if before.upper().endswith("RM") or before.endswith(_CURRENCY):
            return nxt in _NUMERIC_MARKS
        first = i == 0 or chars[i - 1] in _BEFORE_NUMBER
        return first and nxt in _NUMERIC_MARKS and i + 2 < len(chars) and chars[i + 2] in "0123456789Oo"

    changed = True
    while changed:  # RMO.OO: each zero found lets the next one count
        changed = False
        for i, c in enumerate(chars):
            if c not in "Oo":
                continue
            left, right = digit(i - 1), digit(i + 1)
            # inside a run of digits, not where a code changes from letters to digits (YO595, UNDO64)
            beside = (left or right) and not (letter(i - 1) or letter(i + 1))
            after_mark = i >= 2 and chars[i - 1] in _NUMERIC_MARKS and digit(i - 2)
            number = starts_number(i)
            percent = i + 1 < len(chars) and chars[i + 1] == "%"
            if beside or after_mark or number or percent:
                chars[i] = "0"
                out.append(i)
                changed = True
    return sorted(out)


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
        alphabet: restrict what is read to these characters: a preset (``"ascii"``, ``"digits"``, see
            :data:`~crnn_ocr.charset.ALPHABETS`) or the characters themselves (``"0123456789.-"``); the
            space is always allowed. For fields and documents known to hold nothing else: a Latin glyph
            the model finds closer to a hanzi or a symbol is then read as the closest allowed character.
        latin_context_weight: prior on CJK punctuation and letters in lines that read as Latin script
            (:meth:`is_latin_context`, :data:`LATIN_CONTEXT_WEIGHT`); 1 turns it off.
        lexicon: words an out-of-lexicon English word one letter away may be read as
            (:func:`~crnn_ocr.lexicon.correct_words`): ``"bundled"`` or ``True`` (the packaged English list),
            a :class:`~crnn_ocr.lexicon.Lexicon`, or ``None`` / ``False`` to read exactly what the best path
            reads.
        lexicon_margin: natural-log odds a lexicon word may lose by to the model's reading
            (:data:`~crnn_ocr.lexicon.MARGIN`).
        edge_margin: background added at each clean side of a line before it is read, in line heights
            (:func:`~crnn_ocr.preprocess.paper_margins`); ``None``: the model's own (its preprocessing
            metadata, :data:`~crnn_ocr.preprocess.EDGE_MARGIN` for the bundled model); 0: none.

    >>> rec = Recognizer()                                 # doctest: +SKIP
    >>> [r.text for r in rec(["line.png", image_array])]   # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Path | Backend | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        preprocess: PreprocessConfig | None = None,
        alphabet: str | None = None,
        latin_context_weight: float = LATIN_CONTEXT_WEIGHT,
        lexicon: Lexicon | Literal["bundled"] | bool | None = "bundled",
        lexicon_margin: float = MARGIN,
        edge_margin: float | None = None,
    ) -> None:
        if model is None:
            model = bundled_model_path()
        self.backend: Backend = OrtBackend(model, threads) if isinstance(model, (str, Path)) else model
        self.meta = self.backend.meta
        self.charset = self.meta.charset
        self.config = self._merge(self.meta.preprocess, preprocess)
        if edge_margin is not None:
            self.config = replace(self.config, edge_margin=float(edge_margin))
        self.batch_size = max(1, int(batch_size))
        self._full_width = replace(self.config, max_width=max(self.config.max_width, MAX_LINE_WIDTH))
        self.max_columns = max(self.config.min_width, min(MAX_BATCH_COLUMNS,
                                                          MAX_BATCH_CELLS // self.charset.num_classes))
        if not 0.0 <= latin_context_weight <= 1.0:
            raise ValueError(f"latin_context_weight must lie in [0, 1], got {latin_context_weight}")
        self.latin_context_weight = float(latin_context_weight)
        self._set_priors(self.latin_context_weight)
        if lexicon_margin < 0.0:
            raise ValueError(f"lexicon_margin must not be negative, got {lexicon_margin}")
        if isinstance(lexicon, bool) or lexicon is None:
            lexicon = "bundled" if lexicon else None
        self.lexicon = bundled_lexicon() if lexicon == "bundled" else lexicon
        self.lexicon_margin = float(lexicon_margin)
        self._alphabets: dict[str, np.ndarray] = {}
        self._alphabet_lock = threading.Lock()
        self.alphabet = alphabet
        self.allowed_classes(alphabet)  # an alphabet the charset cannot read fails here, not on first use

    def _set_priors(self, latin_weight: float) -> None:
        """The class masks of :meth:`is_latin_context` and the class weights of :meth:`decode`.

        ``_weights`` apply to every line: horizontal lines hold no vertical presentation forms
        (charset.is_vertical_form), so those weigh 0. ``_latin_weights`` add the Latin-script prior.
        ``None``: no prior.
        """
        n = self.charset.num_classes
        vertical = self.charset.vertical_form_classes()
        letters, punct = self.charset.cjk_classes()
        self._cjk_letter = np.zeros(n, dtype=bool)
        self._cjk_letter[letters] = True
        self._cjk = self._cjk_letter.copy()
        self._cjk[punct] = True
        self._ascii_alnum = np.zeros(n, dtype=bool)
        self._ascii_alnum[[i + 1 for i, ch in enumerate(self.charset.symbols) if ch.isascii() and ch.isalnum()]] = True
        self._ascii_letter = np.zeros(n, dtype=bool)
        self._ascii_letter[[i + 1 for i, ch in enumerate(self.charset.symbols) if ch.isascii() and ch.isalpha()]] = True
        weights = np.ones(n, dtype=np.float32)
        weights[vertical] = 0.0
        latin = weights.copy()
        latin[self._cjk] *= latin_weight
        self._weights = weights if vertical else None
        self._latin_weights = latin if latin_weight < 1.0 and self._cjk.any() else None
        self._zero = self.charset.encode("0")[0] if "0" in self.charset else None
        self._letter_o = np.zeros(n, dtype=bool)
        self._letter_o[[self.charset.encode(c)[0] for c in "Oo" if c in self.charset]] = True
        self._greek = np.zeros(n, dtype=bool)
        self._greek[[i + 1 for i, ch in enumerate(self.charset.symbols)
                     if unicodedata.name(ch, "").startswith("GREEK")]] = True
        self._latin_twin = np.arange(n)
        for greek, latin in LATIN_HOMOGLYPHS.items():
            if greek in self.charset and latin in self.charset:
                self._latin_twin[self.charset.encode(greek)[0]] = self.charset.encode(latin)[0]
        self._ascii_twin = np.arange(n)
        for k in punct:
            twin = unicodedata.normalize("NFKC", self.charset.symbols[k - 1])
            if len(twin) == 1 and twin.isascii() and twin in self.charset:
                self._ascii_twin[k] = self.charset.encode(twin)[0]

    def is_latin_context(self, dec: Decoded) -> bool:
        """Whether a line decoded without the Latin prior reads as Latin script holding CJK symbols.

        It must show at least ``LATIN_CONTEXT_MIN_ALNUM`` ASCII letters or digits, some CJK punctuation or
        letters (else there is nothing to revisit) and no CJK letter read with confidence
        ``LATIN_CONTEXT_SURE`` or more: Chinese and mixed lines keep their full-width punctuation.
        """
        if not dec.labels:
            return False
        labels = np.asarray(dec.labels, dtype=np.int64)
        if not self._cjk[labels].any() or int(self._ascii_alnum[labels].sum()) < LATIN_CONTEXT_MIN_ALNUM:
            return False
        sure = self._cjk_letter[labels] & (np.asarray(dec.char_probs) >= LATIN_CONTEXT_SURE)
        return not sure.any()

    def _ascii_punctuation(self, dec: Decoded) -> Decoded:
        """A Latin line's remaining full-width punctuation as its ASCII twin (``CASH：`` -> ``CASH:``).

        The prior leaves a full-width mark the model is sure of, but in Latin text it can only be a misread
        of the ASCII one: the two differ in width and spacing, not in shape.
        """
        labels = np.asarray(dec.labels, dtype=np.int64)
        twins = self._ascii_twin[labels]
        if not len(twins) or (twins == labels).all() or int(self._ascii_letter[labels].sum()) < 2:
            return dec  # digits alone (``1691；``) may be part of Chinese text
        return replace(dec, labels=tuple(int(c) for c in twins))

    def _homoglyphs(self, dec: Decoded) -> Decoded:
        """A lone Greek letter drawn as a Latin one read as the Latin letter (``Α类`` -> ``A类``).

        Only in lines with at most :data:`HOMOGLYPH_MAX` Greek letters, all of them such homoglyphs: in the
        Chinese and English text this model reads a lone ``Α`` is a Latin ``A``; Greek words stay Greek.
        """
        labels = np.asarray(dec.labels, dtype=np.int64)
        greek = self._greek[labels]
        if not greek.any() or int(greek.sum()) > HOMOGLYPH_MAX:
            return dec
        twins = self._latin_twin[labels]
        if (twins[greek] == labels[greek]).any():
            return dec  # a Greek letter of its own (``Δ``, ``σ``): Greek or mathematical text
        return replace(dec, labels=tuple(int(c) for c in twins))

    def _zeros(self, dec: Decoded) -> Decoded:
        """``dec`` with the letters O that are zeros of a number read as zeros (:func:`zeros_in_numbers`)."""
        if self._zero is None or not self._letter_o[np.asarray(dec.labels, dtype=np.int64)].any():
            return dec  # most lines hold no letter O: not worth decoding the text for
        text = self.charset.decode(dec.labels)
        if len(text) != len(dec.labels):
            return dec
        at = zeros_in_numbers(text)
        if not at:
            return dec
        labels = list(dec.labels)
        for i in at:
            labels[i] = self._zero
        return replace(dec, labels=tuple(labels))

    def decode(self, probs: np.ndarray, allowed: np.ndarray | None = None, lexicon: bool = True) -> Decoded:
        """Decode one line's ``(T, C)`` frame probabilities with the recogniser's priors.

        An alphabet (``allowed``) replaces the priors. Otherwise vertical forms are never read, and a line
        that reads as Latin script is decoded again with CJK punctuation and letters weighted down
        (``latin_context_weight``), so ``TOTAL : 12.50`` keeps its ASCII colon, and any full-width mark left
        in it becomes its ASCII twin; a lone Greek letter drawn as a Latin one becomes that letter
        (:meth:`_homoglyphs`); a letter O inside a number is read as a zero (:func:`zeros_in_numbers`).
        Then English words the lexicon lacks may become a lexicon word one letter away (``Totai`` ->
        ``Total``, ``Tota]`` -> ``Total``), unless ``lexicon`` is false or the recogniser has none.
        """
        if allowed is not None:
            dec = greedy_decode(probs, allowed=allowed)
        else:
            dec = greedy_decode(probs, weights=self._weights)
            if self._latin_weights is not None and self.is_latin_context(dec):
                dec = self._ascii_punctuation(greedy_decode(probs, weights=self._latin_weights))
            dec = self._zeros(self._homoglyphs(dec))
        if lexicon and self.lexicon is not None:
            dec = correct_words(probs, dec, self.charset, self.lexicon, self.lexicon_margin, allowed=allowed)
        return dec

    @staticmethod
    def _merge(model_cfg: PreprocessConfig, override: PreprocessConfig | None) -> PreprocessConfig:
        if override is None:
            return model_cfg
        steps = [s for s in ("clahe", "denoise", "adaptive_threshold") if getattr(override, s)]
        return model_cfg.only_steps(steps)

    @property
    def edge_margin(self) -> float:
        """Background added at each clean end of a line before it is read, in line heights (the config's)."""
        return self.config.edge_margin

    @property
    def name(self) -> str:
        """The model's name, as reported by the service's health check."""
        return self.meta.name

    def allowed_classes(self, alphabet: str | None) -> np.ndarray | None:
        """Class indices an alphabet allows (``None``: the recogniser's own alphabet, if it has one).

        Raises ``ValueError`` for an alphabet with characters the model's charset lacks.
        """
        alphabet = alphabet if alphabet is not None else self.alphabet
        if alphabet is None:
            return None
        with self._alphabet_lock:
            classes = self._alphabets.get(alphabet)
            if classes is None:
                classes = np.asarray(self.charset.alphabet_classes(alphabet), dtype=np.int64)
                if len(self._alphabets) >= 64:  # alphabets may come from requests: keep the cache bounded
                    self._alphabets.pop(next(iter(self._alphabets)))
                self._alphabets[alphabet] = classes
        return classes

    def __call__(self, images: ImageInput | Sequence[ImageInput], alphabet: str | None = None,
                 lexicon: bool = True, edge_margin: float | None = None) -> list[LineResult]:
        """Recognise one image or a list of them; results come back in input order.

        Lines are prepared at full resolution: one wider than the model's ``max_width`` is read in
        overlapping windows (see :meth:`recognize_prepared`) instead of being squeezed. ``alphabet``
        overrides the recogniser's own for this call; ``lexicon=False`` reads without the lexicon;
        ``edge_margin`` overrides :attr:`edge_margin` (crops that carry their own paper, such as a
        detector's padded boxes, need less).
        """
        if not isinstance(images, (list, tuple)):
            images = [images]
        lines = [self.prepare(img) for img in images]
        widths = [self._source_width(img, ln) for img, ln in zip(images, lines, strict=True)]
        return self.recognize_prepared(lines, widths, [alphabet] * len(lines), [lexicon] * len(lines),
                                       edge_margin=edge_margin)

    def prepare(self, image: ImageInput) -> np.ndarray:
        """One line as model input: ``prepare_line`` with the model's config, at full width.

        Lines up to ``MAX_LINE_WIDTH`` are not squeezed to ``max_width``: :meth:`recognize_prepared` reads
        wider ones in windows. Callers that batch lines themselves (the service) should prepare with this.
        """
        return prepare_line(image, self._full_width)

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
                           alphabets: Sequence[str | None] | None = None,
                           lexicons: Sequence[bool] | None = None, edge_margin: float | None = None,
                           ) -> list[LineResult]:
        """Recognise already preprocessed lines (``prepare_line`` output), batched by width, in input order.

        A line wider than the model's ``max_width`` is cut into overlapping windows that are batched like
        any other line; their frame probabilities are stitched back before decoding, so nothing is cut off
        and memory per batch stays bounded. ``alphabets`` gives each line its own alphabet (``None``: the
        recogniser's), and ``lexicons`` whether each may use the lexicon (``None``: all), so lines of requests
        that asked for different ones share batches; ``edge_margin`` overrides :attr:`edge_margin`. Safe to
        call from several threads at once (the only shared state, a cache of alphabets, is behind a lock).
        """
        allowed = [self.allowed_classes(a) for a in (alphabets or [None] * len(lines))]
        use_lexicon = lexicons if lexicons is not None else [True] * len(lines)
        widths = [float(ln.shape[1]) for ln in lines]
        margin = self.edge_margin if edge_margin is None else float(edge_margin)
        if margin < 0.0:
            raise ValueError(f"edge_margin must not be negative, got {margin}")
        lines, lefts = zip(*(paper_margins(ln, margin) for ln in lines), strict=True) if lines else ((), ())
        pieces = [(i, a, b) for i, ln in enumerate(lines) for a, b in self._windows(ln.shape[1])]
        probs: list[np.ndarray | None] = [None] * len(pieces)
        stride = 0.0
        for idx in width_buckets([b - a for _, a, b in pieces], self.batch_size, self.max_columns, MAX_PAD):
            batch, true_w = pad_batch([lines[pieces[k][0]][:, pieces[k][1]:pieces[k][2]] for k in idx], self.config)
            out = self.backend.run(batch)
            stride = batch.shape[3] / out.shape[1]
            for row, (k, w) in enumerate(zip(idx, true_w, strict=True)):
                probs[k] = out[row, : int(np.ceil(w / stride))]
        results: list[LineResult] = []
        k = 0
        for i, ln in enumerate(lines):
            parts: list[np.ndarray] = []
            while k < len(pieces) and pieces[k][0] == i:
                parts.append(self._kept_frames(probs[k], pieces[k], ln.shape[1], stride))
                k += 1
            line_probs = parts[0] if len(parts) == 1 else np.concatenate(parts)
            w = widths[i]
            src_w = float(source_widths[i]) if source_widths is not None else w
            dec = self.decode(line_probs, allowed[i], use_lexicon[i])
            results.append(self._to_result(dec, stride * src_w / w, src_w, lefts[i] * src_w / w))
        return results

    def _windows(self, width: int) -> list[tuple[int, int]]:
        """``(start, end)`` pixel ranges covering a line: one for most lines, overlapping ones for wide lines."""
        window = (self.config.max_width // 32) * 32
        if width <= self.config.max_width or window <= 2 * WINDOW_OVERLAP:
            return [(0, width)]
        step = window - WINDOW_OVERLAP
        out = []
        start = 0
        while True:
            if start + window >= width:
                out.append((start, width))
                return out
            out.append((start, start + window))
            start += step

    @staticmethod
    def _kept_frames(probs: np.ndarray | None, piece: tuple[int, int, int], width: int, stride: float,
                     ) -> np.ndarray:
        """The frames a window contributes: all for a whole line, else those away from its cut edges."""
        assert probs is not None
        _, a, b = piece
        lo = 0 if a == 0 else round(WINDOW_OVERLAP / 2 / stride)
        hi = len(probs) if b >= width else len(probs) - round(WINDOW_OVERLAP / 2 / stride)
        return probs[lo:hi]

    def _to_result(self, dec: Decoded, px_per_frame: float, width: float, offset: float = 0.0) -> LineResult:
        """The decoded line with character extents in source pixels (``offset``: the margin added on the left)."""
        def x(v: float) -> float:
            return min(width, max(0.0, v - offset))

        chars = tuple(
            CharResult(self.charset.decode([c]), float(p), x(t0 * px_per_frame), x((t1 + 1) * px_per_frame))
            for c, p, (t0, t1) in zip(dec.labels, dec.char_probs, dec.spans, strict=True)
        )
        text = "".join(c.char for c in chars)
        stripped = text.strip()
        if stripped != text:  # a leading/trailing space predicted at the padding edge carries no information
            lead = len(text) - len(text.lstrip())
            chars = chars[lead: lead + len(stripped)]
        return LineResult(stripped, float(dec.confidence), chars)
