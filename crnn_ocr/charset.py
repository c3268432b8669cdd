r"""The character set and the label normalisation shared by synthesis, training, evaluation and decoding.

Index 0 is the CTC blank; symbol ``i`` of the charset file has class index ``i + 1``.

Charset file format (``assets/charset.txt``): UTF-8, one symbol per line, duplicates rejected on load.
Whitespace symbols cannot survive editors, so a line may hold a ``\uXXXX`` escape instead
(the space is stored as ``\u0020``).

Label normalisation rules (:func:`normalize_text`), applied everywhere a label or a prediction is compared:

1. Full-width ASCII letters and digits (``Ａ``-``Ｚ``, ``ａ``-``ｚ``, ``０``-``９``) become ASCII: they look
   the same as their half-width forms at line height and nobody wants ``１２３`` in extracted data.
2. Chinese and full-width punctuation is kept as printed (``，`` and ``,`` are different symbols):
   the model sees the width difference and Chinese documents use the full-width forms.
3. ``￥`` (U+FFE5) becomes ``¥`` and CJK compatibility ideographs become their unified forms (NFKC on
   those code points only): the pairs are indistinguishable in print.
4. Every whitespace character (tab, no-break space, ideographic space U+3000, ...) becomes a space, runs of
   spaces collapse to one, and leading/trailing spaces are removed.
5. Control and zero-width characters are dropped.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

BLANK = 0
"""Class index of the CTC blank."""

OnUnknown = Literal["error", "skip", "replace"]

_ESCAPE = re.compile(r"^\\u([0-9a-fA-F]{4})$")
_SPACES = re.compile(r"\s+")
_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}
_FULLWIDTH_ALNUM = {
    **{chr(0xFF10 + i): chr(0x30 + i) for i in range(10)},
    **{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)},
    **{chr(0xFF41 + i): chr(0x61 + i) for i in range(26)},
}
_SAME_IN_PRINT = {"\uffe5": "\u00a5"}


def is_vertical_form(ch: str) -> bool:
    """A presentation form for vertical text (``︰``, ``︵``...): the glyph a vertical line uses for ``:`` or ``(``.

    Horizontal lines never hold one, but in horizontal print ``︰`` looks exactly like a colon, so a model
    that was shown these forms in horizontal lines reads colons as them. The synthetic text leaves them out
    and the recogniser does not emit them unless an alphabet asks for them.
    """
    return len(ch) == 1 and unicodedata.name(ch, "").startswith("PRESENTATION FORM FOR VERTICAL")


_HAN_BLOCKS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
"""CJK unified ideographs (extension A and the basic block) and the compatibility ideographs."""
_CJK_LETTER_NAMES = ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH", "HIRAGANA", "KATAKANA", "HANGUL",
                     "BOPOMOFO")
_CJK_PUNCT_BLOCKS = ((0x3000, 0x303F), (0xFE30, 0xFE6F), (0xFF00, 0xFFEF))
"""CJK symbols and punctuation, CJK compatibility and small forms, full- and half-width forms."""


def is_hanzi(ch: str) -> bool:
    """A Chinese character of the blocks the charset draws from (:data:`_HAN_BLOCKS`).

    Narrower than :func:`is_cjk_letter`: the corpus, the synthesis and the evaluation's breakdown want
    hanzi, the decoder's script prior wants every CJK letter.
    """
    return len(ch) == 1 and any(lo <= ord(ch) <= hi for lo, hi in _HAN_BLOCKS)


def is_cjk_letter(ch: str) -> bool:
    """A letter of a CJK script: hanzi (and kanji, and the ideographic zero ``〇``), kana, hangul, bopomofo."""
    if len(ch) != 1:
        return False
    return is_hanzi(ch) or ch == "\u3007" or unicodedata.name(ch, "").startswith(_CJK_LETTER_NAMES)


def is_cjk_punct(ch: str) -> bool:
    """Punctuation and symbols drawn for CJK text: ``，``, ``：``, ``（``, ``、``, ``《``, ``＊``, ``〈``...

    Most have an ASCII twin that differs only in width and spacing, and Latin text uses the twin.
    """
    return len(ch) == 1 and any(lo <= ord(ch) <= hi for lo, hi in _CJK_PUNCT_BLOCKS) and not is_cjk_letter(ch)


ALPHABETS = {
    "ascii": "".join(chr(c) for c in range(0x20, 0x7F)),
    "digits": "0123456789",
}
"""Named alphabets for restricting a recogniser's output (``Recognizer(alphabet="ascii")``)."""


def resolve_alphabet(spec: str) -> str:
    """The characters an alphabet names: a preset of :data:`ALPHABETS`, else the characters themselves.

    The characters are normalised as labels are (``１`` is ``1``); the space is always included, since it
    separates words rather than being read. Raises ``ValueError`` for an empty alphabet.
    """
    chars = ALPHABETS.get(spec.strip().lower(), spec)
    chars = "".join(dict.fromkeys(c for c in normalize_text(chars) if c != " "))
    if not chars:
        raise ValueError(f"empty alphabet {spec!r}: give characters or one of {sorted(ALPHABETS)}")
    return chars + " "


class UnknownCharacterError(ValueError):
    """A label holds characters that the charset does not have."""

    def __init__(self, text: str, unknown: Sequence[str]) -> None:
        self.text = text
        self.unknown = sorted(set(unknown))
        shown = " ".join(f"{c!r}(U+{ord(c):04X})" for c in self.unknown[:20])
        super().__init__(
            f"{len(self.unknown)} character(s) not in the charset: {shown} in label {text!r}. "
            "Add them with --extend-charset FILE, or choose --on-unknown skip|replace.",
        )


def _normalize_char(ch: str) -> str:
    if ch in _FULLWIDTH_ALNUM:
        return _FULLWIDTH_ALNUM[ch]
    if ch in _SAME_IN_PRINT:
        return _SAME_IN_PRINT[ch]
    if "\uf900" <= ch <= "\ufaff" or "\U0002f800" <= ch <= "\U0002fa1f":
        return unicodedata.normalize("NFKC", ch)
    if ch in _ZERO_WIDTH:
        return ""
    if ch.isspace():
        return " "
    if unicodedata.category(ch) == "Cc":
        return ""
    return ch


def normalize_text(text: str) -> str:
    """Normalise a label or a prediction by the module's rules, so that equal-looking text compares equal.

    >>> normalize_text("  ＡＢ１２\u3000发票，共  3 件 ")
    'AB12 发票，共 3 件'
    """
    text = unicodedata.normalize("NFC", text)
    text = "".join(_normalize_char(c) for c in text)
    return _SPACES.sub(" ", text).strip()


def _decode_line(line: str) -> str:
    m = _ESCAPE.match(line)
    return chr(int(m.group(1), 16)) if m else line


def _encode_line(symbol: str) -> str:
    return f"\\u{ord(symbol):04x}" if symbol.isspace() else symbol


@dataclass(frozen=True)
class Charset:
    """An ordered set of symbols; class ``i + 1`` is ``symbols[i]`` and class 0 is the CTC blank.

    >>> cs = Charset(("a", "b", " "))
    >>> cs.encode("ab a")
    [1, 2, 3, 1]
    >>> cs.decode([1, 3, 2])
    'a b'
    """

    symbols: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seen: dict[str, int] = {}
        for i, s in enumerate(self.symbols):
            if len(s) != 1:
                raise ValueError(f"charset symbol #{i} {s!r} is not a single character")
            if s in seen:
                raise ValueError(f"charset symbol {s!r} appears twice (#{seen[s]} and #{i})")
            seen[s] = i + 1
        object.__setattr__(self, "_index", seen)

    @property
    def num_classes(self) -> int:
        """Output size of a model over this charset: symbols plus the blank."""
        return len(self.symbols) + 1

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, ch: object) -> bool:
        return ch in self._index

    @property
    def sha256(self) -> str:
        """Stable content hash: the same symbols in the same order always give the same hash."""
        return hashlib.sha256("\n".join(self.symbols).encode("utf-8")).hexdigest()

    def unknown(self, text: str) -> list[str]:
        """Characters of ``text`` that the charset lacks, in order of appearance."""
        return [c for c in dict.fromkeys(text) if c not in self._index]

    def prepare(self, text: str, on_unknown: OnUnknown = "error", replacement: str = "") -> str | None:
        """Normalise a label and handle characters outside the charset as the caller chose.

        Returns the normalised label, or ``None`` when ``on_unknown="skip"`` and the label has unknown
        characters. ``replace`` substitutes ``replacement`` (dropping them when it is empty).
        """
        text = normalize_text(text)
        bad = self.unknown(text)
        if not bad:
            return text
        if on_unknown == "skip":
            return None
        if on_unknown == "replace":
            if replacement and replacement not in self._index:
                raise ValueError(f"replacement {replacement!r} is not in the charset")
            return normalize_text("".join(replacement if c in bad else c for c in text))
        raise UnknownCharacterError(text, bad)

    def encode(self, text: str) -> list[int]:
        """Class indices of an already normalised label; unknown characters raise."""
        try:
            return [self._index[c] for c in text]
        except KeyError:
            raise UnknownCharacterError(text, self.unknown(text)) from None

    def alphabet_classes(self, spec: str) -> list[int]:
        """Class indices (blank first) of an alphabet (:func:`resolve_alphabet`).

        Characters the charset lacks are an error naming them: the model could never read them.
        """
        chars = resolve_alphabet(spec)
        missing = [c for c in chars if c not in self._index and c != " "]
        if missing:
            shown = " ".join(f"{c!r}" for c in missing[:20])
            raise ValueError(f"alphabet has {len(missing)} character(s) the model's charset lacks: {shown}")
        return [BLANK, *(self._index[c] for c in chars if c in self._index)]

    def vertical_form_classes(self) -> list[int]:
        """Class indices of the charset's vertical presentation forms (:func:`is_vertical_form`)."""
        return [i + 1 for i, s in enumerate(self.symbols) if is_vertical_form(s)]

    def cjk_classes(self) -> tuple[list[int], list[int]]:
        """Class indices of the charset's CJK letters and of its CJK punctuation.

        See :func:`is_cjk_letter` and :func:`is_cjk_punct`.
        """
        letters = [i + 1 for i, s in enumerate(self.symbols) if is_cjk_letter(s)]
        punct = [i + 1 for i, s in enumerate(self.symbols) if is_cjk_punct(s)]
        return letters, punct

    def decode(self, indices: Iterable[int]) -> str:
        """Symbols for class indices (the blank and out-of-range indices are dropped)."""
        n = len(self.symbols)
        return "".join(self.symbols[i - 1] for i in indices if 0 < i <= n)

    def extend(self, extra: Iterable[str]) -> Charset:
        """A new charset with ``extra`` symbols appended after the existing ones (old indices unchanged)."""
        new = [c for c in dict.fromkeys(normalize_text("".join(extra))) if c not in self._index]
        return Charset(self.symbols + tuple(new))

    def to_text(self) -> str:
        """The charset file's content."""
        return "".join(_encode_line(s) + "\n" for s in self.symbols)

    @classmethod
    def from_text(cls, text: str) -> Charset:
        """Parse a charset file's content (blank lines are ignored)."""
        lines = [ln.rstrip("\r") for ln in text.split("\n")]
        return cls(tuple(_decode_line(ln) for ln in lines if ln != ""))

    def save(self, path: str | Path) -> None:
        """Write the charset file."""
        Path(path).write_text(self.to_text(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Charset:
        """Read a charset file; duplicates and multi-character lines are rejected."""
        return cls.from_text(Path(path).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def default_charset() -> Charset:
    """The charset bundled with the package (GB2312 hanzi, ASCII, punctuation, document symbols)."""
    text = resources.files("crnn_ocr").joinpath("assets/charset.txt").read_text(encoding="utf-8")
    return Charset.from_text(text)
