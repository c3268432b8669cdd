import numpy as np
import pytest
from conftest import frame_probs, make_tiny_onnx, render_line

from crnn_ocr import OCR, Recognizer
from crnn_ocr.charset import Charset
from crnn_ocr.preprocess import ImageDecodeError


@pytest.fixture(scope="module")
def rec(tiny_onnx):
    return Recognizer(tiny_onnx, threads=1, batch_size=3)


def test_batched_results_in_input_order(rec):
    texts = ["短", "a much longer English line here", "中等长度的一行", "12.50", "发票号码 No.12345 合计"]
    images = [render_line(t, lang="zh") for t in texts]
    batched = rec(images)
    single = [rec([img])[0] for img in images]
    assert [r.text for r in batched] == [r.text for r in single]
    assert [r.confidence for r in batched] == pytest.approx([r.confidence for r in single], rel=1e-4)


def test_single_image_and_mixed_input_types(rec, zh_line, tmp_path):
    from PIL import Image

    path = tmp_path / "l.png"
    Image.fromarray(zh_line).save(path)
    results = rec([zh_line, str(path), path.read_bytes(), Image.fromarray(zh_line)])
    assert len({r.text for r in results}) == 1
    assert rec(zh_line)[0].text == results[0].text


def test_char_spans_are_in_source_pixels(rec):
    img = render_line("一二三四五六七八九十" * 3, font_size=40, height=60)
    (res,) = rec([img])
    assert res.chars, "a random model still emits characters"
    assert all(0 <= c.x0 < c.x1 <= img.shape[1] + 1e-6 for c in res.chars)
    assert all(0.0 <= c.confidence <= 1.0 for c in res.chars)
    assert "".join(c.char for c in res.chars) == res.text
    assert res.to_dict()["text"] == res.text


def test_edge_margins_leave_char_spans_in_source_pixels(tiny_onnx):
    line = render_line("12.50 TOTAL", font_size=28, height=40, lang="en")
    img = np.full((40, line.shape[1] + 80), 255, dtype=np.uint8)
    img[:, 40: 40 + line.shape[1]] = line  # paper at both ends: margins are added
    plain = Recognizer(tiny_onnx, threads=1, edge_margin=0.0)([img])[0]
    # 12 model pixels a side, three whole frames of the stride-4 test model: the same frames come out, later
    margined = Recognizer(tiny_onnx, threads=1, edge_margin=0.375)([img])[0]
    assert plain.chars, "a random model still emits characters"
    def inside(chars):  # not read off the paper at the ends (or the added margins)
        return [c for c in chars if c.x0 > 0 and c.x1 < img.shape[1]]

    assert [c.char for c in inside(margined.chars)] == [c.char for c in inside(plain.chars)]
    assert all(0 <= c.x0 < c.x1 <= img.shape[1] + 1e-6 for c in margined.chars)
    pairs = zip(inside(margined.chars), inside(plain.chars), strict=True)
    assert all(a.x0 == pytest.approx(b.x0) and a.x1 == pytest.approx(b.x1) for a, b in pairs)
    with pytest.raises(ValueError, match="edge_margin"):
        Recognizer(tiny_onnx, threads=1, edge_margin=-1.0)


def test_metadata_decides_the_charset(tmp_path, zh_line):
    small = Charset(tuple("0123456789"))
    model = make_tiny_onnx(tmp_path / "digits.onnx", charset=small)
    r = Recognizer(model, threads=1)
    assert r.charset == small and r.name == "tiny_test"
    assert set(r([zh_line])[0].text) <= set("0123456789")


def test_bad_image_raises_clear_error(rec):
    with pytest.raises(ImageDecodeError):
        rec([b"garbage"])


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        Recognizer(tmp_path / "none.onnx")


def test_ocr_none_detector_boxes_whole_image(rec, zh_line):
    lines = OCR(detector="none", recognizer=rec)(zh_line)
    h, w = zh_line.shape
    if lines:
        assert lines[0].box == ((0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h)))
        assert lines[0].text == rec([zh_line])[0].text


def test_empty_batch_returns_empty(rec):
    assert rec([]) == []
    assert isinstance(np.float32(rec([render_line("x")])[0].confidence), np.floating)


def test_bundled_model_loads_verified_and_self_described(zh_line):
    from crnn_ocr.charset import default_charset
    from crnn_ocr.engine import bundled_model_path

    path = bundled_model_path(verify=True)  # sha256 checked against the shipped checksum
    assert path.stat().st_size <= 5_000_000
    rec = Recognizer(threads=1)
    assert rec.name == "crnn_lite"
    assert rec.charset.sha256 == default_charset().sha256
    (res,) = rec([zh_line])
    assert 0.0 <= res.confidence <= 1.0 and all(c in rec.charset for c in res.text)


def test_alphabet_restricts_every_line_and_call_overrides(tiny_onnx):
    texts = ["发票号码", "TOTAL 12.50", "合计¥88", "Jaya 81750"]
    images = [render_line(t, lang="zh") for t in texts]
    free = Recognizer(tiny_onnx, threads=1)([*images])
    assert any(set(r.text) - set("0123456789 ") for r in free)  # the random model reads more than digits
    rec = Recognizer(tiny_onnx, threads=1, alphabet="digits")
    for r in rec(images):
        assert set(r.text) <= set("0123456789 "), r.text
        assert all(0.0 <= c.confidence <= 1.0 for c in r.chars)
    for r in rec(images, alphabet="AB"):
        assert set(r.text) <= set("AB "), r.text
    ascii_lines = OCR(detector="none", recognizer=rec)(images[1], alphabet="ascii")
    assert all(set(ln.text) <= set(map(chr, range(32, 127))) for ln in ascii_lines)


def test_alphabet_outside_the_charset_fails_at_construction(tiny_onnx):
    with pytest.raises(ValueError, match="charset lacks"):
        Recognizer(tiny_onnx, threads=1, alphabet="12\U0001d11e")


def test_vertical_forms_are_not_read_in_horizontal_lines(tmp_path):
    from crnn_ocr.charset import is_vertical_form

    assert is_vertical_form("︰") and is_vertical_form("︵") and not is_vertical_form(":")
    assert not is_vertical_form("：") and not is_vertical_form("﹏")  # a horizontal wavy low line
    small = Charset(("︰", "a", "︵", "b"))
    assert small.vertical_form_classes() == [1, 3]
    model = make_tiny_onnx(tmp_path / "vertical.onnx", charset=small)
    images = [render_line(t, lang="zh") for t in ("TOTAL : 12", "（见下图）：", "ab:ba", "合计：88")]
    asked = Recognizer(model, threads=1, alphabet="︰a︵b")(images)
    assert any(set(r.text) & {"︰", "︵"} for r in asked)  # the random model does pick them
    free = Recognizer(model, threads=1)(images)
    assert all(set(r.text) <= {"a", "b", " "} for r in free), [r.text for r in free]
    assert [len(r.text) for r in free] != [0] * len(images)


def test_cjk_letters_and_punctuation_are_told_apart():
    from crnn_ocr.charset import is_cjk_letter, is_cjk_punct

    assert all(is_cjk_letter(c) for c in "合计〇かカ한ㄅ") and not any(is_cjk_letter(c) for c in "a1:：é")
    assert all(is_cjk_punct(c) for c in "：，（）、。《》〈＊﹏") and not any(is_cjk_punct(c) for c in ":,()*é合〇")
    letters, punct = Charset(("a", "合", "：", ":", "〇", "，")).cjk_classes()
    assert (letters, punct) == ([2, 5], [3, 6])


def test_latin_lines_read_ascii_punctuation_but_chinese_lines_keep_full_width(tmp_path):
    small = Charset(tuple("TOAL12合计:：(（。"))
    rec = Recognizer(make_tiny_onnx(tmp_path / "latin.onnx", charset=small), threads=1)
    unsure_colon = {"：": 0.55, ":": 0.4}
    latin = [{"T": 0.9}, {}, {"O": 0.9}, {}, {"L": 0.9}, unsure_colon, {"1": 0.9}, {}, {"2": 0.9}]
    dec = rec.decode(frame_probs(small, latin))
    assert small.decode(dec.labels) == "TOL:12"
    assert dec.char_probs[3] == pytest.approx(0.4)  # the model's probability of what was read
    off = Recognizer(rec.backend, latin_context_weight=1.0)
    assert small.decode(off.decode(frame_probs(small, latin)).labels) == "TOL：12"
    # The same colon after sure hanzi: a Chinese line keeps it.
    chinese = [{"合": 0.9}, {}, {"计": 0.8}, unsure_colon, {"1": 0.9}, {}, {"2": 0.9}]
    assert small.decode(rec.decode(frame_probs(small, chinese)).labels) == "合计：12"
    # A full-width form the model is sure of becomes its ASCII twin in a Latin line (they differ in width
    # only), keeping the model's confidence; a mark without a twin stays; too short a line is not judged Latin.
    sure = [{"T": 0.9}, {}, {"O": 0.9}, {"（": 0.9, "(": 0.05}, {"A": 0.9}, {"。": 0.9}]
    dec = rec.decode(frame_probs(small, sure))
    assert small.decode(dec.labels) == "TO(A。"
    assert dec.char_probs[2] == pytest.approx(0.9)
    assert small.decode(off.decode(frame_probs(small, sure)).labels) == "TO（A。"
    short = [{"T": 0.9}, unsure_colon]
    assert small.decode(rec.decode(frame_probs(small, short)).labels) == "T："
    # An unsure hanzi among Latin letters is revisited too.
    stray = [{"T": 0.9}, {}, {"合": 0.45, "A": 0.35}, {}, {"L": 0.9}]
    assert small.decode(rec.decode(frame_probs(small, stray)).labels) == "TAL"
    # An alphabet replaces the prior.
    asked = rec.allowed_classes("TOL12：")
    assert small.decode(rec.decode(frame_probs(small, latin), asked).labels) == "TOL：12"
    with pytest.raises(ValueError, match="latin_context_weight"):
        Recognizer(rec.backend, latin_context_weight=1.5)


@pytest.mark.parametrize(("read", "meant"), [
    ("RMO.5O", "RM0.50"), ("RM O.00", "RM 0.00"), ("$O.50", "$0.50"), ("2O18", "2018"), ("3 0O", "3 00"),
    ("O,OOO", "0,000"), ("(O%)", "(0%)"), ("TOTAL 1O.OO", "TOTAL 10.00"),
    # letters stay letters: words, abbreviations before a number, codes mixing letters and digits
    ("BOX 10", "BOX 10"), ("NO.5", "NO.5"), ("NO. 5", "NO. 5"), ("Kopi O (B)", "Kopi O (B)"),
    ("YO59522", "YO59522"), ("UNDO64", "UNDO64"), ("O. Henry", "O. Henry"), ("RMO", "RMO"), ("№o.2", "№o.2"),
])
def test_letter_o_inside_a_number_is_a_zero(read, meant):
    from crnn_ocr.engine.recognizer import zeros_in_numbers

    chars = list(read)
    for i in zeros_in_numbers(read):
        chars[i] = "0"
    assert "".join(chars) == meant


def test_decode_reads_zeros_in_numbers_unless_an_alphabet_is_given(tmp_path):
    small = Charset(tuple("RMO0.5"))
    rec = Recognizer(make_tiny_onnx(tmp_path / "zeros.onnx", charset=small), threads=1)
    frames = [{"R": 0.9}, {}, {"M": 0.9}, {}, {"O": 0.8, "0": 0.1}, {".": 0.9}, {"5": 0.9}]
    dec = rec.decode(frame_probs(small, frames))
    assert small.decode(dec.labels) == "RM0.5"
    assert dec.char_probs[2] == pytest.approx(0.8)
    assert small.decode(rec.decode(frame_probs(small, frames), rec.allowed_classes("RMO0.5")).labels) == "RMO.5"


def test_a_lone_greek_homoglyph_reads_as_latin_but_greek_words_stay(tmp_path):
    small = Charset(tuple("AΑ类ΔΒBβ"))
    rec = Recognizer(make_tiny_onnx(tmp_path / "greek.onnx", charset=small), threads=1, lexicon=None)

    def read(text: str) -> str:
        frames = [f for ch in text for f in ({ch: 0.9}, {})]
        return small.decode(rec.decode(frame_probs(small, frames)).labels)

    assert read("Α类") == "A类"                # Greek capital alpha: only context tells it from a Latin A
    assert read("ΑΒ类") == "AB类"
    assert read("ΑΔ") == "ΑΔ"                  # with a Greek letter of its own: Greek text
    assert read("ΑΒΑ") == "ΑΒΑ"                # three Greek letters make a Greek word
    alphabet = rec.allowed_classes("AΑ类")
    assert small.decode(rec.decode(frame_probs(small, [{"Α": 0.9}]), alphabet).labels) == "Α"  # an alphabet rules


def test_a_call_may_read_with_its_own_edge_margin(tiny_onnx):
    from crnn_ocr.engine.session import OrtBackend

    class Widths(OrtBackend):
        """Records the width of every batch it runs."""

        seen: list[int] = []

        def run(self, batch):
            self.seen.append(batch.shape[3])
            return super().run(batch)

    line = render_line("12.50 TOTAL", font_size=28, height=40, lang="en")
    img = np.full((40, line.shape[1] + 80), 255, dtype=np.uint8)
    img[:, 40: 40 + line.shape[1]] = line
    backend = Widths(tiny_onnx, 1)
    own = Recognizer(backend, edge_margin=0.375)
    plain = Recognizer(tiny_onnx, threads=1, edge_margin=0.0)
    pairs = ((own([img], edge_margin=0.0)[0], plain([img])[0]), (plain([img], edge_margin=0.375)[0], own([img])[0]))
    for a, b in pairs:
        assert a.text == b.text and a.confidence == pytest.approx(b.confidence)
    assert backend.seen[0] < backend.seen[1], "the call's margin, then the recogniser's own (wider)"
    with pytest.raises(ValueError, match="edge_margin"):
        own([img], edge_margin=-0.1)
