"""Synth settings: bundled defaults, partial user files, unknown keys rejected."""

from __future__ import annotations

import pytest

from crnn_ocr.synth import SynthConfig
from crnn_ocr.synth.corpus import SOURCES
from crnn_ocr.synth.stream import EFFECTS


def test_bundled_defaults_load():
    cfg = SynthConfig.load(None)
    assert cfg.max_chars >= 40 and cfg.degrade == 1.0
    assert set(cfg.text.sources) <= set(SOURCES)
    assert all(0.0 <= getattr(cfg.effects, e) <= 1.0 for e in EFFECTS)
    assert isinstance(cfg.fonts.sizes, tuple) and min(cfg.fonts.sizes) >= 16 and max(cfg.fonts.sizes) <= 48


def test_partial_file_keeps_other_defaults(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("max_chars: 20\neffects:\n  jpeg: 0.9\nrender:\n  pad_x: [0, 0.1]\n", encoding="utf-8")
    cfg = SynthConfig.load(p)
    assert cfg.max_chars == 20 and cfg.effects.jpeg == 0.9 and cfg.render.pad_x == (0.0, 0.1)
    assert cfg.effects.noise == SynthConfig().effects.noise


@pytest.mark.parametrize("text", ["max_char: 20\n", "effects:\n  jpg: 0.5\n", "text:\n  sources:\n    zh: 1\n"
                                  "  coverage_evry: 3\n"])
def test_unknown_keys_are_rejected(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="unknown synth settings"):
        SynthConfig.load(p)


@pytest.mark.parametrize("text", ["degrade: 2\n", "max_chars: 0\n", "max_chars: 2.5\n", "render:\n  pad_x: 3\n"])
def test_bad_values_are_rejected(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError):
        SynthConfig.load(p)


def test_with_overrides_returns_a_copy():
    cfg = SynthConfig.load(None)
    new = cfg.with_overrides(max_chars=12, degrade=0.3)
    assert (new.max_chars, new.degrade) == (12, 0.3) and cfg.max_chars != 12
    assert SynthConfig.from_dict(new.to_dict()) == new
