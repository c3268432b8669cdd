import pytest

from crnn_ocr.evaluation import align, edit_distance, error_breakdown, score


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


@pytest.mark.parametrize(("t", "p"), [("", ""), ("abc", ""), ("", "xy"), ("kitten", "sitting"), ("发票号码", "发漂号"),
                                      ("ab", "ba"), ("TOTAL 12.50", "T0TAL12.5")])
def test_alignment_is_a_minimum_edit_script(t, p):
    pairs = align(t, p)
    assert "".join(a for a, _ in pairs) == t and "".join(b for _, b in pairs) == p
    assert all(a or b for a, b in pairs)
    assert sum(a != b for a, b in pairs) == edit_distance(t, p)


def test_error_breakdown_on_hand_counted_example():
    # O->0 (latin substituted), "0" of 12.50 deleted (digit), 合->今 (han), an extra "!" (punct inserted)
    b = error_breakdown([("TOTAL 12.50", "T0TAL 12.5"), ("合计", "今计!"), ("OK", "OK")])
    assert b.by_class["latin"] == {"chars": 7, "sub": 1, "del": 0, "ins": 0, "rate": 1 / 7}
    assert b.by_class["digit"] == {"chars": 4, "sub": 0, "del": 1, "ins": 0, "rate": 1 / 4}
    assert b.by_class["han"] == {"chars": 2, "sub": 1, "del": 0, "ins": 0, "rate": 1 / 2}
    assert b.by_class["punct"]["chars"] == 1 and b.by_class["punct"]["ins"] == 1
    assert sorted(b.confusions) == [("", "!", 1), ("0", "", 1), ("O", "0", 1), ("合", "今", 1)]
    total = sum(c["sub"] + c["del"] + c["ins"] for c in b.by_class.values())
    assert total == sum(edit_distance(t, p) for t, p in [("TOTAL12.50", "T0TAL12.5"), ("合计", "今计!")])


def test_error_breakdown_ranks_confusions_by_count():
    b = error_breakdown([("O0", "00"), ("OO", "0O"), ("l1", "11")], top=1)
    assert b.confusions == [("O", "0", 2)]


def test_error_breakdown_ignore_case_keeps_only_shape_errors():
    pairs = [("TOTAL AMOUNT", "Total Am0unt"), ("GST", "G3T")]
    cased = error_breakdown(pairs)
    folded = error_breakdown(pairs, ignore_case=True)
    assert ("O", "o", 1) in cased.confusions and folded.by_class["latin"]["sub"] == 2
    assert sorted(folded.confusions) == [("o", "0", 1), ("s", "3", 1)]
    assert cased.by_class["latin"]["sub"] > folded.by_class["latin"]["sub"]


def test_evaluate_set_ignore_case_lists_only_misreads(tmp_path):
    from crnn_ocr.evaluation import evaluate_set

    items = [(tmp_path / "a.png", "CASHIER"), (tmp_path / "b.png", "TOTAL")]
    preds = {"a.png": "Cashier", "b.png": "Tota1"}
    predict = lambda paths: [preds[p.name] for p in paths]  # noqa: E731
    both = evaluate_set(predict, items, "set", errors=5)
    folded = evaluate_set(predict, items, "set", errors=5, ignore_case=True)
    assert sorted(e["file"] for e in both.errors) == ["a.png", "b.png"]
    assert [e["file"] for e in folded.errors] == ["b.png"]
    assert folded.acc == both.acc == 0.0


def test_evaluate_set_hands_lines_over_in_chunks_in_order(tmp_path):
    from crnn_ocr.evaluation import evaluate_set

    items = [(tmp_path / f"{i}.png", str(i)) for i in range(7)]
    calls: list[int] = []

    def predict(paths):
        calls.append(len(paths))
        return [p.stem if p.stem != "4" else "x" for p in paths]

    m = evaluate_set(predict, items, "set", chunk=3)
    assert calls == [3, 3, 1]
    assert m.acc == 6 / 7  # predictions are matched to their own lines across chunks
