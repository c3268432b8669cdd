"""An English lexicon for decoding: a word the model misread by one letter becomes the word it meant.

Best-path decoding reads each frame on its own, so a faint stroke turns ``Total`` into ``Totai`` and
``Summary`` into ``Sumiary``. :func:`correct_words` revisits each out-of-lexicon word of ASCII letters: it
scores the lexicon words one edit away on the same frames with the CTC forward algorithm and takes the
best one if it is at most ``margin`` (natural log) less likely than what the model read. The prior that a
printed word is a real word is what the margin buys; codes are left alone (words next to a digit, words
shorter than ``min_len``), and so is anything the model read as likely as any dictionary neighbour.

The bundled list (``assets/lexicon_en.txt.gz``, :data:`LEXICON_FILE`) holds the most frequent English
words of wordfreq (CC BY-SA 4.0 data, see docs/licences.md), made with ``scripts/build_lexicon.py``.
"""

from __future__ import annotations

import gzip
import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from crnn_ocr.charset import Charset
from crnn_ocr.ctc import Decoded, ctc_align, ctc_log_likelihoods, line_confidence

LEXICON_FILE = "assets/lexicon_en.txt.gz"
LEXICON_SIZE = 50_000
"""Words of wordfreq's English ranking the bundled list is built from (before dropping non-letters)."""
MARGIN = 4.0
"""Natural-log odds a lexicon word may lose by to the model's own reading and still replace it (about 55:1).
On 953 synthetic English lines, corrections kept coming up to 5 with no correct word broken, and the first
correct word changed for the worse at 7; 4 stays clear of that."""
MIN_LEN = 4
"""Shortest word revisited: shorter ones are mostly codes, units and abbreviations (``QTY``, ``SDN``, ``RM``)."""

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
LOOKALIKES = "[]|!"
"""Marks a thin letter of a worn or dot-matrix font reads as at a word's edge (``Tota]``, ``[otal``)."""
_LOOKALIKE_LETTERS = "iltjf"
"""What such a mark may be instead (the case of the word decides between ``l``, ``I`` and ``L``)."""
_MARK = f"[{re.escape(LOOKALIKES)}]?"
_WORD = re.compile(f"{_MARK}[A-Za-z]+{_MARK}")


@dataclass(frozen=True)
class Lexicon:
    """A set of lowercase ASCII words, with the words one edit away from a given one."""

    words: frozenset[str]

    @classmethod
    def from_words(cls, words: Iterable[str]) -> Lexicon:
        """Lowercase words of ASCII letters only (others are dropped: the lexicon revisits letter runs)."""
        return cls(frozenset(w.lower() for w in words if w.isascii() and w.isalpha()))

    @classmethod
    def load(cls, path: str | Path) -> Lexicon:
        """One word a line, plain or gzip-compressed (``.gz``)."""
        path = Path(path)
        data = path.read_bytes()
        text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")
        return cls.from_words(text.split())

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.lower() in self.words

    def __len__(self) -> int:
        return len(self.words)

    def neighbours(self, word: str) -> list[str]:
        """Lexicon words one deletion, substitution, insertion or swap of neighbours away from ``word``.

        A word with :data:`LOOKALIKES` at its edges (``tota]``) has those marks read as thin letters
        instead, and nothing else changed.
        """
        w = word.lower()
        marks = [i for i, c in enumerate(w) if c in LOOKALIKES]
        if marks:
            options = [[c] if i not in marks else list(_LOOKALIKE_LETTERS) for i, c in enumerate(w)]
            return sorted({"".join(p) for p in itertools.product(*options)} & self.words)
        splits = [(w[:i], w[i:]) for i in range(len(w) + 1)]
        edits = {a + b[1:] for a, b in splits if b}
        edits |= {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
        edits |= {a + c + b for a, b in splits for c in _LETTERS}
        edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        edits.discard(w)
        return sorted(e for e in edits if e in self.words)


@lru_cache(maxsize=1)
def bundled_lexicon() -> Lexicon:
    """The English lexicon shipped in the package (loaded once)."""
    return Lexicon.load(Path(str(resources.files("crnn_ocr").joinpath(LEXICON_FILE))))


def build_word_list(top_n: int = LEXICON_SIZE) -> list[str]:
    """The bundled list's words, most frequent first, from wordfreq (a training dependency)."""
    from wordfreq import top_n_list

    return [w for w in top_n_list("en", top_n) if w.isascii() and w.isalpha()]


def cased_like(word: str, cand: str) -> list[str]:
    """Spellings of lexicon word ``cand`` to try for the model's reading ``word``.

    Lowercase, capitalised and upper case, and, for a word of the same length, ``word``'s case letter by
    letter (``SumMary``). The CTC score then picks the one the frames show.
    """
    out = [cand, cand.capitalize(), cand.upper()]
    if len(cand) == len(word):
        out.append("".join(c.upper() if w.isupper() else c for w, c in zip(word, cand, strict=True)))
    return list(dict.fromkeys(out))


def _revisited(text: str, lexicon: Lexicon, min_len: int) -> list[tuple[int, int]]:
    """``(start, end)`` of the words :func:`correct_words` revisits.

    Letter runs, with any lookalike marks at their edges, that are not codes and not in the lexicon.
    """
    out = []
    for m in _WORD.finditer(text):
        a, b = m.span()
        next_to_digit = (a > 0 and text[a - 1].isdigit()) or (b < len(text) and text[b].isdigit())
        if b - a >= min_len and not next_to_digit and m.group() not in lexicon:
            out.append((a, b))
    return out


def correct_words(probs: np.ndarray, dec: Decoded, charset: Charset, lexicon: Lexicon, margin: float = MARGIN,
                  min_len: int = MIN_LEN, allowed: np.ndarray | None = None) -> Decoded:
    """``dec`` with each revisited word replaced by its best lexicon neighbour within ``margin``.

    Args:
        probs: the line's ``(T, C)`` frame probabilities ``dec`` was decoded from.
        dec: the line read by best path.
        charset: the model's charset (names ``dec``'s classes).
        lexicon: the words a revisited word may become.
        margin: natural-log odds a lexicon word may lose by (:data:`MARGIN`).
        min_len: shortest word revisited (:data:`MIN_LEN`).
        allowed: class indices a replacement may use (an alphabet); ``None``: any.

    Returns:
        A new :class:`Decoded` (or ``dec`` itself when nothing changed). Replaced characters get their
        frames from the most likely alignment of the new word and the model's own probability there, so a
        corrected word keeps the low confidence of what was read.
    """
    text = charset.decode(dec.labels)
    if len(text) != len(dec.labels):  # a class the charset cannot name: leave the line as it is
        return dec
    words = _revisited(text, lexicon, min_len)
    if not words:
        return dec
    ok = None if allowed is None else set(np.asarray(allowed).tolist())
    labels, char_probs, spans = list(dec.labels), list(dec.char_probs), list(dec.spans)
    for a, b in reversed(words):  # from the right, so earlier indices stay valid
        word = text[a:b]
        readings = [charset.encode(c) for n in lexicon.neighbours(word) for c in cased_like(word, n)
                    if all(ch in charset for ch in c)]
        readings = [r for r in readings if ok is None or set(r) <= ok]
        if not readings:
            continue
        t0 = spans[a - 1][1] + 1 if a > 0 else 0
        t1 = spans[b][0] if b < len(spans) else probs.shape[0]
        scores = ctc_log_likelihoods(probs[t0:t1], [labels[a:b], *readings])
        best = int(np.argmax(scores[1:]))
        if not math.isfinite(scores[1 + best]) or scores[1 + best] < scores[0] - margin:
            continue
        new = readings[best]
        aligned = [(t0 + s, t0 + e) for s, e in ctc_align(probs[t0:t1], new)]
        labels[a:b] = new
        char_probs[a:b] = [float(probs[s: e + 1, c].max()) for c, (s, e) in zip(new, aligned, strict=True)]
        spans[a:b] = aligned
    if labels == list(dec.labels):
        return dec
    return Decoded(tuple(labels), tuple(char_probs), tuple(spans), line_confidence(char_probs, probs))

