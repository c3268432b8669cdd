import hashlib

import pytest

from crnn_ocr.charset import BLANK, Charset, UnknownCharacterError, default_charset, normalize_text


def test_default_charset_contents():
    cs = default_charset()
    hanzi = [c for c in cs.symbols if "\u4e00" <= c <= "\u9fff"]
    assert len(hanzi) == 6763
    for c in [chr(x) for x in range(0x20, 0x7F)]:
        assert c in cs
    for c in "¥€£°±×÷№‰①…—·「」『』【】《》，。：；？！（）":
        assert c in cs, c
    assert BLANK == 0 and cs.num_classes == len(cs) + 1


def test_round_trip_through_file(tmp_path):
    cs = Charset(("a", " ", "中", "\\", "，"))
    p = tmp_path / "cs.txt"
    cs.save(p)
    assert "\\u0020" in p.read_text(encoding="utf-8")
    back = Charset.load(p)
    assert back == cs and back.sha256 == cs.sha256
    assert back.decode(back.encode("中 a\\")) == "中 a\\"


def test_hash_is_stable_and_order_sensitive():
    a, b = Charset(("x", "y")), Charset(("x", "y"))
    assert a.sha256 == b.sha256
    assert a.sha256 != Charset(("y", "x")).sha256
    # The hash is of the content itself, so it never depends on the process or the platform.
    assert a.sha256 == hashlib.sha256(b"x\ny").hexdigest()


def test_duplicates_and_multichar_rejected():
    with pytest.raises(ValueError, match="twice"):
        Charset(("a", "b", "a"))
    with pytest.raises(ValueError, match="single character"):
        Charset(("ab",))
    with pytest.raises(ValueError, match="twice"):
        Charset.from_text("a\nb\na\n")


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("１２３ＡＢＣａｂｃ", "123ABCabc"),  # full-width alnum -> ASCII
        ("你好，世界！", "你好，世界！"),  # Chinese punctuation kept as printed
        ("a  b\t\tc", "a b c"),  # runs of whitespace collapse
        ("  lead and trail  ", "lead and trail"),
        ("发票\u3000号码", "发票 号码"),  # ideographic space
        ("合计￥88", "合计¥88"),  # full-width yen -> yen
        ("zero\u200bwidth", "zerowidth"),
        ("Total:\u00a012.50", "Total: 12.50"),  # no-break space
        ("mixed中文English混排", "mixed中文English混排"),
        ("\uf900", "豈"),  # CJK compatibility ideograph -> unified
    ],
)
def test_normalisation_rules(raw, want):
    assert normalize_text(raw) == want


def test_normalisation_is_idempotent():
    for s in ["１２ ３", "a\u3000\u3000b", "（见下图）：", "¥1,234.50"]:
        assert normalize_text(normalize_text(s)) == normalize_text(s)


def test_unknown_characters_error_skip_replace():
    cs = Charset(("a", "b", " ", "?"))
    with pytest.raises(UnknownCharacterError) as e:
        cs.prepare("ab字")
    assert "字" in str(e.value) and e.value.unknown == ["字"]
    assert cs.prepare("ab字", on_unknown="skip") is None
    assert cs.prepare("ab字", on_unknown="replace") == "ab"
    assert cs.prepare("a字b", on_unknown="replace", replacement="?") == "a?b"
    with pytest.raises(UnknownCharacterError):
        cs.encode("c")


def test_decode_drops_blank_and_out_of_range():
    cs = Charset(("a", "b"))
    assert cs.decode([0, 1, 0, 2, 99, -1]) == "ab"


def test_extend_keeps_existing_indices():
    cs = Charset(("a", "b"))
    ext = cs.extend("bcd")
    assert ext.symbols[:2] == cs.symbols and ext.symbols[2:] == ("c", "d")
    assert ext.encode("ab") == cs.encode("ab")


def test_alphabet_presets_and_literal_characters():
    from crnn_ocr.charset import ALPHABETS, resolve_alphabet

    cs = default_charset()
    assert resolve_alphabet("digits") == "0123456789 "
    assert resolve_alphabet("ASCII") == ALPHABETS["ascii"][1:] + " "  # the space once, at the end
    assert resolve_alphabet("１２.-") == "12.- "  # normalised as labels are
    classes = cs.alphabet_classes("0123")
    assert classes[0] == 0 and cs.decode(classes[1:]) == "0123 "


def test_alphabet_errors_name_the_problem():
    cs = default_charset()
    with pytest.raises(ValueError, match="empty alphabet"):
        cs.alphabet_classes("   ")
    with pytest.raises(ValueError, match="charset lacks.*'Ω'"):
        Charset(("a", "b")).alphabet_classes("abΩ")


def test_hanzi_are_a_subset_of_the_cjk_letters():
    from crnn_ocr.charset import is_cjk_letter, is_hanzi

    hanzi = "合计㐀龥\uf900"  # basic block, extension A, a compatibility ideograph
    assert all(is_hanzi(c) for c in hanzi)
    assert not any(is_hanzi(c) for c in "〇かカ한ㄅa1：") and not is_hanzi("合计")
    assert all(is_cjk_letter(c) for c in hanzi + "〇かカ한ㄅ")
