"""The synthetic stream: deterministic per (seed, index), fonts only for characters they have, curriculum."""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest

from crnn_ocr.charset import default_charset, normalize_text
from crnn_ocr.synth import SynthConfig, SynthStream
from crnn_ocr.synth.fonts import FontFace, read_cmap


@functools.cache
def cmap_of(face: FontFace) -> set[int]:
    return read_cmap(face)


@pytest.fixture(scope="module")
def stream() -> SynthStream:
    return SynthStream(SynthConfig.load(None), charset=default_charset(), seed=1234)


def test_samples_are_gray_lines_with_normalised_labels(stream):
    cs = default_charset()
    for i in range(60):
        img, text = stream[i]
        assert img.dtype == np.uint8 and img.ndim == 2 and img.flags.c_contiguous
        assert 16 <= img.shape[0] <= 64 and img.shape[1] >= 4
        assert text and text == normalize_text(text) and not cs.unknown(text)


def test_same_seed_and_index_give_identical_samples(stream):
    other = pickle.loads(pickle.dumps(stream))
    for i in (0, 7, 12345):
        a, ta = stream[i]
        b, tb = other[i]
        assert ta == tb and np.array_equal(a, b)
    # Order of access does not matter.
    assert np.array_equal(stream[3][0], stream[3][0])


def test_different_index_or_seed_give_different_samples(stream):
    a, ta = stream[5]
    b, tb = stream[6]
    assert ta != tb or a.shape != b.shape or not np.array_equal(a, b)
    c, tc = SynthStream(stream.cfg, charset=stream.charset, seed=1235)[5]
    assert tc != ta or c.shape != a.shape or not np.array_equal(a, c)


def test_stream_pickles_small_without_loaded_resources(stream):
    stream.resources  # noqa: B018
    assert len(pickle.dumps(stream)) < 1_000_000
    assert pickle.loads(pickle.dumps(stream))._res is None


def test_font_is_never_used_for_a_character_it_lacks(stream):
    for i in range(40):
        s = stream.sample(i)
        cmap = cmap_of(s.face)
        assert all(ord(c) in cmap for c in s.text), (s.face.name, s.text)


@pytest.mark.parametrize("text", ["⒇㈩〓鬏", "鼋鼍龠", "ǘǚ℃№", "Hello 发票"])
def test_rare_characters_get_a_covering_face(stream, text):
    lib = stream.resources.fonts
    for k in range(15):
        face = lib.faces[lib.pick(text, np.random.default_rng(k))]
        assert all(ord(c) in cmap_of(face) for c in text), face.name


def test_latin_only_faces_never_get_hanzi(stream):
    lib = stream.resources.fonts
    latin = [k for k, f in enumerate(lib.faces) if "DejaVu" in f.family or "Liberation" in f.family]
    assert latin and not set(lib.faces_for("中文").tolist()) & set(latin)


def test_with_overrides_caps_length_and_turns_degradations_off(stream):
    easy = stream.with_overrides(max_chars=6, degrade=0.0)
    assert easy.cfg.max_chars == 6 and stream.cfg.max_chars == 60
    for i in range(40):
        s = easy.sample(i)
        assert 1 <= len(s.text) <= 6
        assert s.effects == ()


def test_with_overrides_rejects_bad_strength(stream):
    with pytest.raises(ValueError):
        stream.with_overrides(degrade=1.5)


def test_every_charset_symbol_is_renderable_here(stream):
    assert stream.missing_chars() == []


def test_negative_index_is_refused(stream):
    with pytest.raises(IndexError):
        stream[-1]


def test_glyph_from_atlas_equals_glyph_rendered_alone(stream, tmp_path):
    from crnn_ocr.synth.fonts import FontLibrary

    lib = stream.resources.fonts
    k = next(i for i, f in enumerate(lib.faces) if f.family == "DejaVu Serif")
    alone = lib.glyph(k, 22, "g")
    fresh = FontLibrary(lib.faces, lib.coverage, lib.charset)
    fresh.cache = tmp_path
    atlas = fresh.atlas(k, 22)
    g = atlas.glyph(lib.col("g"))
    assert (g.left, g.top, g.advance) == (alone.left, alone.top, alone.advance)
    assert np.array_equal(g.bitmap, alone.bitmap)


@pytest.mark.parametrize("seed", range(6))
def test_crop_never_cuts_the_text_even_tight_and_warped(stream, seed):
    from crnn_ocr.synth import render as rd

    lib = stream.resources.fonts
    rng = np.random.default_rng(seed)
    text = "Tight 裁剪 jQ|" * (1 + seed)
    face = lib.pick(text, rng)
    size = 22
    m = rd.render_masks(text, lib.glyph_fn(face, size), size, rd.Layout(tracking=seed - 2.0), size, size)
    m = rd.apply_warp(m, rd.warp_matrix(rng, m.box, size, True, True, True))
    text_crop, _ = rd.crop(m, (0, 0, 0, 0))
    assert int(text_crop.sum()) == int(m.text.sum())


def test_width_scale_stretches_short_lines_and_never_widens_long_ones():
    from crnn_ocr.synth.stream import stretch_x, width_scale

    rng = np.random.default_rng(0)
    short = [width_scale(rng, (0.7, 2.0), 8) for _ in range(400)]
    assert 0.7 <= min(short) < 0.8 and 1.9 < max(short) <= 2.0
    assert sum(f > 1 for f in short) > sum(f < 1 for f in short)  # log-uniform: wide more often than narrow
    assert max(width_scale(rng, (0.7, 2.0), 40) for _ in range(200)) <= 1.0
    mask = np.zeros((30, 50), np.uint8)
    mask[10:20, 5:15] = 255
    wide, deco = stretch_x(mask, mask.copy(), 2.0)
    assert wide.shape == deco.shape == (30, 100)
    cols = np.flatnonzero(wide.max(axis=0) > 127)
    assert 9 <= cols[0] <= 11 and 28 <= cols[-1] <= 30  # the ink moved with the stretch


def test_extended_print_widens_the_line(stream):
    import dataclasses

    base = stream.cfg.with_overrides(max_chars=6, degrade=0.0)
    wide = dataclasses.replace(base, render=dataclasses.replace(base.render, width_scale_p=1.0, width_scale=(2.0, 2.0)))
    plain = dataclasses.replace(base, render=dataclasses.replace(base.render, width_scale_p=0.0))
    for i in range(1, 6):
        a, b = SynthStream(wide, seed=3).sample(i), SynthStream(plain, seed=3).sample(i)
        assert a.text == b.text
        ratio = (a.image.shape[1] / a.image.shape[0]) / (b.image.shape[1] / b.image.shape[0])
        assert 1.7 < ratio < 2.3, (a.text, ratio)
    with pytest.raises(ValueError, match="width_scale"):
        dataclasses.replace(base.render, width_scale=(0.0, 2.0))
