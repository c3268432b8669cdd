"""Line texts for synthesis: word frequencies, fake personal data, document strings and coverage lines.

Every text is a pure function of ``(rng, index)`` and per-process resources built once with fixed seeds
(jieba's dictionary, wordfreq's English list, a Faker pool), so sample ``i`` is the same in every worker.
No network: all sources are files of installed packages or generated here.

Coverage: every ``coverage_every``-th index is a *coverage line* whose rare characters are the next
``coverage_chars`` symbols of a seeded permutation of the charset, so every renderable symbol appears at
least once in every ``coverage_every * ceil(n / coverage_chars)`` consecutive samples, however rare it is
in natural text.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import pickle
import re
import string
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from crnn_ocr.charset import Charset, is_hanzi, is_vertical_form, normalize_text
from crnn_ocr.synth.config import TextConfig

ZH_PUNCT = "，。、；：！？"
ZH_PAIRS = ("“”", "《》", "（）", "【】", "「」", "『』", "〔〕")
EN_PUNCT = ",.;:!?"
_WORDS_PER_CHAR = 8


@dataclass
class CorpusData:
    """Word lists and pools shared by all samples of a process (read-only after construction)."""

    allowed: frozenset[str]
    zh_words: list[str]
    zh_cum: np.ndarray
    zh_by_char: dict[str, list[int]]
    en_words: list[str]
    en_cum: np.ndarray
    faker_zh: list[str]
    faker_en: list[str]
    symbols: str
    coverage_perm: list[str]


def _cumulative(weights: np.ndarray) -> np.ndarray:
    cum = np.cumsum(weights, dtype=np.float64)
    return cum / cum[-1]


def load_jieba_words(allowed: frozenset[str], max_len: int = 8) -> list[tuple[str, float]]:
    """Chinese words with their frequencies from jieba's bundled ``dict.txt``, restricted to ``allowed``."""
    text = resources.files("jieba").joinpath("dict.txt").read_text(encoding="utf-8")
    out = []
    for row in text.splitlines():
        parts = row.split(" ")
        if len(parts) < 2:
            continue
        word = parts[0]
        if len(word) > max_len or not any(is_hanzi(c) for c in word) or not set(word) <= allowed:
            continue
        try:
            out.append((word, float(parts[1])))
        except ValueError:
            continue
    return out


def load_english_words(allowed: frozenset[str], top_n: int) -> list[str]:
    """English words by frequency rank from wordfreq, restricted to ``allowed``."""
    from wordfreq import top_n_list

    return [w for w in top_n_list("en", top_n) if w.isascii() and set(w) <= allowed]


EN_LOCALES = ("en_US", "en_US", "en_GB", "en_AU", "en_IN", "en_MS", "en_PH")
"""Faker locales of the English pool (US twice): receipts and forms from everywhere English is printed
carry local street, town and company names (Jalan, Taman, Chowk, Sdn Bhd, Pty Ltd) and address formats."""
_FAKER_FIELDS_ZH = ("name", "address", "company", "phone_number", "job", "city", "street_address",
                    "company_prefix", "date", "ssn")
_FAKER_FIELDS_EN = ("name", "address", "company", "phone_number", "email", "url", "street_address", "job",
                    "date", "city")


FAKER_TODAY = datetime.date(2026, 1, 1)
"""The day Faker's dates and ID-card birthdays count back from. Its default, the day the pool is built, would
make the pool (and every sample drawn from it) change from one day to the next."""


@contextlib.contextmanager
def _faker_today(day: datetime.date) -> Iterator[None]:
    """Pin ``datetime.date.today()`` for Faker's zh_CN ID numbers (birthdays counted back from it)."""
    try:
        import faker.providers.ssn.zh_CN as ids
    except ImportError:  # another Faker layout: its IDs then follow the calendar
        yield
        return
    real = getattr(ids, "datetime", None)
    if real is not datetime:
        yield
        return

    class _Date(datetime.date):
        @classmethod
        def today(cls) -> _Date:
            return cls(day.year, day.month, day.day)

    ids.datetime = types.SimpleNamespace(date=_Date, timedelta=datetime.timedelta, datetime=datetime.datetime)
    try:
        yield
    finally:
        ids.datetime = real


def _fake(fake: Any, field: str) -> str:
    """One value of ``field``; dates end at :data:`FAKER_TODAY` rather than today."""
    if field == "date":
        return fake.date(end_datetime=datetime.datetime.combine(FAKER_TODAY, datetime.time()))
    return getattr(fake, field)()


def faker_pool(n: int, seed: int = 20240501) -> tuple[list[str], list[str]]:
    """Names, addresses, companies, phones... from Faker, generated once with fixed seeds (and a fixed day)."""
    from faker import Faker

    zh = Faker("zh_CN")
    zh.seed_instance(seed)
    en = [Faker(loc) for loc in EN_LOCALES]
    for j, f in enumerate(en):
        f.seed_instance(seed + 1 + j)
    with _faker_today(FAKER_TODAY):
        pool_zh = [_fake(zh, _FAKER_FIELDS_ZH[k % len(_FAKER_FIELDS_ZH)]) for k in range(n)]
    # Locale and field both cycle (7 and 10 are coprime), so every locale gives every field it has
    # (the others come from the US one: not every locale has phone numbers or e-mail domains).
    pool_en = []
    for k in range(n):
        field = _FAKER_FIELDS_EN[k % len(_FAKER_FIELDS_EN)]
        f = en[k % len(en)]
        pool_en.append(_fake(f if hasattr(f, field) else en[0], field))
    return [" ".join(s.split()) for s in pool_zh], [" ".join(s.split()) for s in pool_en]


def build_corpus(charset: Charset, cfg: TextConfig, renderable: frozenset[str], seed: int = 0) -> CorpusData:
    """Load every text source, restricted to characters some font can render.

    Args:
        charset: the model's symbols.
        cfg: text settings.
        renderable: symbols with at least one covering font (others are never sampled).
        seed: fixes the coverage permutation.
    """
    allowed = frozenset(s for s in charset.symbols
                        if s in renderable and normalize_text(s) in (s, "") and not is_vertical_form(s))
    allowed = allowed | ({" "} if " " in charset else set())
    zh = load_jieba_words(allowed)
    zh.sort(key=lambda wf: -wf[1])
    zh_words = [w for w, _ in zh]
    zh_cum = _cumulative(np.array([f for _, f in zh], dtype=np.float64) ** cfg.zh_freq_power)
    by_char: dict[str, list[int]] = {}
    for k, w in enumerate(zh_words):
        for c in set(w):
            lst = by_char.setdefault(c, [])
            if len(lst) < _WORDS_PER_CHAR:
                lst.append(k)
    en = load_english_words(allowed, cfg.en_top_n)
    en_cum = _cumulative((np.arange(len(en), dtype=np.float64) + 10.0) ** -cfg.en_rank_power)
    fz, fe = faker_pool(cfg.faker_pool) if cfg.faker_pool > 0 else ([], [])
    symbols = "".join(s for s in charset.symbols if s in allowed and not s.isalnum() and not s.isspace())
    perm_src = sorted(s for s in allowed if not s.isspace())
    perm = [perm_src[k] for k in np.random.default_rng((seed, 7919)).permutation(len(perm_src))]
    return CorpusData(allowed, zh_words, zh_cum, by_char, en, en_cum, fz, fe, symbols, perm)


def corpus_key(charset: Charset, cfg: TextConfig, renderable: frozenset[str], seed: int) -> str:
    """Cache key: everything the corpus is built from (inputs, package versions and this module's code)."""
    from importlib.metadata import version

    parts = [charset.sha256, "".join(sorted(renderable)), repr((cfg.zh_freq_power, cfg.en_top_n, cfg.en_rank_power,
                                                                 cfg.faker_pool, seed))]
    parts += [version(p) for p in ("jieba", "wordfreq", "Faker")]
    parts.append(hashlib.sha256(Path(__file__).read_bytes()).hexdigest())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def load_corpus(charset: Charset, cfg: TextConfig, renderable: frozenset[str], cache: Path | None,
                seed: int = 0) -> CorpusData:
    """:func:`build_corpus`, cached as a pickle in ``cache`` (seconds to build, a fraction of one to load).

    The cache is this user's own folder (like pip's); an unreadable or stale entry is rebuilt.
    """
    path = cache / "corpus" / f"{corpus_key(charset, cfg, renderable, seed)}.pkl" if cache else None
    if path is not None and path.is_file():
        try:
            with path.open("rb") as f:
                data = pickle.load(f)
            if isinstance(data, CorpusData):
                return data
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            pass
    data = build_corpus(charset, cfg, renderable, seed)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as f:
                pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            pass
    return data


# ---------------------------------------------------------------- small generators


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def zh_word(rng: np.random.Generator, cd: CorpusData) -> str:
    """A Chinese word, frequent ones more often."""
    return cd.zh_words[int(np.searchsorted(cd.zh_cum, rng.random()))] if cd.zh_words else ""


def en_word(rng: np.random.Generator, cd: CorpusData) -> str:
    """An English word, frequent ones more often."""
    return cd.en_words[int(np.searchsorted(cd.en_cum, rng.random()))] if cd.en_words else ""


def _case(rng: np.random.Generator, w: str, upper_p: float = 0.15, title_p: float = 0.2) -> str:
    u = rng.random()
    if u < upper_p:
        return w.upper()
    if u < upper_p + title_p:
        return w.capitalize()
    return w


def money(rng: np.random.Generator, big: bool = False) -> str:
    """A money figure without sign: 2 decimals, thousands separators for large values, sometimes whole."""
    v = float(rng.choice([rng.uniform(0, 100), rng.uniform(0, 10000), rng.uniform(0, 2_000_000)],
                         p=[0.5, 0.35, 0.15] if not big else [0.1, 0.4, 0.5]))
    s = f"{v:,.2f}" if v >= 1000 and rng.random() < 0.7 else f"{v:.2f}"
    return s.split(".")[0] if rng.random() < 0.1 else s


def amount(rng: np.random.Generator, big: bool = False) -> str:
    """A money amount as Chinese documents print it: mostly bare or in yuan, sometimes another currency."""
    s = money(rng, big)
    r = rng.random()
    if r < 0.3:
        return "¥" + s
    if r < 0.38:
        return "¥ " + s
    if r < 0.45:
        return s + "元"
    if r < 0.52:
        return _pick(rng, ("$", "RM", "€", "£", "US$", "HK$")) + s
    return s


def en_amount(rng: np.random.Generator) -> str:
    """A money amount as English receipts print it: bare or with a currency sign or code.

    Dollar, ringgit, euro or pound signs before it (the yuan sign is for Chinese lines: ``amount``); bare
    amounts sometimes have a code after them (``1.50 RM``), as Malaysian and export receipts print them.
    """
    sign = _pick(rng, ("", "", "", "", "$", "$", "$ ", "RM", "RM ", "€", "£", "-$", "S$"))
    code = _pick(rng, (" RM", " RM", " MYR", " USD", " SGD", " EUR", "RM")) if not sign and rng.random() < 0.2 else ""
    return sign + money(rng) + code


_CN_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_CN_UNITS = ("", "拾", "佰", "仟")


def amount_capital(rng: np.random.Generator) -> str:
    """An amount in Chinese financial capitals (大写金额), as printed on invoices."""
    yuan = int(rng.integers(1, 100000))
    parts, zero = [], False
    digits = str(yuan)
    for k, d in enumerate(digits):
        pos = len(digits) - 1 - k
        if d == "0":
            zero = True
            if pos == 4:
                parts.append("万")
            continue
        if zero and parts:
            parts.append("零")
        zero = False
        parts.append(_CN_DIGITS[int(d)] + _CN_UNITS[pos % 4] + ("万" if pos == 4 else ""))
    jiao = int(rng.integers(0, 10))
    tail = "元整" if jiao == 0 else f"元{_CN_DIGITS[jiao]}角"
    return "".join(parts).replace("万万", "万") + tail


_ZH_DIGITS = "〇一二三四五六七八九"


def cn_numeral(v: int) -> str:
    """1..99 in Chinese numerals, as dates and lists write them (九, 十, 十一, 二十, 二十八)."""
    tens, ones = divmod(v, 10)
    return (_ZH_DIGITS[tens] if tens > 1 else "") + ("十" if tens else "") + (_ZH_DIGITS[ones] if ones else "")


def date_str(rng: np.random.Generator) -> str:
    """A date (and sometimes a time) in Chinese, ISO or receipt formats."""
    y, m, d = int(rng.integers(1990, 2031)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    hh, mm, ss = int(rng.integers(0, 24)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    mon = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")[m - 1]
    cn_year = "".join(_ZH_DIGITS[int(c)] for c in str(y))  # 二〇二四: letters write years digit by digit
    cn_date = f"{cn_year}年{cn_numeral(m)}月{cn_numeral(d)}日"
    forms = (f"{y}年{m}月{d}日", f"{y}年{m:02d}月{d:02d}日", cn_date, f"{y}-{m:02d}-{d:02d}", f"{y}/{m:02d}/{d:02d}",
             f"{y}.{m:02d}.{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{d:02d} {mon} {y}", f"{m}/{d}/{y}",
             f"{y}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{ss:02d}", f"{d:02d}/{m:02d}/{y} {hh:02d}:{mm:02d}",
             f"{y}年{m}月{d}日 {hh:02d}:{mm:02d}", f"{hh:02d}:{mm:02d}", f"{d:02d}-{mon}-{str(y)[2:]}")
    return _pick(rng, forms)


def digits(rng: np.random.Generator, n: int) -> str:
    """``n`` random decimal digits."""
    return "".join(str(int(x)) for x in rng.integers(0, 10, n))


def code(rng: np.random.Generator) -> str:
    """Invoice codes, IDs, phone numbers, tax numbers, order numbers."""
    up = string.ascii_uppercase
    forms: tuple[Callable[[], str], ...] = (
        lambda: digits(rng, int(rng.integers(8, 13))),
        lambda: digits(rng, 17) + _pick(rng, "0123456789X"),
        lambda: "1" + _pick(rng, "3456789") + digits(rng, 9),
        lambda: f"{_pick(rng, ('010', '021', '0755', '020', '07', '03'))}-{digits(rng, int(rng.integers(7, 9)))}",
        lambda: "91" + digits(rng, 6) + "".join(_pick(rng, up + "0123456789") for _ in range(10)),
        lambda: " ".join(digits(rng, 4) for _ in range(int(rng.integers(3, 6)))),
        lambda: _pick(rng, ("No.", "NO.", "No:", "INV", "CS", "OR", "#")) + digits(rng, int(rng.integers(4, 10))),
        lambda: "".join(_pick(rng, up) for _ in range(2)) + digits(rng, int(rng.integers(6, 12))),
        lambda: f"({digits(rng, 6)}-{_pick(rng, up)})",
        lambda: f"+86 {digits(rng, 3)} {digits(rng, 4)} {digits(rng, 4)}",
    )
    return _pick(rng, forms)()


def percent(rng: np.random.Generator) -> str:
    """A percentage, sometimes signed."""
    v = _pick(rng, (f"{int(rng.integers(0, 101))}", f"{rng.uniform(0, 100):.1f}", f"{rng.uniform(0, 20):.2f}"))
    return _pick(rng, ("", "", "+", "-")) + v + "%"


def url_or_email(rng: np.random.Generator, cd: CorpusData) -> str:
    """A URL or an e-mail address from English words."""
    w1, w2 = en_word(rng, cd).lower() or "mail", en_word(rng, cd).lower() or "shop"
    tld = _pick(rng, (".com", ".cn", ".com.cn", ".net", ".org", ".io", ".gov.cn"))
    r = rng.random()
    if r < 0.4:
        return f"{w1}{_pick(rng, ('', '.', '_'))}{digits(rng, int(rng.integers(0, 4)))}@{w2}{tld}"
    if r < 0.7:
        return f"{_pick(rng, ('http://', 'https://', ''))}www.{w1}{w2}{tld}"
    return f"https://{w1}{tld}/{w2}/{digits(rng, int(rng.integers(1, 6)))}{_pick(rng, ('', '.html', '?id=7'))}"


def qty_price(rng: np.random.Generator) -> str:
    """Quantity times unit price, as on receipts."""
    q, p = int(rng.integers(1, 20)), rng.uniform(0.5, 500)
    return _pick(rng, (f"{q} × {p:.2f}", f"{q}x{p:.2f}", f"{q} X {p:.2f}", f"{q} @ {p:.2f}", f"x{q}",
                       f"{q}*{p:.2f}", f"{p:.2f} × {q} = {p * q:.2f}"))


def measure(rng: np.random.Generator) -> str:
    """A quantity with a unit (product specs, signs)."""
    v = _pick(rng, (str(int(rng.integers(1, 1000))), f"{rng.uniform(0, 100):.1f}"))
    return v + _pick(rng, ("ml", "ML", "g", "kg", "KG", "L", "cm", "mm", "m²", "km", "℃", "件", "个", "箱", "瓶",
                           "斤", "克", "元/斤", "pcs", "PCS", "只", "份", "人", "次", "小时", "分钟", "天",
                           "°", "°C", "°F", "%", "m³", "μm", "μg", "μl", "Ω", "kΩ", "mΩ"))


# ---------------------------------------------------------------- sources: (rng, data, target length) -> text


LIST_MARKS = ("• ", "· ", "●", "■ ", "◆", "▪ ", "- ", "* ", "1. ", "2、", "(1)", "（一）", "★", "√ ")
"""Item marks that open list lines (bullets, numbers) in Chinese documents, slides and product pages."""
NUMBERED_MARKS = ("①②③④⑤⑥⑦⑧⑨⑩", "⑴⑵⑶⑷⑸⑹⑺⑻⑼⑽", "⒈⒉⒊⒋⒌⒍⒎⒏⒐⒑", "㈠㈡㈢㈣㈤㈥㈦㈧㈨㈩", "ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩ",
                  "一二三四五六七八九十")
"""Enumerations printed as one symbol each (circled, parenthesised, Roman), and Chinese numerals."""
EN_LIST_MARKS = ("• ", "- ", "* ", "1. ", "2) ", "(a) ", "■ ", "▪ ", "> ", "o ")


def list_mark(rng: np.random.Generator, p: float = 0.04, marks: tuple[str, ...] = LIST_MARKS,
              numbered: float = 0.5) -> str:
    """A list item's mark with probability ``p``, else nothing; a ``numbered`` share are enumerations."""
    if rng.random() >= p:
        return ""
    if numbered and rng.random() < numbered:
        seq = _pick(rng, NUMBERED_MARKS)
        item = seq[int(rng.integers(0, 4)) if rng.random() < 0.7 else int(rng.integers(0, len(seq)))]
        return item + ("、" if seq[0] == "一" else _pick(rng, ("", "", " ", ".")))
    return _pick(rng, marks)


def src_zh_words(rng: np.random.Generator, cd: CorpusData, n: int) -> str:
    """Chinese words run together (titles, labels, signs), rarely punctuated.

    A middle dot joins some of them, as in titles, dynasty-and-author credits and transliterated names
    (``沁园春·雪``, ``宋·苏轼``, ``约翰·史密斯``).
    """
    out: list[str] = [list_mark(rng)]
    size = len(out[0])
    while size < n:
        w = zh_word(rng, cd)
        out.append(w)
        size += len(w)
        r = rng.random()
        if r < 0.06:
            out.append(_pick(rng, ZH_PUNCT))
            size += 1
        elif r < 0.075:
            out.append("·")
            size += 1
    return "".join(out).rstrip("·")


def src_zh_prose(rng: np.random.Generator, cd: CorpusData, n: int) -> str:
    """Chinese sentences with punctuation, quotes, numbers and the odd English word."""
    out: list[str] = [list_mark(rng)]
    size = len(out[0])
    while size < n:
        r = rng.random()
        if r < 0.04:
            w = str(int(rng.integers(1, 2030)))
        elif r < 0.06:
            w = _case(rng, en_word(rng, cd), 0.3, 0.4)
        elif r < 0.085:
            a, b = _pick(rng, ZH_PAIRS)
            w = a + zh_word(rng, cd) + _pick(rng, ("", "", "", "·")) + zh_word(rng, cd) + b
        elif r < 0.09:
            w = zh_word(rng, cd) + "·" + zh_word(rng, cd)
        else:
            w = zh_word(rng, cd)
        out.append(w)
        size += len(w)
        p = rng.random()
        if p < 0.16:
            # Dashes and ellipses are two-character marks in Chinese ("——", "……"); an em dash alone looks
            # like 一 (one), so the model must see it often enough to tell them apart by length and context.
            mark = "——" if p < 0.008 else "……" if p < 0.012 else _pick(rng, "，，，，。。、、；：！？")
            out.append(mark)
            size += len(mark)
    s = "".join(out)
    return s if rng.random() < 0.5 else s + _pick(rng, "。。，！？；：")


EN_PAIRS = ('""', "''", "()", "[]", "{}", "<>")
EN_JOINS = (" & ", "&", " / ", "-", " - ", " + ", "_", " | ", ": ", "~", " = ")
"""Symbols between English words: ``Fish & Chips``, ``R&D``, ``input_file``, ``A | B``."""


def _en_token(rng: np.random.Generator, cd: CorpusData) -> str:
    """A word, and now and then a number, a price, a percentage or a symbol-bearing token."""
    r = rng.random()
    if r < 0.04:
        return str(int(rng.integers(0, 10000)))
    if r < 0.06:
        return en_amount(rng)
    if r < 0.07:
        return percent(rng)
    if r < 0.08:
        return _pick(rng, ("#", "*", "^", "\\", "~", "`", "$", "@", "&")) + en_word(rng, cd)
    if r < 0.083:  # a Windows path: the backslash's usual place in print
        return (f"{_pick(rng, 'CDE')}:\\{en_word(rng, cd) or 'Users'}\\{en_word(rng, cd).lower() or 'file'}"
                f"{_pick(rng, ('.txt', '.pdf', '.xlsx', '.docx', ''))}")
    return en_word(rng, cd)


def src_en_words(rng: np.random.Generator, cd: CorpusData, n: int) -> str:
    """English text: words with varied case, punctuation, numbers, quotes, brackets and symbols."""
    style = rng.random()
    out: list[str] = []
    size = 0
    while size < n:
        w = _en_token(rng, cd)
        w = w.upper() if style < 0.15 else (w.capitalize() if style < 0.3 else _case(rng, w, 0.02, 0.12))
        if rng.random() < 0.1:
            w += _pick(rng, EN_PUNCT) if rng.random() < 0.9 else "'s"
        if rng.random() < 0.04:
            a, b = _pick(rng, EN_PAIRS)
            w = a + w + b
        if out and rng.random() < 0.05:
            out[-1] += _pick(rng, EN_JOINS) + w
        else:
            out.append(w)
        size += len(w) + 1
    s = " ".join(out)
    s = s[0].upper() + s[1:] if s and style >= 0.3 and rng.random() < 0.5 else s
    return list_mark(rng, 0.03, EN_LIST_MARKS, numbered=0.0) + s


_RECEIPT_WORDS = ("TOTAL", "SUBTOTAL", "SUB TOTAL", "GRAND TOTAL", "CASH", "CHANGE", "CHANGE DUE", "TAX",
                  "TAX INVOICE", "INVOICE", "RECEIPT", "QTY", "PRICE", "AMOUNT", "AMOUNT(RM)", "TOTAL (RM)",
                  "ROUNDING ADJ", "ROUNDING", "DISCOUNT", "VISA", "MASTERCARD", "DEBIT", "CREDIT CARD",
                  "BALANCE DUE", "TIP", "SERVICE CHARGE", "ITEM", "DESCRIPTION", "UNIT PRICE", "CASHIER",
                  "TABLE", "PAX", "BILL NO", "DOC NO", "TERMINAL", "THANK YOU", "PLEASE COME AGAIN",
                  "GOODS SOLD ARE NOT RETURNABLE", "TOTAL INCLUSIVE GST", "NET TOTAL", "TOTAL SALES",
                  "GST SUMMARY", "SR", "ZR", "COMPANY REG NO", "GST REG NO", "TEL", "FAX", "SDN BHD")
_STREET = ("JALAN", "JLN", "LORONG", "TAMAN", "STREET", "ROAD", "AVENUE", "AVE", "BLVD", "LANE", "NO", "LOT")
_STATES = ("JOHOR", "SELANGOR", "KUALA LUMPUR", "PENANG", "MELAKA", "CA", "NY", "TX", "LONDON", "SINGAPORE")


def src_en_receipt(rng: np.random.Generator, cd: CorpusData, n: int) -> str:
    """Upper-case receipt lines as printed by till printers."""
    up = lambda: en_word(rng, cd).upper()  # noqa: E731
    forms: tuple[Callable[[], str], ...] = (
        lambda: f"{_pick(rng, _RECEIPT_WORDS)}{_pick(rng, (' ', ': ', ' : ', ''))}{en_amount(rng)}",
        lambda: _pick(rng, _RECEIPT_WORDS),
        lambda: f"GST @{_pick(rng, ('6', '0', '10', '7'))}%{_pick(rng, (': ', ' '))}{en_amount(rng)}",
        lambda: f"{up()} {up()} {qty_price(rng)} {rng.uniform(1, 500):.2f}",
        lambda: f"{up()} {up()}",
        lambda: f"{int(rng.integers(1, 300))}, {_pick(rng, _STREET)} {up()} {int(rng.integers(1, 20))}/"
                f"{int(rng.integers(1, 20))},{_pick(rng, ('', ' '))}{up()} {up()}",
        lambda: f"{digits(rng, 5)} {up()}, {_pick(rng, _STATES)}",
        lambda: f"{up()} {_pick(rng, ('SDN BHD', 'SDN. BHD.', 'ENTERPRISE', 'TRADING', 'LTD', 'INC.', 'LLC'))}"
                f"{_pick(rng, ('', ' (' + digits(rng, 6) + '-' + _pick(rng, 'ADKTUVWX') + ')'))}",
        lambda: f"{_pick(rng, ('TEL', 'TEL NO', 'FAX', 'PHONE'))}{_pick(rng, (':', ': ', ' '))}"
                f"{digits(rng, 2)}-{digits(rng, int(rng.integers(7, 9)))}",
        lambda: f"{date_str(rng)} {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}",
        lambda: f"{_pick(rng, ('INV NO', 'BILL NO', 'DOC NO', 'RECEIPT #', 'ORDER #', 'CASHIER'))}"
                f"{_pick(rng, (': ', ':', ' '))}{code(rng) if rng.random() < 0.7 else up()}",
        lambda: f"{int(rng.integers(1, 10))} {up()} {en_amount(rng)} {_pick(rng, ('SR', 'ZR', 'S', 'Z', ''))}",
        lambda: f"{en_amount(rng)}",
        lambda: f"{up()} & {up()}{_pick(rng, ('', ' SDN BHD', ' CO.', ' (M) SDN BHD', ' LTD', ' CAFE'))}",
        lambda: f"{_pick(rng, ('NO', 'NO.', 'LOT', 'UNIT'))} {(a := int(rng.integers(1, 200)))}"
                f"{_pick(rng, ('&', ' & ', ', ', '-'))}{a + int(rng.integers(1, 4))}, {_pick(rng, _STREET)} {up()}",
        lambda: f"{'*' * (k := int(rng.integers(1, 9)))} {_pick(rng, _RECEIPT_WORDS)} {'*' * k}",
        lambda: separator_rule(rng),
        lambda: f"{up()} {en_amount(rng)}{_pick(rng, (' *', '*', ' S', ' Z', ' #', ''))}",
        lambda: f"{_pick(rng, 'SZEX')}{_pick(rng, ('=', ' = ', ': '))}{_pick(rng, ('SR', 'ZR', 'GST', 'TAX'))}"
                f" @{_pick(rng, ('0', '6', '7', '10'))}%",
        lambda: f"{up()} {_pick(rng, ('=', '-', '.', '_', '~')) * int(rng.integers(3, 12))} {en_amount(rng)}",
        lambda: f'"{up()} {up()}"',
    )
    s = _pick(rng, forms)()
    while len(s) < n - 8 and rng.random() < 0.6:
        s += " " + _pick(rng, forms)()
    if rng.random() < SPACED_COLON_P:
        s = spaced_colons(rng, s)
    return s


SEPARATOR_MARKS = "*" * 6 + "-" * 2 + "=" * 2 + "#.~_+"
"""Marks of receipt separator rules, weighted: stars are the commonest and, bold, look like 米."""


def separator_rule(rng: np.random.Generator) -> str:
    """A whole line of one repeated mark (``****...``, ``----...``), as receipts print between sections.

    The page detector keeps star and hash rules as lines (only flat rules are dropped), so they are read.
    """
    return _pick(rng, SEPARATOR_MARKS) * int(rng.integers(8, 45))


SPACED_COLON_P = 0.4
"""Share of receipt lines whose label colons are printed with a space before them (``TOTAL : 12.50``)."""
_LABEL_COLON = re.compile(r"(?<=[A-Za-z.)#%])\s?:\s?")


def spaced_colons(rng: np.random.Generator, s: str) -> str:
    """Put a space before the colons that follow a word (``DATE : 02/12``), as many till receipts print them.

    Spaced like this an ASCII colon looks like the full-width ``：`` (which carries its own spacing), and
    Latin text next to ``：`` is common in mixed Chinese lines, so without such lines English receipts are
    read with full-width colons. Times and ratios (``20:19``) keep theirs.
    """
    return _LABEL_COLON.sub(lambda _: _pick(rng, (" : ", " : ", " :")), s)


def src_mixed(rng: np.random.Generator, cd: CorpusData, n: int) -> str:
    """Chinese mixed with English words, numbers and units, with or without spaces between scripts."""
    spaced = rng.random() < 0.4
    out: list[str] = []
    size = 0
    while size < n:
        r = rng.random()
        if r < 0.55:
            w = zh_word(rng, cd)
        elif r < 0.75:
            w = _case(rng, en_word(rng, cd), 0.35, 0.3)
        elif r < 0.85:
            w = measure(rng)
        elif r < 0.92:
            w = _pick(rng, ("APP", "WiFi", "USB", "iPhone", "PDF", "VIP", "CEO", "AI", "GPS", "PM2.5", "5G",
                            "QQ", "ID", "IT", "OK", "LED", "ATM", "NBA", "DIY", "SUV", "Excel", "Python",
                            "α-", "β-", "γ-", "π", "Δ", "λ", "σ", "Ω", "μ", "Σ", "θ", "ω"))  # science and specs
        else:
            w = str(int(rng.integers(0, 10000)))
        prev_ascii = bool(out) and out[-1][-1:].isascii()
        if out and spaced and (prev_ascii or w[:1].isascii()):
            out.append(" ")
            size += 1
        out.append(w)
        size += len(w)
        if rng.random() < 0.06:
            out.append(_pick(rng, ZH_PUNCT))
    return "".join(out)


_ZH_FIELDS = ("发票代码", "发票号码", "开票日期", "校验码", "金额", "税额", "税率", "价税合计", "合计", "小计", "单价",
              "数量", "规格型号", "单位", "电话", "地址", "开户行及账号", "纳税人识别号", "订单号", "日期", "时间",
              "收款人", "复核", "开票人", "销售方", "购买方", "名称", "备注", "实收", "找零", "应付", "优惠",
              "会员卡号", "流水号", "收银员", "机器编号", "车次", "座位号", "检票口", "身份证号", "姓名", "性别",
              "民族", "出生", "住址", "有效期限", "签发机关", "邮编", "网址", "邮箱", "手机", "传真", "总计",
              "折扣", "应收", "支付宝", "微信支付", "现金", "积分", "余额", "门店", "编号", "项目", "费用")


def src_invoice(rng: np.random.Generator, cd: CorpusData, n: int) -> str:
    """Chinese invoice, receipt and ID-card fields: ``标签：值`` and bare values."""
    values: tuple[Callable[[], str], ...] = (
        lambda: amount(rng), lambda: amount(rng, big=True), lambda: date_str(rng), lambda: code(rng),
        lambda: percent(rng), lambda: qty_price(rng), lambda: url_or_email(rng, cd), lambda: measure(rng),
        lambda: amount_capital(rng), lambda: zh_word(rng, cd) + zh_word(rng, cd),
        lambda: _pick(rng, cd.faker_zh) if cd.faker_zh else zh_word(rng, cd),
    )
    sep = _pick(rng, ("：", ":", "： ", " ", ": ", ""))
    s = f"{_pick(rng, _ZH_FIELDS)}{sep}{_pick(rng, values)()}" if rng.random() < 0.75 else _pick(rng, values)()
    while len(s) < n - 6 and rng.random() < 0.7:
        gap = _pick(rng, (" ", "  ", " ", "", "；"))
        s += f"{gap}{_pick(rng, _ZH_FIELDS)}{sep}{_pick(rng, values)()}"
    return s


def src_faker(rng: np.random.Generator, cd: CorpusData, n: int) -> str:
    """Names, addresses, companies, phones, e-mails, dates from the Faker pool."""
    pool = cd.faker_zh if rng.random() < 0.6 else cd.faker_en
    if not pool:
        return src_zh_words(rng, cd, n)
    s = _pick(rng, pool)
    while len(s) < n - 6 and rng.random() < 0.5:
        s += _pick(rng, (" ", "，", ", ", "  ")) + _pick(rng, pool)
    return s


def src_digits(rng: np.random.Generator, cd: CorpusData, n: int) -> str:
    """Digit-heavy lines: numbers, codes, amounts, dates, times, tables of figures."""
    gens: tuple[Callable[[], str], ...] = (
        lambda: code(rng), lambda: amount(rng), lambda: date_str(rng), lambda: percent(rng),
        lambda: digits(rng, int(rng.integers(1, 12))), lambda: qty_price(rng),
        lambda: f"{rng.uniform(-1000, 1000):.{int(rng.integers(0, 4))}f}",
    )
    out = [_pick(rng, gens)()]
    while sum(map(len, out)) < n:
        out.append(_pick(rng, gens)())
    return _pick(rng, (" ", "  ", " ", "\t", " | ", "/")).join(out)


def src_punct(rng: np.random.Generator, cd: CorpusData, n: int) -> str:
    """Symbol- and punctuation-heavy lines: brackets, bullets, arrows, math, units, list markers."""
    out: list[str] = []
    size = 0
    while size < n:
        r = rng.random()
        if r < 0.35:
            w = _pick(rng, cd.symbols) if cd.symbols else "-"
            w = w * int(rng.integers(1, 4)) if rng.random() < 0.15 else w
        elif r < 0.55:
            a, b = _pick(rng, ZH_PAIRS + ("()", "[]", "{}", "<>", "〈〉", "〖〗", "''", '""'))
            w = a + (zh_word(rng, cd) if rng.random() < 0.6 else en_word(rng, cd)) + b
        elif r < 0.75:
            w = zh_word(rng, cd)
        elif r < 0.88:
            w = en_word(rng, cd)
        else:
            w = str(int(rng.integers(0, 1000)))
        out.append(w)
        size += len(w)
        if rng.random() < 0.2:
            out.append(" ")
    return "".join(out)


SOURCES: dict[str, Callable[[np.random.Generator, CorpusData, int], str]] = {
    "zh_words": src_zh_words,
    "zh_prose": src_zh_prose,
    "en_words": src_en_words,
    "en_receipt": src_en_receipt,
    "mixed": src_mixed,
    "invoice": src_invoice,
    "faker": src_faker,
    "digits": src_digits,
    "punct": src_punct,
}
"""Text sources by name (the keys of ``text.sources`` in ``synth.yaml``)."""


def coverage_chars(cd: CorpusData, j: int, m: int) -> list[str]:
    """The ``m`` permutation symbols of coverage line ``j`` (consecutive, wrapping around)."""
    n = len(cd.coverage_perm)
    return [cd.coverage_perm[(j * m + t) % n] for t in range(min(m, n))]


def coverage_line(rng: np.random.Generator, cd: CorpusData, j: int, m: int, max_chars: int) -> str:
    """A line holding coverage symbols ``j`` in context (a word containing each hanzi where one exists)."""
    chars = coverage_chars(cd, j, min(m, max_chars))
    pieces = []
    for c in chars:
        words = cd.zh_by_char.get(c)
        if words and rng.random() < 0.8:
            pieces.append(cd.zh_words[_pick(rng, words)])
        elif c.isascii() and c.isalpha() and rng.random() < 0.5:
            pieces.append(c + "".join(_pick(rng, string.ascii_lowercase) for _ in range(int(rng.integers(0, 5)))))
        else:
            pieces.append(c)
    budget = max_chars - sum(map(len, pieces))
    if budget < 0:
        pieces, budget = chars, max_chars - len(chars)
    extra = int(rng.integers(0, budget + 1)) if budget > 0 else 0
    filler = src_zh_prose(rng, cd, extra)[:extra] if extra else ""
    # Interleave the filler between the pieces so coverage symbols are seen in varied positions.
    cut = sorted(int(x) for x in rng.integers(0, len(filler) + 1, len(pieces)))
    out, prev = [], 0
    for piece, at in zip(pieces, cut, strict=True):
        out += [filler[prev:at], piece]
        prev = at
    out.append(filler[prev:])
    return "".join(out)


def clean(text: str, allowed: frozenset[str], max_chars: int) -> str:
    """Normalise, drop characters no font can render or the charset lacks, cut to ``max_chars``."""
    if not (set(text) <= allowed and "  " not in text and text == text.strip()):
        # (allowed symbols are their own normal form, so text made only of them needs no normalising)
        text = " ".join("".join(c for c in normalize_text(text) if c in allowed).split())
    if len(text) > max_chars:
        cut = max_chars
        if text[cut - 1].isascii() and text[cut - 1].isalnum() and text[cut].isascii() and text[cut].isalnum():
            space = text.rfind(" ", 0, cut)  # do not end an English line inside a word
            cut = space if space > max_chars // 2 else cut
        text = text[:cut].rstrip()
    return text


def line_length(rng: np.random.Generator, cfg: TextConfig, min_chars: int, max_chars: int) -> int:
    """Target line length: mostly short to medium, with a share of long lines (40+ characters)."""
    if rng.random() < cfg.long_line_p and max_chars > 30:
        return int(rng.integers(min(40, max_chars), max_chars + 1))
    n = 1 + int(rng.gamma(1.6, 7.0))
    return int(min(max(n, min_chars), max_chars))


def sample_text(rng: np.random.Generator, cd: CorpusData, cfg: TextConfig, index: int,
                min_chars: int, max_chars: int) -> tuple[str, str]:
    """The text of sample ``index`` and the name of its source (``coverage`` for coverage lines).

    The result is normalised, in the charset, renderable, 1..``max_chars`` characters long.
    """
    if cfg.coverage_every > 0 and index % cfg.coverage_every == 0:
        j = index // cfg.coverage_every
        text = clean(coverage_line(rng, cd, j, cfg.coverage_chars, max_chars), cd.allowed, max_chars)
        if text:
            return text, "coverage"
    names = sorted(cfg.sources)
    w = np.array([cfg.sources[k] for k in names], dtype=np.float64)
    cum = np.cumsum(w)
    name = names[min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(names) - 1)]
    n = line_length(rng, cfg, min_chars, max_chars)
    text = ""
    for _ in range(4):
        text = clean(SOURCES[name](rng, cd, n), cd.allowed, max_chars)
        if len(text) >= min_chars:
            break
    if not text:
        text = zh_word(rng, cd)[:max_chars] or "0"
    return text, name
