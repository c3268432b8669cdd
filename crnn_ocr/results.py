"""Result types returned by the public API: frozen, with ``to_dict()`` for JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


MIN_CONFIDENCE = 0.5
"""Least recognition confidence of a line found on a page: below it the line is mostly handwriting, a stamp
or a stain read as text (0.5 as in PP-OCR's ``drop_score``; the best of 0-0.5 on synthetic pages)."""


@dataclass(frozen=True)
class CharResult:
    """One recognised character with its confidence and horizontal extent in the line image's pixels."""

    char: str
    confidence: float
    x0: float
    x1: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"char": self.char, "confidence": round(self.confidence, 4), "x0": round(self.x0, 1),
                "x1": round(self.x1, 1)}


@dataclass(frozen=True)
class LineResult:
    """One recognised line: its text, confidence in [0, 1], characters, and (on a page) its box.

    ``box`` holds four ``(x, y)`` corners clockwise from top-left, in the page's pixels.
    """

    text: str
    confidence: float
    chars: tuple[CharResult, ...] = ()
    box: Quad | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self, chars: bool = True) -> dict[str, Any]:
        """JSON-ready form; ``chars=False`` leaves out the per-character list."""
        d: dict[str, Any] = {"text": self.text, "confidence": round(self.confidence, 4)}
        if self.box is not None:
            d["box"] = [[round(float(x), 1), round(float(y), 1)] for x, y in self.box]
        if chars:
            d["chars"] = [c.to_dict() for c in self.chars]
        d.update(self.extra)
        return d

    def with_box(self, box: Quad) -> LineResult:
        """A copy placed on a page."""
        return LineResult(self.text, self.confidence, self.chars, box, dict(self.extra))
