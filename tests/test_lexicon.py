import gzip

import cv2
import numpy as np
import pytest
from conftest import FixedBackend, frame_probs, make_tiny_onnx

from crnn_ocr import Recognizer
from crnn_ocr.charset import Charset
from crnn_ocr.ctc import greedy_decode
from crnn_ocr.lexicon import Lexicon, bundled_lexicon, cased_like, correct_words

CHARSET = Charset(tuple("TotalSumryiI!09 OALs[]|"))
LEXICON = Lexicon.from_words(["total", "summary", "tools", "it's", "Tolls"])


def read(frames, lexicon=LEXICON, **kw):
    probs = frame_probs(CHARSET, frames)
    dec = correct_words(probs, greedy_decode(probs), CHARSET, lexicon, **kw)
    return CHARSET.decode(dec.labels), dec


def spelt(text, unsure=None):
    """Frames reading ``text`` with a blank between characters; ``unsure`` maps a position to its frame."""
    frames = []
    for k, ch in enumerate(text):
        frames += [(unsure or {}).get(k, {ch: 0.9}), {}]
    return frames


TOTAI = spelt("Totai", {4: {"i": 0.5, "l": 0.3}})  # the l the model half saw


def test_a_misread_word_becomes_the_lexicon_word_the_frames_allow():
    text, dec = read(TOTAI)
    assert text == "Total"
    assert dec.char_probs[4] == pytest.approx(0.3)  # the model's own probability of the new letter
    assert dec.spans[4] == (8, 8)
    assert dec.confidence < greedy_decode(frame_probs(CHARSET, TOTAI)).confidence


def test_the_margin_bounds_how_much_less_likely_the_lexicon_word_may_be():
    faint = spelt("Totai", {4: {"i": 0.9, "l": 0.001}})  # log odds 6.8
    assert read(faint)[0] == "Totai"
    assert read(faint, margin=7.0)[0] == "Total"
    assert read(TOTAI, margin=0.0)[0] == "Totai"  # 0.3 < 0.5: only an equally likely word would do


@pytest.mark.parametrize("text", [
    "Tools",          # in the lexicon already
    "Tol",            # shorter than min_len
    "Totai0",         # next to a digit: a code
    "9Sumrary",
])
def test_words_that_are_not_revisited(text):
    unsure = {k: {ch: 0.5, "i" if ch == "l" else "l": 0.4} for k, ch in enumerate(text) if ch.isalpha()}
    assert read(spelt(text, unsure))[0] == text


def test_every_word_of_a_line_is_revisited_and_the_rest_kept():
    frames = spelt("Sumrary ", {3: {"r": 0.5, "m": 0.4}}) + TOTAI + spelt(" 90")
    text, dec = read(frames)
    assert text == "Summary Total 90"
    assert len(dec.labels) == len(dec.char_probs) == len(dec.spans)
    assert all(a[1] < b[0] for a, b in zip(dec.spans, dec.spans[1:], strict=False))


@pytest.mark.parametrize(("read_as", "meant"), [("Tota]", "Total"), ("[otal", "Total"), ("TOTA|", "TOTAL")])
def test_a_thin_letter_read_as_a_mark_at_the_edge_of_a_word(read_as, meant):
    mark = next(k for k, ch in enumerate(read_as) if ch in "[]|")
    letter = meant[mark]
    text, _ = read(spelt(read_as, {mark: {read_as[mark]: 0.8, letter: 0.05}}))
    assert text == meant  # log odds 2.8, within the margin
    sure = spelt(read_as, {mark: {read_as[mark]: 0.9, letter: 0.001}})
    assert read(sure)[0] == read_as  # a mark the model is sure of stays


def test_marks_are_only_read_as_letters_not_dropped():
    lex = Lexicon.from_words(["total", "stop", "stops", "note"])
    assert lex.neighbours("tota]") == ["total"]
    assert lex.neighbours("stop!") == []  # "stop" would drop the mark, "stops" is no thin letter
    assert lex.neighbours("[note]") == []
    unsure = spelt("Total!", {5: {"!": 0.5, "l": 0.3, "i": 0.1}})
    assert read(unsure, lexicon=lex)[0] == "Total!"  # "totall" and "totali" are no words: the mark stays


def test_case_follows_the_frames():
    upper = spelt("TOTAI", {4: {"I": 0.5, "L": 0.3, "l": 0.05}})
    assert read(upper)[0] == "TOTAL"
    no_capital = Charset(tuple("TOAIl"))
    probs = frame_probs(no_capital, spelt("TOTAI", {4: {"I": 0.5, "l": 0.3}}))
    dec = correct_words(probs, greedy_decode(probs), no_capital, LEXICON)
    assert no_capital.decode(dec.labels) == "TOTAI"  # "TOTAL" is not in the charset, "TOTAl" not a case
    assert cased_like("SumRary", "summary") == ["summary", "Summary", "SUMMARY", "SumMary"]


def test_an_alphabet_limits_the_replacements():
    allowed = np.asarray([0, *CHARSET.encode("Totai")])
    assert read(TOTAI, allowed=allowed)[0] == "Totai"


def test_neighbours_are_one_edit_away():
    lex = Lexicon.from_words(["total", "totals", "tota", "otal", "toatl", "tidal", "it's", "Hello"])
    assert lex.neighbours("totai") == ["tota", "total"]
    assert lex.neighbours("Total") == ["otal", "toatl", "tota", "totals"]
    assert "it's" not in lex.words and "hello" in lex and "HELLO" in lex


def test_lexicon_file_round_trip(tmp_path):
    path = tmp_path / "words.txt.gz"
    path.write_bytes(gzip.compress(b"Total\nsummary\n"))
    assert Lexicon.load(path).words == {"total", "summary"}


def test_the_bundled_lexicon_holds_common_receipt_words():
    lex = bundled_lexicon()
    assert len(lex) > 10_000
    assert all(w in lex for w in ("total", "summary", "received", "adjustment", "change"))
    assert "totai" not in lex


def test_recognizer_uses_the_lexicon_unless_told_not_to(tmp_path):
    rec = Recognizer(make_tiny_onnx(tmp_path / "m.onnx", charset=CHARSET), threads=1, lexicon=LEXICON)
    probs = frame_probs(CHARSET, TOTAI)
    assert CHARSET.decode(rec.decode(probs).labels) == "Total"
    off = Recognizer(rec.backend, lexicon=None)
    assert CHARSET.decode(off.decode(probs).labels) == "Totai"
    assert Recognizer(rec.backend, lexicon=False).lexicon is None  # a flag, as the command line passes it
    assert Recognizer(rec.backend, lexicon=True).lexicon is bundled_lexicon()
    with pytest.raises(ValueError, match="lexicon_margin"):
        Recognizer(rec.backend, lexicon_margin=-1.0)


def test_each_line_and_request_chooses_whether_to_use_the_lexicon(tmp_path):
    from fastapi.testclient import TestClient

    from crnn_ocr.service import Settings, create_app

    tiny = Recognizer(make_tiny_onnx(tmp_path / "m.onnx", charset=CHARSET), threads=1)
    rec = Recognizer(FixedBackend(tiny.meta, frame_probs(CHARSET, TOTAI)), lexicon=LEXICON)
    line = np.full((32, 200), 255, np.uint8)
    assert [r.text for r in rec([line, line])] == ["Total", "Total"]
    assert rec([line], lexicon=False)[0].text == "Totai"
    mixed = rec.recognize_prepared([rec.prepare(line)] * 3, lexicons=[True, False, True])
    assert [r.text for r in mixed] == ["Total", "Totai", "Total"]
    png = cv2.imencode(".png", line)[1].tobytes()
    with TestClient(create_app(rec, Settings())) as client:
        files = {"image": ("l.png", png, "image/png")}
        assert client.post("/api/ocr", files=files).json()["text"] == ["Total"]
        assert client.post("/api/ocr?lexicon=false", files=files).json()["text"] == ["Totai"]
        assert client.post("/api/ocr", files=files, data={"lexicon": "0"}).json()["text"] == ["Totai"]
        bad = client.post("/api/ocr", files=files, data={"lexicon": "maybe"})
        assert bad.status_code == 400 and "lexicon" in bad.json()["error"]
