"""Synth packs: subset fonts render the same glyphs, and a stream reading a pack draws the same lines."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import numpy as np
import pytest

from crnn_ocr.charset import default_charset
from crnn_ocr.synth import stream as stream_mod
from crnn_ocr.synth.config import SynthConfig
from crnn_ocr.synth.fonts import FontLibrary, rasterise
from crnn_ocr.synth.pack import MANIFEST, PACK_ENV, build_pack, load_pack, subset_face
from crnn_ocr.synth.stream import Resources, SynthStream, load_resources

pytestmark = pytest.mark.skipif(shutil.which("fc-list") is None, reason="fontconfig not installed")


@pytest.fixture(scope="module")
def small_resources() -> tuple[SynthConfig, Resources]:
    """The real corpus with three faces (one CJK): enough to render mixed lines, quick to subset."""
    cfg = SynthConfig.load(None)
    charset = default_charset()
    full = load_resources(cfg, charset)
    lib = full.fonts
    cjk = [k for k in range(len(lib.faces)) if lib.is_cjk[k] and "Micro Hei" in lib.faces[k].name][:1]
    latin = [k for k in range(len(lib.faces)) if not lib.is_cjk[k]][:2]
    keep = cjk + latin
    if len(keep) < 2:
        pytest.skip("needs the font packages in packages.apt")
    small = FontLibrary([lib.faces[k] for k in keep], lib.coverage[keep], charset, cfg.fonts.cjk_weight,
                        cfg.fonts.weights)
    small.cache = None
    return cfg, Resources(small, full.corpus)


@pytest.fixture(scope="module")
def pack_dir(small_resources, tmp_path_factory):
    cfg, res = small_resources
    out = tmp_path_factory.mktemp("pack") / "pack"
    summary = build_pack(cfg, default_charset(), out, resources=res, progress=lambda _m: None)
    assert summary["faces"] == 3 and (out / MANIFEST).is_file()
    assert summary["font_bytes"] < sum(os.path.getsize(f.path) for f in res.fonts.faces)
    notices = (out / "LICENCES.md").read_text(encoding="utf-8")
    for font in (out / "fonts").iterdir():  # every packed font is listed with its copyright and licence
        assert f"## fonts/{font.name}" in notices
    assert notices.count("- copyright: ") == 3 and "not stated in the font" not in notices
    return out


def test_subset_font_renders_identical_glyphs(small_resources, tmp_path) -> None:
    from PIL import ImageFont

    _, res = small_resources
    face = res.fonts.faces[0]
    text = "中文发票Ag9：¥"
    out = tmp_path / "sub.ttf"
    size = subset_face(face, sorted({ord(c) for c in text}), str(out))
    assert 0 < size < 200_000  # a handful of glyphs, not the whole collection
    for px in (18, 33):
        a = ImageFont.truetype(face.path, px, index=face.index, layout_engine=ImageFont.Layout.BASIC)
        b = ImageFont.truetype(str(out), px, layout_engine=ImageFont.Layout.BASIC)
        for ch in text:
            ga, gb = rasterise(a, ch), rasterise(b, ch)
            assert (ga.left, ga.top, ga.advance) == (gb.left, gb.top, gb.advance), ch
            np.testing.assert_array_equal(ga.bitmap, gb.bitmap, err_msg=ch)


def test_stream_from_pack_draws_the_same_lines(small_resources, pack_dir, tmp_path, monkeypatch) -> None:
    cfg, res = small_resources
    charset = default_charset()
    monkeypatch.setenv(PACK_ENV, str(pack_dir))
    monkeypatch.setattr(stream_mod, "_CACHE", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    packed = SynthStream(cfg.with_overrides(max_chars=20), charset, seed=5)
    direct = SynthStream(cfg.with_overrides(max_chars=20), charset, seed=5)
    direct._res = res
    assert [f.name for f in packed.resources.fonts.faces] == [f.name for f in res.fonts.faces]
    assert all(f.path.startswith(str(pack_dir)) for f in packed.resources.fonts.faces)
    np.testing.assert_array_equal(packed.resources.fonts.weights, res.fonts.weights)
    for i in range(12):
        a, b = packed.sample(i), direct.sample(i)
        assert a.text == b.text and a.face.name == b.face.name
        np.testing.assert_array_equal(a.image, b.image)


def test_pack_refuses_other_settings_and_non_packs(small_resources, pack_dir, tmp_path) -> None:
    cfg, _ = small_resources
    charset = default_charset()
    with pytest.raises(ValueError, match="not a synth pack"):
        load_pack(tmp_path, cfg, charset)
    shutil.copytree(pack_dir, tmp_path / "pack")
    other = replace(cfg, fonts=replace(cfg.fonts, cjk_weight=cfg.fonts.cjk_weight + 1))
    with pytest.raises(ValueError, match="another charset"):
        load_pack(tmp_path / "pack", other, charset)
    with pytest.raises(ValueError, match="another charset"):
        load_pack(tmp_path / "pack", cfg, charset.extend(["\u2603"]))
    next((tmp_path / "pack" / "fonts").iterdir()).unlink()
    with pytest.raises(ValueError, match="missing"):
        load_pack(tmp_path / "pack", cfg, charset)


def test_reserved_font_names_are_replaced_in_subset_fonts(tmp_path) -> None:
    from fontTools.ttLib import TTFont

    from crnn_ocr.synth.fonts import discover_fonts
    from crnn_ocr.synth.pack import debian_package, package_copyright, reserved_names

    assert reserved_names("Copyright (c) 2012 Red Hat, Inc. with Reserved Font Name Liberation.") == ["Liberation"]
    assert reserved_names("(c) 2010 Google with Reserved Font Arimo, Tinos and Cousine.") == ["Arimo", "Tinos",
                                                                                            "Cousine"]
    assert reserved_names("Copyright (c) 2003 by Bitstream, Inc. All Rights Reserved.") == []
    face = next((f for f in discover_fonts() if f.name == "Liberation Sans Regular" and "liberation2" in f.path), None)
    licence = package_copyright(debian_package(face.path)) if face else ""
    if "Reserved Font Name Liberation" not in licence:
        pytest.skip("needs Liberation 2 from Debian (fonts-liberation2), whose licence reserves the name")
    out = tmp_path / "sub.ttf"
    subset_face(face, [ord(c) for c in "Total 12.50"], str(out), licence)
    names = TTFont(out)["name"]
    for i in (1, 4, 6):
        assert "Liberation" not in names.getDebugName(i) and "Packed" in names.getDebugName(i)
    assert names.getDebugName(0) == TTFont(face.path, lazy=True)["name"].getDebugName(0)  # notices unchanged
    assert reserved_names(licence) == ["Arimo", "Tinos", "Cousine", "Liberation"]  # not the OFL's own wording
