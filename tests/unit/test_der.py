"""bench/speakers/der.py: DER on cases computed by hand (seconds; 10 ms frames are exact)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

DER = Path(__file__).resolve().parents[2] / "bench" / "speakers" / "der.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_der", DER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_der"] = module
    spec.loader.exec_module(module)
    return module


m = _load()
TWO = [(0.0, 10.0, "A"), (10.0, 20.0, "B")]


def _check(report, *, total, missed=0.0, fa=0.0, confusion=0.0):
    assert report.total == pytest.approx(total)
    assert report.missed == pytest.approx(missed)
    assert report.false_alarm == pytest.approx(fa)
    assert report.confusion == pytest.approx(confusion)
    assert report.der == pytest.approx((missed + fa + confusion) / total)


def test_perfect_is_zero():
    report = m.der(TWO, TWO, collar=0.0)
    _check(report, total=20)
    assert (report.reference_speakers, report.hypothesis_speakers) == (2, 2)


def test_swapped_labels_are_zero():
    _check(m.der(TWO, [(0.0, 10.0, "spk1"), (10.0, 20.0, "spk0")], collar=0.0), total=20)


def test_one_speaker_for_two_confuses_the_smaller_one():
    # One hypothesis speaker maps onto A (or B); the other 10 s are confusion.
    report = m.der(TWO, [(0.0, 20.0, "x")], collar=0.0)
    _check(report, total=20, confusion=10)
    assert report.hypothesis_speakers == 1


def test_a_turn_given_to_the_wrong_speaker():
    ref = [*TWO, (20.0, 30.0, "C")]
    _check(m.der(ref, [(0.0, 10.0, "x"), (10.0, 30.0, "y")], collar=0.0), total=30, confusion=10)


def test_one_reference_speaker_split_in_two():
    report = m.der([(0.0, 10.0, "A")], [(0.0, 4.0, "x"), (4.0, 10.0, "y")], collar=0.0)
    _check(report, total=10, confusion=4)
    assert report.hypothesis_speakers == 2


def test_missed_speech():
    _check(m.der(TWO, [(0.0, 6.0, "x"), (10.0, 20.0, "y")], collar=0.0), total=20, missed=4)


def test_false_alarm():
    hyp = [(0.0, 10.0, "x"), (10.0, 23.0, "y"), (25.0, 27.0, "z")]
    _check(m.der(TWO, hyp, collar=0.0), total=20, fa=5)


def test_empty_hypothesis_misses_everything():
    report = m.der(TWO, [], collar=0.0)
    _check(report, total=20, missed=20)
    assert report.der == 1.0


def test_collar_forgives_boundaries_and_shrinks_the_total():
    hyp = [(0.2, 10.2, "x"), (10.2, 20.0, "y")]
    # Without a collar: 0.2 s missed at the start, 0.2 s of B given to A's speaker.
    _check(m.der(TWO, hyp, collar=0.0), total=20, missed=0.2, confusion=0.2)
    # Collars [0, 0.25), [9.75, 10.25) twice, [19.75, 20.25): 1 s of speech not scored.
    report = m.der(TWO, hyp, collar=0.25)
    _check(report, total=19)
    # An error wider than the collar is only forgiven inside it.
    late = [(0.0, 10.0, "x"), (10.5, 20.0, "y")]
    _check(m.der(TWO, late, collar=0.25), total=19, missed=0.25)


def test_overlap_counts_each_speaker():
    ref = [(0.0, 10.0, "A"), (5.0, 15.0, "B")]
    _check(m.der(ref, ref, collar=0.0), total=20)
    # B's first 5 s lie under A and are missed.
    _check(m.der(ref, [(0.0, 10.0, "x"), (10.0, 15.0, "y")], collar=0.0), total=20, missed=5)
    # One speaker throughout: 5 s missed in the overlap, B's last 5 s confused.
    _check(m.der(ref, [(0.0, 15.0, "x")], collar=0.0), total=20, missed=5, confusion=5)
    # A hypothesis overlap where the reference has one speaker is a false alarm.
    hyp = [*ref, (12.0, 14.0, "x")]
    _check(m.der(ref, hyp, collar=0.0), total=20, fa=2)


def test_rttm_round_trip_and_filtering():
    text = (
        ";; comment\n"
        "SPEAKER meet 1 6.690 0.430 <NA> <NA> speaker90 <NA> <NA>\n"
        "SPEAKER other 1 1.000 2.000 <NA> <NA> x <NA> <NA>\n"
        "SPEAKER meet 1 7.550 0.800 <NA> <NA> speaker91 <NA> <NA>\n"
    )
    segments = m.read_rttm(text, uri="meet")
    assert segments == [(6.69, pytest.approx(7.12), "speaker90"), (7.55, 8.35, "speaker91")]
    assert len(m.read_rttm(text)) == 3
    again = m.read_rttm(m.write_rttm(segments, "meet"))
    assert [(round(s, 3), round(e, 3), k) for s, e, k in again] == [
        (6.69, 7.12, "speaker90"),
        (7.55, 8.35, "speaker91"),
    ]


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 5), (5, 2), (6, 6)])
def test_assignment_is_optimal(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        gain = rng.integers(0, 100, size=shape)
        pairs = m.assign(gain)
        assert len(pairs) == min(shape)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        rows, cols = shape
        if rows <= cols:
            options = itertools.permutations(range(cols), rows)
            best = max(sum(gain[i, j] for i, j in enumerate(perm)) for perm in options)
        else:
            options = itertools.permutations(range(rows), cols)
            best = max(sum(gain[i, j] for j, i in enumerate(perm)) for perm in options)
        assert sum(gain[i, j] for i, j in pairs) == best
