"""Regenerate ``crnn_ocr/assets/charset.txt`` from its definition (GB2312 + ASCII + document symbols).

Run once when the definition changes; the file is the source of truth afterwards, and its hash is
stored in every checkpoint and exported model.
"""

from __future__ import annotations

from pathlib import Path

from crnn_ocr.charset import Charset, normalize_text

ROOT = Path(__file__).resolve().parents[1]


def gb2312_rows(rows: range) -> list[str]:
    """Characters of GB2312 rows (1-based row numbers), in code order."""
    out = []
    for row in rows:
        for col in range(0xA1, 0xFF):
            try:
                ch = bytes([0xA0 + row, col]).decode("gb2312")
            except UnicodeDecodeError:
                continue
            out.append(ch)
    return out


def build() -> Charset:
    """The default charset, in a stable order: ASCII, symbols, then GB2312 hanzi."""
    ascii_ = [chr(c) for c in range(0x20, 0x7F)]
    # GB2312 row 1 (punctuation), row 2 (numbers such as ① ⑴ Ⅳ), row 6 (Greek), row 8 (pinyin).
    gb_symbols = gb2312_rows(range(1, 3)) + gb2312_rows(range(6, 7)) + gb2312_rows(range(8, 9))
    fullwidth_punct = [chr(c) for c in range(0xFF01, 0xFF5F)]
    extra = list(
        "¥€£¢°±×÷№‰™®©§¶µ·•●○■□★☆▲△▼▽◆◇→←↑↓↔※℃℉Ω‖…—–‘’“”「」『』【】〔〕〖〗《》〈〉"
        "、。〃々〆〇︰﹏①②③④⑤⑥⑦⑧⑨⑩ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩ√∞≈≠≤≥∑∏∫∵∴‰¹²³½¼¾",
    )
    hanzi = gb2312_rows(range(16, 88))
    symbols: list[str] = []
    for ch in ascii_ + gb_symbols + fullwidth_punct + extra + hanzi:
        ch = normalize_text(ch) if not ch.isspace() else " "
        if len(ch) == 1 and ch not in symbols and not "\u3100" <= ch <= "\u312f":
            symbols.append(ch)
    return Charset(tuple(symbols))


if __name__ == "__main__":
    cs = build()
    out = ROOT / "crnn_ocr" / "assets" / "charset.txt"
    cs.save(out)
    print(f"{len(cs)} symbols, sha256 {cs.sha256[:16]} -> {out}")
