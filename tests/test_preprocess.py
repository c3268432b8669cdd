import io
import json

import numpy as np
import pytest
from PIL import Image

from crnn_ocr.preprocess import (
    ImageDecodeError,
    PreprocessConfig,
    is_light_on_dark,
    load_gray,
    pad_batch,
    padded_width,
    paper_margins,
    prepare_line,
    width_buckets,
)

CFG = PreprocessConfig()


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_gray_bgr_bgra_16bit_arrays(zh_line):
    bgr = np.stack([zh_line] * 3, axis=2)
    bgra = np.concatenate([bgr, np.full(zh_line.shape + (1,), 255, np.uint8)], axis=2)
    u16 = zh_line.astype(np.uint16) * 257
    for arr in (zh_line, bgr, bgra, u16, zh_line[..., None], zh_line.astype(np.float32) / 255):
        g = load_gray(arr)
        assert g.dtype == np.uint8 and g.shape == zh_line.shape
        assert np.abs(g.astype(int) - zh_line.astype(int)).max() <= 1


def test_transparent_png_is_composited_on_white():
    rgba = np.zeros((20, 40, 4), np.uint8)  # fully transparent black
    rgba[5:15, 10:30] = (0, 0, 0, 255)  # opaque black box
    g = load_gray(png_bytes(Image.fromarray(rgba, "RGBA")))
    assert g[0, 0] == 255 and g[10, 20] == 0


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK", "I;16", "1", "LA"])
def test_pil_modes_and_encoded_bytes(zh_line, mode):
    img = Image.fromarray(zh_line).convert(mode) if mode != "I;16" else Image.fromarray(
        zh_line.astype(np.uint16) * 257)
    for src in (img, png_bytes(img, "TIFF" if mode in ("CMYK", "I;16") else "PNG")):
        g = load_gray(src)
        assert g.shape == zh_line.shape
        assert abs(float(g.mean()) - float(zh_line.mean())) < 12


def test_path_input(tmp_path, zh_line):
    p = tmp_path / "line.png"
    Image.fromarray(zh_line).save(p)
    assert load_gray(p).shape == zh_line.shape
    assert load_gray(str(p)).shape == zh_line.shape


@pytest.mark.parametrize(
    "bad",
    [b"", b"not an image at all", png_bytes(Image.new("L", (50, 20)))[:40], np.zeros((0, 5), np.uint8),
     np.zeros((4, 4, 5), np.uint8), 12345, "/definitely/not/here.png"],
)
def test_bad_input_raises_clear_error(bad):
    with pytest.raises(ImageDecodeError):
        load_gray(bad)


def test_unknown_format_message_names_no_python_object():
    with pytest.raises(ImageDecodeError, match="not an image in a known format") as info:
        load_gray(b"plain text, not a picture")
    assert "BytesIO" not in str(info.value) and "0x" not in str(info.value)


def test_exif_orientation_applied():
    img = Image.new("L", (60, 20), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert load_gray(buf.getvalue()).shape == (60, 20)


def test_one_pixel_high_and_very_wide_lines():
    thin = np.full((1, 50), 200, np.uint8)
    out = prepare_line(thin, CFG)
    assert out.shape[0] == 32 and out.shape[1] <= CFG.max_width
    wide = np.full((32, 4000), 255, np.uint8)
    wide[10:20, 3900:3990] = 0  # ink at the far right must survive
    out = prepare_line(wide, CFG)
    assert out.shape == (32, 4000)
    assert out[:, 3900:3990].min() < out[:, :100].min()


def test_lines_wider_than_max_width_are_squeezed_not_cut():
    cfg = PreprocessConfig(max_width=256)
    line = np.full((32, 2000), 255, np.uint8)
    line[:, 1990:] = 0
    out = prepare_line(line, cfg)
    assert out.shape == (32, 256)
    assert out[:, -1].max() < 0  # the dark right edge is still there


def test_polarity_normalised(zh_line):
    inverted = 255 - zh_line
    assert not is_light_on_dark(zh_line) and is_light_on_dark(inverted)
    a, b = prepare_line(zh_line, CFG), prepare_line(inverted, CFG)
    assert np.abs(a - b).max() < 1e-5


def test_pad_batch_uses_background_and_buckets(zh_line):
    lines = [prepare_line(zh_line, CFG), prepare_line(zh_line[:, :60], CFG)]
    batch, widths = pad_batch(lines, CFG)
    assert batch.shape[0] == 2 and batch.shape[2] == 32
    assert batch.shape[3] % CFG.width_multiple == 0 and batch.shape[3] >= widths.max()
    short = int(widths[1])
    assert np.allclose(batch[1, 0, :, short:], np.percentile(lines[1], 90))
    assert padded_width(1, CFG) == CFG.min_width


def test_width_buckets_sorted_and_capped():
    widths = [500, 20, 300, 40, 1000, 30]
    groups = width_buckets(widths, max_batch=2)
    assert sorted(i for g in groups for i in g) == list(range(6))
    assert all(len(g) <= 2 for g in groups)
    flat = [widths[i] for g in groups for i in g]
    assert flat == sorted(widths)
    capped = width_buckets(widths, max_batch=10, max_pixels=1000)
    assert all(len(g) * max(widths[i] for i in g) <= 1000 or len(g) == 1 for g in capped)


def test_width_buckets_cap_the_padding():
    widths = [100, 104, 120, 126, 400, 90, 1000, 980]
    loose = width_buckets(widths, max_batch=8)
    assert len(loose) == 1  # without a cap, the 90-px line is padded to 1000
    groups = width_buckets(widths, max_batch=8, max_pad=0.25)
    assert sorted(i for g in groups for i in g) == list(range(len(widths)))
    for g in groups:
        ws = [widths[i] for i in g]
        assert max(ws) <= 1.25 * min(ws) + 8
    assert [sorted(widths[i] for i in g) for g in groups] == [[90, 100, 104, 120], [126], [400], [980, 1000]]


def test_config_round_trip_and_unknown_keys():
    cfg = PreprocessConfig(height=48, clahe=True)
    assert PreprocessConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        PreprocessConfig.from_dict({"heigth": 32})
    assert CFG.with_steps(["denoise"]).denoise
    with pytest.raises(ValueError):
        CFG.with_steps(["sharpen"])


@pytest.mark.parametrize("step", ["clahe", "denoise", "adaptive_threshold"])
def test_optional_steps_run(zh_line, step):
    out = prepare_line(zh_line, CFG.with_steps([step]))
    assert out.shape[0] == 32 and np.isfinite(out).all()


def test_paper_margins_go_only_where_the_edge_is_paper():
    line = np.full((32, 100), 1.0, dtype=np.float32)
    line[8:24, 20:80] = -1.0  # ink clear of both ends
    out, left = paper_margins(line, 0.4)
    assert left == 13 and out.shape == (32, 126)
    assert np.array_equal(out[:, 13:113], line) and np.all(out[:, :13] == 1.0) and np.all(out[:, 113:] == 1.0)
    touching = line.copy()
    touching[4:28, 0:3] = -1.0  # a rule or a cut glyph at the left edge: a margin would make it a lone mark
    out, left = paper_margins(touching, 0.4)
    assert left == 0 and out.shape == (32, 113) and np.array_equal(out[:, :100], touching)
    assert paper_margins(line, 0.0) == (line, 0)


def test_old_metadata_without_an_edge_margin_reads_as_none():
    d = PreprocessConfig(height=48, edge_margin=0.4)
    assert PreprocessConfig.from_json(d.to_json()) == d
    old = {k: v for k, v in json.loads(d.to_json()).items() if k != "edge_margin"}
    assert PreprocessConfig.from_dict(old).edge_margin == 0.0
