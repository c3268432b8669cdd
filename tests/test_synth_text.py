"""Line texts: normalised, in the charset, length-capped, and every charset symbol is reached."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crnn_ocr.charset import default_charset, normalize_text
from crnn_ocr.synth import SynthConfig, SynthStream
from crnn_ocr.synth.corpus import SOURCES, amount_capital, coverage_chars, sample_text


@pytest.fixture(scope="module")
def setup():
    cfg = SynthConfig.load(None)
    stream = SynthStream(cfg, charset=default_charset(), seed=0)
    return cfg, stream.resources.corpus


def texts(setup, n: int, max_chars: int = 60, start: int = 0):
    cfg, cd = setup
    for i in range(start, start + n):
        yield sample_text(np.random.default_rng((0, i)), cd, cfg.text, i, 1, max_chars)


def test_labels_are_normalised_and_in_charset(setup):
    cs = default_charset()
    for text, source in texts(setup, 3000):
        assert text == normalize_text(text), (source, text)
        assert 1 <= len(text) <= 60, (source, text)
        assert not cs.unknown(text), (source, text)


@pytest.mark.parametrize("cap", [1, 5, 12, 30])
def test_max_chars_caps_every_line(setup, cap):
    lengths = [len(t) for t, _ in texts(setup, 400, max_chars=cap)]
    assert max(lengths) <= cap and min(lengths) >= 1


def test_long_lines_are_present(setup):
    lengths = np.array([len(t) for t, _ in texts(setup, 1500)])
    assert (lengths >= 40).mean() > 0.05
    assert (lengths <= 10).mean() > 0.2


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_source_yields_text(setup, name):
    _, cd = setup
    for k in range(30):
        rng = np.random.default_rng((1, k))
        assert SOURCES[name](rng, cd, int(rng.integers(1, 50))).strip()


def test_source_mix_follows_config(setup):
    cfg, _ = setup
    seen = {s for _, s in texts(setup, 1000)}
    assert seen == set(cfg.text.sources) | {"coverage"}


def test_coverage_reaches_every_charset_symbol_within_bound(setup):
    cfg, cd = setup
    cs = default_charset()
    every, m = cfg.text.coverage_every, cfg.text.coverage_chars
    # Every renderable, non-space symbol is in the coverage permutation ...
    assert set(cd.coverage_perm) == {s for s in cs.symbols if s in cd.allowed and s != " "}
    # ... and a window of `bound` consecutive samples shows all of them, starting anywhere.
    bound = every * math.ceil(len(cd.coverage_perm) / m)
    start = 123457
    seen: set[str] = set()
    for i in range(start, start + bound):
        if i % every == 0:
            seen.update(sample_text(np.random.default_rng((0, i)), cd, cfg.text, i, 1, 60)[0])
    assert set(cd.coverage_perm) <= seen


def test_coverage_line_keeps_its_symbols_under_a_small_cap(setup):
    cfg, cd = setup
    for j in range(50):
        i = j * cfg.text.coverage_every
        text, source = sample_text(np.random.default_rng((0, i)), cd, cfg.text, i, 1, 4)
        assert source == "coverage"
        assert set(coverage_chars(cd, j, 3)) <= set(text)


@pytest.mark.parametrize("seed", range(5))
def test_capital_amounts_use_financial_numerals(seed):
    s = amount_capital(np.random.default_rng(seed))
    assert s.endswith(("元整", "角")) and set(s) <= set("零壹贰叁肆伍陆柒捌玖拾佰仟万元角整")


def test_chinese_prose_has_two_character_dashes_and_ellipses(setup):
    _, cd = setup
    lines = [SOURCES["zh_prose"](np.random.default_rng((2, k)), cd, 24) for k in range(1500)]
    dash = sum("——" in t for t in lines) / len(lines)
    dots = sum("……" in t for t in lines) / len(lines)
    assert 0.03 < dash < 0.2 and 0.015 < dots < 0.15, (dash, dots)
    assert not any("—" in t.replace("——", "") for t in lines)  # never a lone em dash


def test_every_ascii_symbol_appears_in_english_lines(setup):
    # Latin-only lines must show ASCII symbols in English context (``Fish & Chips``, ``$12.50``, ``"quoted"``),
    # or the model reads them as the full-width forms it saw in Chinese lines.
    import string

    counts = dict.fromkeys(string.punctuation, 0)
    for text, _ in texts(setup, 6000):
        if not any("\u4e00" <= c <= "\u9fff" for c in text):
            for c in text:
                if c in counts:
                    counts[c] += 1
    assert min(counts.values()) >= 2, sorted(counts.items(), key=lambda kv: kv[1])[:5]
    assert counts["&"] >= 20 and counts['"'] >= 20 and counts["$"] >= 20, counts


def test_english_amounts_carry_no_yuan_sign():
    from crnn_ocr.synth.corpus import en_amount

    signs = [en_amount(np.random.default_rng((4, k))) for k in range(400)]
    assert not any("¥" in s or "元" in s for s in signs)
    assert sum(s.startswith("$") for s in signs) > 20 and sum(s[:1].isdigit() for s in signs) > 100


def test_chinese_lines_show_middle_dots_and_list_marks(setup):
    # "宋·苏轼", "《沁园春·雪》", "约翰·史密斯": the middle dot must not be a rarity, or it is read as "." or "•".
    _, cd = setup
    lines = [SOURCES[name](np.random.default_rng((5, k)), cd, 20) for name in ("zh_words", "zh_prose")
             for k in range(1500)]
    dotted = sum("·" in t for t in lines) / len(lines)
    assert 0.01 < dotted < 0.15, dotted
    assert not any(t.endswith("·") for t in lines)
    from crnn_ocr.synth.corpus import LIST_MARKS

    marked = sum(t.startswith(LIST_MARKS) for t in lines) / len(lines)
    assert 0.01 < marked < 0.1, marked


@pytest.mark.parametrize(("v", "want"), [(1, "一"), (10, "十"), (11, "十一"), (20, "二十"), (28, "二十八")])
def test_chinese_numerals(v, want):
    from crnn_ocr.synth.corpus import cn_numeral

    assert cn_numeral(v) == want


def test_one_symbol_enumerations_and_chinese_dates_appear(setup):
    # ①②③, ⑴⑵, Ⅰ Ⅱ and 二〇二四年 are common in print; without them they only show up in coverage lines.
    from crnn_ocr.synth.corpus import NUMBERED_MARKS

    text = "".join(t for t, _ in texts(setup, 8000))
    for seq in NUMBERED_MARKS[:5]:
        assert sum(text.count(c) for c in seq) >= 3, seq
    assert text.count("〇") >= 10


def test_vertical_forms_never_appear_in_synthetic_text(setup):
    from crnn_ocr.charset import is_vertical_form

    cfg, corpus = setup
    vertical = [s for s in default_charset().symbols if is_vertical_form(s)]
    assert vertical  # the charset has one, the synthetic (horizontal) lines never show it
    assert not set(vertical) & corpus.allowed and not set(vertical) & set(corpus.coverage_perm)


def test_faker_pool_does_not_depend_on_the_day_it_is_built():
    import datetime
    import re

    from crnn_ocr.synth.corpus import FAKER_TODAY, faker_pool

    assert datetime.date.today() > FAKER_TODAY  # else this test could not tell the two apart
    zh, en = faker_pool(3000)
    dates = [datetime.date.fromisoformat(s) for s in zh + en if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s)]
    assert len(dates) >= 500 and max(dates) <= FAKER_TODAY
    # Chinese ID numbers: 6-digit area, birthday, 4 more; ages 18-90 counted from FAKER_TODAY, not today.
    ids = [s for s in zh if re.fullmatch(r"\d{17}[\dX]", s)]
    births = [datetime.date(int(s[6:10]), int(s[10:12]), int(s[12:14])) for s in ids]
    assert len(births) >= 250
    assert max(births) <= FAKER_TODAY.replace(year=FAKER_TODAY.year - 18)
    assert (zh, en) == faker_pool(3000)


def test_receipt_label_colons_are_often_spaced_but_times_are_not(setup):
    from crnn_ocr.synth.corpus import spaced_colons, src_en_receipt

    rng = np.random.default_rng(3)
    assert spaced_colons(rng, "DATE:02/12/2017 20:19:33").startswith("DATE :")
    assert spaced_colons(rng, "DATE:02/12/2017 20:19:33").endswith(" 20:19:33")
    assert spaced_colons(rng, "GST @6%: 0.46").startswith("GST @6% :")
    assert spaced_colons(rng, "RATIO 1:2") == "RATIO 1:2"
    _, corpus = setup
    lines = [src_en_receipt(np.random.default_rng((5, i)), corpus, 30) for i in range(3000)]
    colon = [s for s in lines if ":" in s]
    spaced = [s for s in colon if " :" in s]
    assert 0.2 < len(spaced) / len(colon) < 0.8  # both ways of printing them are common


def test_receipts_print_whole_separator_rules_mostly_of_stars(setup):
    from collections import Counter

    from crnn_ocr.synth.corpus import src_en_receipt

    _, corpus = setup
    lines = [src_en_receipt(np.random.default_rng((6, i)), corpus, 30) for i in range(3000)]
    rules = [s for s in lines if len(set(s)) == 1 and len(s) >= 8]
    assert 0.01 < len(rules) / len(lines) < 0.1
    marks = Counter(s[0] for s in rules)
    assert marks.most_common(1)[0][0] == "*" and len(marks) >= 4
    banners = [s for s in lines if s.startswith("****") and not set(s) <= {"*"}]
    assert banners  # long star runs around a word, as in ***** THANK YOU *****


def test_english_receipt_amounts_use_english_receipt_currencies(setup):
    from crnn_ocr.synth.corpus import en_amount, src_en_receipt

    rng = np.random.default_rng(8)
    amounts = [en_amount(rng) for _ in range(2000)]
    assert sum(a.endswith((" RM", " MYR", " USD", " SGD")) for a in amounts) > 40  # a code after the figure
    _, corpus = setup
    lines = [src_en_receipt(np.random.default_rng((9, i)), corpus, 30) for i in range(2000)]
    assert not any("¥" in s or "元" in s for s in lines)  # Chinese documents' amounts stay in Chinese lines
