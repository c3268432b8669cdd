"""Synthetic data settings: nested dataclasses read from YAML, unknown keys rejected.

The bundled defaults live in ``crnn_ocr/assets/synth.yaml``; a user file is a complete or partial copy of
it (missing keys keep their defaults, misspelt keys raise, so a typo never silently falls back).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, is_dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import yaml

Range = tuple[float, float]


@dataclass(frozen=True)
class TextConfig:
    """Where line texts come from and how long they are.

    Args:
        sources: relative weight of each text source (see :data:`crnn_ocr.synth.corpus.SOURCES`).
        coverage_every: every n-th sample index is a coverage line (rare characters are never starved).
        coverage_chars: charset characters taken from the coverage permutation per coverage line.
        zh_freq_power: exponent on jieba word frequencies (< 1 flattens, so less common words appear).
        en_top_n: English vocabulary size (wordfreq ranks).
        en_rank_power: Zipf exponent for English word sampling by rank.
        faker_pool: names, addresses, companies... pre-generated once per process (Faker is slow).
        long_line_p: chance that a line is built long (40 characters and more, up to ``max_chars``).
    """

    sources: dict[str, float] = field(default_factory=lambda: {"zh_words": 1.0})
    coverage_every: int = 5
    coverage_chars: int = 3
    zh_freq_power: float = 0.5
    en_top_n: int = 30000
    en_rank_power: float = 0.7
    faker_pool: int = 3000
    long_line_p: float = 0.15


@dataclass(frozen=True)
class FontConfig:
    """Which fonts are used and how often.

    Args:
        exclude: substrings of face names (family and style) never used (e.g. other CJK regions' glyphs).
        cjk_weight: sampling weight of a CJK face relative to a Latin-only face (for lines both can render).
        weights: weight multipliers for faces whose name contains a key (balance hei/song/kai/mono styles).
        sizes: font sizes in pixels (rendered at the final size, never huge then downscaled); a short list
            keeps the per-process glyph cache effective, the trainer's resize varies the scale further.
        fake_bold_p: chance of thickening strokes (a stroke around glyphs) for faces without a bold weight.
    """

    exclude: tuple[str, ...] = ()
    cjk_weight: float = 1.0
    weights: dict[str, float] = field(default_factory=dict)
    sizes: tuple[int, ...] = (18, 22, 27, 33, 40)
    fake_bold_p: float = 0.1


@dataclass(frozen=True)
class RenderConfig:
    """Layout of the line and its crop (not degradations: these always apply with their own randomness).

    Sizes are fractions of the font size.

    Args:
        char_spacing_p: chance of extra tracking between characters.
        char_spacing: tracking range.
        word_spacing: width range of a space relative to its normal width.
        pad_x: horizontal padding range on each side (0 is a tight crop; text is never cut).
        pad_y: vertical padding range above and below, drawn independently (text not always centred).
        tight_p: chance of a tight crop (padding near zero on all sides).
        max_height: taller crops are scaled down to at most this height.
        width_scale_p: chance of condensed or extended glyphs (the line stretched horizontally).
        width_scale: log-uniform stretch range; wide print (receipt double-width headers and totals, extended
            sans faces) is capped for long lines, which would otherwise exceed the trainer's width limit.
    """

    char_spacing_p: float = 0.25
    char_spacing: Range = (-0.04, 0.35)
    word_spacing: Range = (0.7, 2.0)
    pad_x: Range = (0.0, 0.8)
    pad_y: Range = (0.02, 0.4)
    tight_p: float = 0.2
    max_height: int = 64
    width_scale_p: float = 0.2
    width_scale: Range = (0.7, 2.0)

    def __post_init__(self) -> None:
        lo, hi = self.width_scale
        if not 0.0 < lo <= hi:
            raise ValueError(f"render.width_scale must be 0 < low <= high, got {self.width_scale}")


@dataclass(frozen=True)
class EffectConfig:
    """Probability of each appearance change and degradation, before scaling by ``SynthConfig.degrade``."""

    inverted: float = 0.12
    low_contrast: float = 0.15
    gradient_bg: float = 0.2
    paper_texture: float = 0.3
    clutter: float = 0.06
    underline: float = 0.06
    table_rules: float = 0.06
    box_border: float = 0.04
    neighbour_lines: float = 0.2
    rotation: float = 0.3
    shear: float = 0.15
    perspective: float = 0.15
    curve: float = 0.06
    ink_bleed: float = 0.12
    erosion: float = 0.08
    ink_dropout: float = 0.08
    faint_marks: float = 0.08
    dot_matrix: float = 0.06
    bitmap_font: float = 0.08
    shadow: float = 0.15
    uneven_light: float = 0.2
    thermal_fade: float = 0.06
    gaussian_blur: float = 0.25
    motion_blur: float = 0.08
    defocus_blur: float = 0.06
    low_res: float = 0.2
    noise: float = 0.35
    salt_pepper: float = 0.06
    binarize: float = 0.06
    jpeg: float = 0.35


@dataclass(frozen=True)
class SynthConfig:
    """Everything that defines the synthetic line distribution (with the seed, it fixes every sample).

    Args:
        max_chars: longest line in characters (curriculum: raise it as training goes).
        min_chars: shortest line.
        degrade: strength in [0, 1]; every effect probability is multiplied by it.

    >>> cfg = SynthConfig.load(None)
    >>> cfg.with_overrides(max_chars=12).max_chars
    12
    """

    max_chars: int = 60
    min_chars: int = 1
    degrade: float = 1.0
    text: TextConfig = field(default_factory=TextConfig)
    fonts: FontConfig = field(default_factory=FontConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    effects: EffectConfig = field(default_factory=EffectConfig)

    def __post_init__(self) -> None:
        if not 0.0 <= self.degrade <= 1.0:
            raise ValueError(f"degrade must be in [0, 1], got {self.degrade}")
        if not 1 <= self.min_chars <= self.max_chars:
            raise ValueError(f"need 1 <= min_chars <= max_chars, got {self.min_chars}, {self.max_chars}")

    def with_overrides(self, **kw: Any) -> SynthConfig:
        """A copy with top-level fields replaced (``max_chars``, ``degrade``, ...)."""
        return replace(self, **kw)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for reports and for storing next to a generated set)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SynthConfig:
        """Build from nested dicts; unknown keys raise ``ValueError`` naming their path."""
        return _build(cls, d, "")

    @classmethod
    def load(cls, path: str | Path | None) -> SynthConfig:
        """Read a YAML file, or the bundled defaults when ``path`` is None."""
        if path is None:
            text = resources.files("crnn_ocr").joinpath("assets/synth.yaml").read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError(f"synth config {path or 'synth.yaml'}: expected a mapping at the top level")
        return cls.from_dict(data)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Turn YAML values into the annotated type (lists into tuples, nested dicts into dataclasses)."""
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping")
        return _build(tp, value, where + ".")
    origin = getattr(tp, "__origin__", None)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list")
        args = tp.__args__
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise ValueError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping")
        return {str(k): float(v) for k, v in value.items()}
    if tp is float:
        return float(value)
    if tp is int:
        if isinstance(value, bool) or int(value) != value:
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    return value


def _build(cls: Any, d: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown synth settings: {', '.join(prefix + k for k in unknown)}")
    return cls(**{k: _coerce(hints[k], v, prefix + k) for k, v in d.items()})
