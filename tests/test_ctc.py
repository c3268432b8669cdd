import itertools

import numpy as np
import pytest

from crnn_ocr.ctc import beam_decode, ctc_align, ctc_log_likelihoods, greedy_decode, greedy_decode_batch


def one_hot_probs(path, classes=5, p=0.9):
    probs = np.full((len(path), classes), (1 - p) / (classes - 1), dtype=np.float32)
    probs[np.arange(len(path)), path] = p
    return probs


def reference_collapse(path):
    return tuple(k for k, _ in itertools.groupby(path) if k != 0)


@pytest.mark.parametrize(
    ("path", "labels"),
    [
        ([], ()),
        ([0, 0, 0], ()),
        ([1], (1,)),
        ([1, 1, 1], (1,)),
        ([1, 0, 1], (1, 1)),  # a blank separates repeated characters
        ([1, 1, 0, 0, 1, 2, 2], (1, 1, 2)),
        ([0, 3, 0, 3, 3, 0], (3, 3)),
        ([2, 3, 2, 3], (2, 3, 2, 3)),
        ([0, 0, 4], (4,)),
    ],
)
def test_collapse_rules(path, labels):
    d = greedy_decode(one_hot_probs(path) if path else np.zeros((0, 5), np.float32))
    assert d.labels == labels
    assert len(d.char_probs) == len(d.spans) == len(labels)


def test_exhaustive_against_reference():
    for n in range(1, 6):
        for path in itertools.product(range(3), repeat=n):
            d = greedy_decode(one_hot_probs(list(path), classes=3))
            assert d.labels == reference_collapse(path), path


def test_spans_and_confidences():
    probs = one_hot_probs([0, 1, 1, 0, 2, 0], p=0.8)
    probs[2, 1] = 0.95
    d = greedy_decode(probs)
    assert d.labels == (1, 2)
    assert d.spans == ((1, 2), (4, 4))
    assert d.char_probs[0] == pytest.approx(0.95)  # the best frame of the run
    assert d.char_probs[1] == pytest.approx(0.8)
    assert d.confidence == pytest.approx(np.sqrt(0.95 * 0.8), rel=1e-5)


def test_length_limits_frames():
    probs = one_hot_probs([1, 0, 2, 0, 3])
    assert greedy_decode(probs, length=3).labels == (1, 2)
    assert greedy_decode(probs, length=0).labels == ()


def test_batch_matches_single():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(6), size=(4, 12)).astype(np.float32)
    lengths = np.array([12, 5, 1, 9])
    batch = greedy_decode_batch(probs, lengths)
    for i in range(4):
        assert batch[i] == greedy_decode(probs[i], int(lengths[i]))
    with pytest.raises(ValueError):
        greedy_decode_batch(probs[0])


def test_beam_search_finds_most_probable_labelling():
    # Best path is blank-blank ("" ), but the labelling "1" has more total probability.
    probs = np.array([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25]], dtype=np.float64)
    assert greedy_decode(probs).labels == ()
    labels, logp = beam_decode(probs, beam=4)
    # Brute force over all alignments.
    totals = {}
    for path in itertools.product(range(3), repeat=2):
        key = reference_collapse(path)
        totals[key] = totals.get(key, 0.0) + probs[0, path[0]] * probs[1, path[1]]
    best = max(totals, key=totals.get)
    assert labels == best == (1,)
    assert np.exp(logp) == pytest.approx(totals[best])


def test_allowed_classes_pick_the_best_allowed_class_per_frame():
    probs = np.array([[0.1, 0.6, 0.3, 0.0], [0.7, 0.1, 0.1, 0.1], [0.2, 0.1, 0.3, 0.4]], np.float32)
    assert greedy_decode(probs).labels == (1, 3)
    d = greedy_decode(probs, allowed=np.array([0, 2]))
    assert d.labels == (2, 2)  # a blank between them: two characters
    assert d.char_probs == pytest.approx((0.3, 0.3))  # the model's own probabilities, not renormalised
    assert greedy_decode(probs, allowed=np.array([0])).labels == ()


@pytest.mark.parametrize("bad", [np.array([], np.int64), np.array([0, 4]), np.array([-1, 0])])
def test_allowed_classes_out_of_range_raise(bad):
    with pytest.raises(ValueError, match="allowed classes"):
        greedy_decode(np.full((3, 4), 0.25, np.float32), allowed=bad)


def test_class_weights_are_a_prior_on_the_choice_not_on_the_confidence():
    probs = np.array([[0.1, 0.5, 0.4, 0.0], [0.8, 0.1, 0.1, 0.0], [0.15, 0.2, 0.25, 0.4]], np.float32)
    assert greedy_decode(probs).labels == (1, 3)
    weights = np.array([1.0, 0.5, 1.0, 0.0], np.float32)
    d = greedy_decode(probs, weights=weights)
    assert d.labels == (2, 2)  # 0.5 x 0.5 < 0.4 in frame 0; class 3 is never read
    assert d.char_probs == pytest.approx((0.4, 0.25))
    assert greedy_decode(probs, weights=np.ones(4, np.float32)) == greedy_decode(probs)
    both = greedy_decode(probs, allowed=np.array([0, 1, 3]), weights=weights)
    assert both.labels == (1,)  # frame 0: 0.5 x 0.5 beats the blank's 0.1; frame 2: the blank beats 0.2 x 0.5


@pytest.mark.parametrize("bad", [np.ones(3, np.float32), np.array([1.0, 1.5, 1.0, 1.0]),
                                 np.array([1.0, -0.1, 1.0, 1.0])])
def test_bad_class_weights_raise(bad):
    probs = np.array([[0.1, 0.6, 0.3, 0.0], [0.1, 0.1, 0.1, 0.7]], np.float32)
    with pytest.raises(ValueError, match="weight"):
        greedy_decode(probs, weights=bad)


def brute_force_likelihoods(probs):
    """Total probability of every labelling, summed over all frame paths."""
    totals = {}
    for path in itertools.product(range(probs.shape[1]), repeat=probs.shape[0]):
        key = reference_collapse(path)
        totals[key] = totals.get(key, 0.0) + float(np.prod(probs[np.arange(len(path)), path]))
    return totals


def test_forward_likelihoods_match_brute_force_for_every_labelling():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=5)
    totals = brute_force_likelihoods(probs)
    labellings = [(), (1,), (1, 1), (1, 2, 1), (2, 2, 2), (1, 2, 1, 2, 1), (2, 1, 1, 2, 1)]
    got = ctc_log_likelihoods(probs, labellings)
    want = [np.log(totals[x]) if x in totals else -np.inf for x in labellings]
    assert got == pytest.approx(want)
    assert got[-1] == -np.inf  # five frames cannot hold 2 1 blank 1 2 1
    assert sum(np.exp(ctc_log_likelihoods(probs, list(totals)))) == pytest.approx(1.0)


def test_forward_likelihoods_of_an_empty_window():
    empty = np.zeros((0, 4))
    assert list(ctc_log_likelihoods(empty, [(), (2,)])) == [0.0, -np.inf]


@pytest.mark.parametrize(("path", "labels", "spans"), [
    ([0, 1, 1, 0, 2, 0], (1, 2), [(1, 2), (4, 4)]),
    ([3, 0, 3, 3], (3, 3), [(0, 0), (2, 3)]),
    ([2], (2,), [(0, 0)]),
])
def test_alignment_recovers_the_frames_of_each_character(path, labels, spans):
    assert ctc_align(one_hot_probs(path), labels) == spans


def test_alignment_of_a_reading_the_frames_cannot_hold_raises():
    with pytest.raises(ValueError, match="alignment"):
        ctc_align(one_hot_probs([1, 1]), (1, 1))  # a repeat needs a blank between
    with pytest.raises(ValueError, match="cannot align"):
        ctc_align(one_hot_probs([1]), (1, 2))
