"""Printer degradations and busy backgrounds: dot-matrix dots, bitmap fonts, patchy ink, faint thermal print
and clutter stay legible and deterministic."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from conftest import render_line

from crnn_ocr.synth import SynthConfig, SynthStream
from crnn_ocr.synth import degrade as dg
from crnn_ocr.synth.stream import EFFECTS

SIZE = 44
HEIGHT = 0.78 * SIZE  # capitals above the baseline, as the stream passes it


@pytest.fixture(scope="module")
def ink() -> np.ndarray:
    """A solid-stroke ink mask (255 = ink) of a receipt line."""
    return 255 - render_line("TOTAL 12.50 AMOUNT", height=int(1.5 * SIZE), font_size=SIZE, lang="en")


@pytest.fixture(scope="module")
def line() -> np.ndarray:
    """A float gray line: dark ink on light paper."""
    return render_line("合计 TOTAL 12.50", height=48, font_size=32).astype(np.float32) * (200 / 255) + 40


def components(mask: np.ndarray) -> int:
    return cv2.connectedComponents((mask > 127).astype(np.uint8))[0] - 1


def within(a: np.ndarray, b: np.ndarray, radius: int) -> float:
    """Share of the ink of ``a`` that lies within ``radius`` pixels of the ink of ``b``."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    near = cv2.dilate((b > 127).astype(np.uint8), k).astype(bool)
    on = a > 127
    return float((on & near).sum() / max(on.sum(), 1))


def test_dot_matrix_keeps_shape_and_is_deterministic(ink):
    a = dg.dot_matrix(ink, np.random.default_rng(3), HEIGHT)
    assert a.shape == ink.shape and a.dtype == np.uint8
    assert np.array_equal(a, dg.dot_matrix(ink, np.random.default_rng(3), HEIGHT))
    assert not np.array_equal(a, dg.dot_matrix(ink, np.random.default_rng(4), HEIGHT))


@pytest.mark.parametrize("dense", [False, True])
def test_dot_matrix_breaks_strokes_into_dots_near_the_strokes(ink, dense):
    n0 = components(ink)
    dotted = [dg.dot_matrix(ink, np.random.default_rng(seed), HEIGHT, dense) for seed in range(8)]
    # Dots with gaps: many more pieces than solid strokes (some draws give beaded, joined dots).
    assert sum(components(d) for d in dotted) >= 4 * 8 * n0
    core = ink > 200
    for d in dotted:
        assert within(d, ink, 6) > 0.97  # dots lie on the strokes, not in the paper
        assert within(ink, d, 3) > 0.9  # and cover nearly all of them: still readable
    # The strokes really are broken: on average a good share of the old ink is now paper.
    gone = np.mean([(core & (d < 64)).sum() / core.sum() for d in dotted])
    assert gone > 0.15


def test_dot_matrix_of_an_empty_mask_is_empty():
    empty = np.zeros((30, 80), np.uint8)
    assert not dg.dot_matrix(empty, np.random.default_rng(0), 20.0).any()


def edges(mask: np.ndarray, axis: int) -> int:
    """How many columns (axis 1) or rows (axis 0) hold an ink/paper edge in any row (column)."""
    on = mask > 127
    return int((np.diff(on, axis=axis).any(axis=1 - axis)).sum())


@pytest.mark.parametrize("dense", [False, True])
def test_bitmap_font_puts_the_strokes_on_a_coarse_pixel_grid(ink, dense):
    big = cv2.resize(ink, (2 * ink.shape[1], 2 * ink.shape[0]), interpolation=cv2.INTER_LINEAR)
    for seed in range(8):
        b = dg.bitmap_font(big, np.random.default_rng(seed), 2 * HEIGHT, dense)
        assert b.shape == big.shape and b.dtype == np.uint8 and set(np.unique(b)) <= {0, 255}
        # Edges only on cell boundaries (cells >= 2.6 px): far fewer columns and rows hold one than in
        # the outline rendering, where nearly every inked column does.
        assert edges(b, 1) < 0.5 * edges(big, 1) and edges(b, 0) < 0.5 * edges(big, 0)
        assert within(b, big, 6) > 0.97 and within(big, b, 5) > 0.9  # same letters, no stroke lost
    assert np.array_equal(dg.bitmap_font(ink, np.random.default_rng(1), HEIGHT),
                          dg.bitmap_font(ink, np.random.default_rng(1), HEIGHT))


def test_bitmap_font_leaves_small_text_alone(ink):
    small = cv2.resize(ink, (ink.shape[1] // 4, ink.shape[0] // 4), interpolation=cv2.INTER_AREA)
    assert dg.bitmap_font(small, np.random.default_rng(0), HEIGHT / 4, dense=True) is small
    assert not dg.bitmap_font(np.zeros((30, 80), np.uint8), np.random.default_rng(0), 20.0).any()


def test_ink_dropout_breaks_strokes_but_keeps_most_ink(ink):
    n0, total = components(ink), float(ink.sum())
    outs = [dg.ink_dropout(ink, np.random.default_rng(seed), HEIGHT) for seed in range(8)]
    for out in outs:
        assert out.shape == ink.shape and out.dtype == np.uint8
        assert (out <= ink).all()  # ink is only taken away, never added to the paper
        assert 0.5 < out.sum() / total < 0.95
    assert sum(components(o) for o in outs) > 8 * n0  # strokes break into more pieces
    assert np.array_equal(outs[0], dg.ink_dropout(ink, np.random.default_rng(0), HEIGHT))
    assert not dg.ink_dropout(np.zeros((30, 80), np.uint8), np.random.default_rng(0), 20.0).any()


def test_thermal_fade_lowers_contrast_but_keeps_ink_darker(line):
    paper = float(np.median(line))
    text = line < 100
    assert text.mean() > 0.02
    before = paper - float(line[text].mean())
    for seed in range(8):
        out = dg.thermal_fade(line, paper, before, np.random.default_rng(seed))
        assert out.shape == line.shape and out.dtype == np.float32
        after = paper - float(out[text].mean())
        assert 0.1 * before < after < 0.8 * before
        clear = line >= paper - 1
        assert np.abs(out[clear] - line[clear]).max() < 1.5  # the paper stays as it was
        assert float(out.max()) <= float(line.max()) + 1e-3  # ink moves towards the paper, never past it


def test_thermal_fade_is_deterministic_and_keeps_a_legible_floor(line):
    paper = float(np.median(line))
    a = dg.thermal_fade(line, paper, 160.0, np.random.default_rng(5))
    assert np.array_equal(a, dg.thermal_fade(line, paper, 160.0, np.random.default_rng(5)))
    assert not np.array_equal(a, dg.thermal_fade(line, paper, 160.0, np.random.default_rng(6)))
    faint = np.full((20, 50), 200.0, np.float32)
    faint[5:15, 10:40] = 150.0  # only 50 levels of contrast to start with
    for seed in range(10):
        out = dg.thermal_fade(faint, 200.0, 50.0, np.random.default_rng(seed))
        # Apart from the light streaks, the ink keeps at least 35 levels.
        assert np.median(200.0 - out[5:15, 10:40]) >= 35.0 - 1e-3


def test_faint_marks_pale_the_dots_and_keep_the_letters():
    mask = 255 - render_line("DATE: 12.50", height=int(1.5 * SIZE), font_size=SIZE, lang="en")
    n, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 20).astype(np.uint8), connectivity=8)
    dots = [k for k in range(1, n) if stats[k, cv2.CC_STAT_HEIGHT] <= 0.3 * HEIGHT]
    letters = [k for k in range(1, n) if stats[k, cv2.CC_STAT_HEIGHT] > 0.5 * HEIGHT]
    assert len(dots) == 3 and len(letters) == 8  # the colon's two dots and the period; D A T E 1 2 5 0
    for seed in range(5):
        out = dg.faint_marks(mask, np.random.default_rng(seed), HEIGHT)
        assert out.shape == mask.shape and out.dtype == np.uint8 and (out <= mask).all()
        for k in letters:
            assert np.array_equal(out[labels == k], mask[labels == k])
        for k in dots:
            share = out[labels == k].sum() / mask[labels == k].sum()
            assert 0.15 <= share <= 0.6  # pale, yet still there
    assert np.array_equal(dg.faint_marks(mask, np.random.default_rng(0), HEIGHT),
                          dg.faint_marks(mask, np.random.default_rng(0), HEIGHT))
    assert not dg.faint_marks(np.zeros((30, 80), np.uint8), np.random.default_rng(0), 20.0).any()


@pytest.mark.parametrize("effect", ["dot_matrix", "bitmap_font", "ink_dropout", "faint_marks", "thermal_fade",
                                    "clutter"])
def test_stream_with_only_the_effect_gives_valid_lines(effect):
    cfg = SynthConfig.load(None)
    effects = dataclasses.replace(cfg.effects, **{n: float(n == effect) for n in EFFECTS})
    stream = SynthStream(dataclasses.replace(cfg, effects=effects, max_chars=16), seed=11)
    for i in range(12):
        s = stream.sample(i)
        assert s.effects == (effect,)
        img = s.image
        assert img.dtype == np.uint8 and img.ndim == 2 and 16 <= img.shape[0] <= 64 and img.shape[1] >= 4
        assert float(img.max()) - float(img.min()) > 30  # ink still stands out from the paper
        assert np.array_equal(img, stream.sample(i).image)


@pytest.mark.parametrize(("bg", "ink"), [(230.0, 30.0), (25.0, 220.0), (200.0, 120.0)])
def test_clutter_stays_on_the_background_side_of_the_ink(bg, ink):
    for seed in range(20):
        back = dg.clutter(40, 300, bg, ink, np.random.default_rng(seed))
        assert back.shape == (40, 300) and back.dtype == np.float32
        gap = (back - ink) * np.sign(bg - ink)  # distance from the ink towards the background
        assert gap.min() >= abs(bg - ink) / 3 - 1e-3
        assert back.min() >= 0 and back.max() <= 255
    busy = dg.clutter(40, 300, bg, ink, np.random.default_rng(1))
    assert busy.std() > 5  # not a flat field
    assert np.array_equal(busy, dg.clutter(40, 300, bg, ink, np.random.default_rng(1)))
