import pytest

from crnn_ocr.evaluation import edit_distance, score


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3), ("发票号码", "发漂号", 2), ("ab", "ba", 2)],
)
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d == edit_distance(b, a)


def test_metrics_on_hand_computed_examples():
    pairs = [
        ("TOTAL 12.50", "total 12.50"),  # case differs: alnum-ci right, exact wrong
        ("发票 号码", "发票号码"),  # space only: no-space right, exact wrong
        ("合计¥88", "合计¥88"),  # exact
        ("ABCD", "ABXD"),  # one substitution
    ]
    m = score(pairs, "hand")
    assert m.lines == 4
    assert m.acc == pytest.approx(1 / 4)
    assert m.acc_nospace == pytest.approx(2 / 4)
    assert m.acc_alnum_ci == pytest.approx(3 / 4)  # "发票 号码" has no ASCII alnum: equal
    # CER over space-free truths: distances 5 (case) + 0 + 0 + 1 over 10 + 4 + 5 + 4 chars.
    assert m.cer == pytest.approx(6 / 23)
    assert m.ned == pytest.approx((1 - 5 / 10 + 1 + 1 + 1 - 1 / 4) / 4)


def test_normalisation_applies_to_both_sides():
    m = score([("１２３", "123"), ("a\u3000b", "a b")], "norm")
    assert m.acc == 1.0 and m.cer == 0.0


def test_empty_set():
    m = score([], "empty")
    assert m.lines == 0 and m.acc == 0.0
