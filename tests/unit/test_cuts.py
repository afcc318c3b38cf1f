"""Chunk cuts in silence (run_jobs/transcribe/cuts.py) and the merge by recorded cuts."""

from __future__ import annotations

import numpy as np
import pytest

from common.domain.transcription_plan import ChunkPlan
from common.domain.transcripts import Segment
from run_jobs.transcribe.cuts import FRAME_S, pick_cut
from run_jobs.transcribe.merge import ChunkResult, merge
from tests.fakes import make_plan as _plan
from tests.fakes import make_segment as _seg


def _probs(seconds: float, *silences: tuple[float, float], level: float = 0.9) -> np.ndarray:
    """Speech probability ``level`` everywhere but the given ``(start, end)`` silences."""
    probs = np.full(round(seconds / FRAME_S), level, dtype=np.float32)
    for a, b in silences:
        probs[round(a / FRAME_S) : round(b / FRAME_S)] = 0.02
    return probs


def test_the_cut_is_the_middle_of_the_longest_pause_class_nearest_the_boundary() -> None:
    # Region 570..630 s around a nominal 600: a breath at 599.5, a phrase break at 596, two
    # sentence breaks at 584.6 and 612.6 (the nearer wins: 12.6 s away against 15.4).
    probs = _probs(60.0, (29.4, 29.7), (25.7, 26.3), (14.0, 15.2), (42.0, 43.2))
    cut = pick_cut(probs, region_start_s=570.0, nominal_s=600.0)
    assert cut == pytest.approx(570.0 + 42.6, abs=FRAME_S)
    # Without the sentence breaks the phrase break wins over the nearer breath.
    probs = _probs(60.0, (29.4, 29.7), (25.7, 26.3))
    assert pick_cut(probs, region_start_s=570.0, nominal_s=600.0) == pytest.approx(596.0, abs=0.04)


def test_without_any_pause_the_quietest_spot_takes_the_cut_and_ties_go_earlier() -> None:
    probs = _probs(60.0)
    probs[round(50 / FRAME_S) : round(50.3 / FRAME_S)] = 0.5  # quieter, but still speech
    assert pick_cut(probs, region_start_s=0.0, nominal_s=30.0) == pytest.approx(50.15, abs=0.1)
    flat = _probs(60.0)
    # All frames alike: the one nearest the nominal boundary.
    assert pick_cut(flat, region_start_s=0.0, nominal_s=30.0) == pytest.approx(30.0, abs=FRAME_S)
    two = _probs(60.0, (20.0, 21.28), (38.72, 40.0))  # equally far either side, to the frame
    assert pick_cut(two, region_start_s=0.0, nominal_s=30.0) == pytest.approx(20.64, abs=1e-6)


def test_neighbours_agree_because_the_cut_depends_only_on_the_region() -> None:
    """Task k-1 and task k both compute boundary k's cut from the same region's probabilities;
    nothing of their own windows enters (both are the same pure call)."""
    rng = np.random.default_rng(7)
    probs = np.clip(rng.normal(0.7, 0.3, round(60 / FRAME_S)), 0, 1).astype(np.float32)
    plan = _plan(3600.0, chunk=1200.0)
    start, _ = plan.cut_region(1)
    as_left = pick_cut(probs.copy(), region_start_s=start, nominal_s=plan.boundary(1))
    as_right = pick_cut(probs.copy(), region_start_s=start, nominal_s=plan.boundary(1))
    assert as_left == as_right and abs(as_left - 1200.0) <= 30.0


def test_plan_cut_regions_and_windows() -> None:
    plan = _plan(3600.0, chunk=1200.0)
    assert plan.cut_region(1) == (1170.0, 1230.0)
    assert _plan(95.0).cut_region(2) == (52.5, 67.5)  # a quarter of a 30 s chunk at most
    with pytest.raises(ValueError):
        plan.cut_region(0)
    assert plan.cut_window(1, 1187.25, 2410.5) == (1185.25, 2412.5)
    assert plan.cut_window(2, 2410.5, None) == (2408.5, None)
    assert plan.cut_window(0, None, None) == plan.window(0)
    assert plan.key != _plan(3600.0, chunk=1200.0, cut_search_s=0.0).key
    assert ChunkPlan.from_env(plan.to_env()) == plan


def _chunk(plan: ChunkPlan, index: int, cuts: tuple[float | None, float | None], *segs: Segment):
    return ChunkResult(
        plan_key=plan.key,
        index=index,
        window_start_s=0,
        language="en",
        segments=list(segs),
        cut_start_s=cuts[0],
        cut_end_s=cuts[1],
    )


def test_merge_owns_words_by_the_recorded_cuts_without_gap_or_duplicate() -> None:
    plan = _plan(60.0)  # nominal boundary 30 s
    # The cut is a pause at 26.4 s, so chunk 0 decoded only up to 28.4 s (cut + overlap) and
    # never heard "four"; chunk 1 decoded from 24.4 s. Ownership by the nominal 30 s would
    # lose "four" (chunk 0's, unheard) and keep nothing else twice only by luck.
    heard = [(24.0, 25.0, " one"), (25.2, 26.0, " two"), (26.8, 27.5, " three")]
    later = [(28.0, 29.5, " four"), (30.5, 31.0, " five")]
    first = _chunk(plan, 0, (None, 26.4), _seg(*heard))
    second = _chunk(plan, 1, (26.4, None), _seg(*heard[1:], *later), _seg((40.0, 41.0, " six")))
    words = [w.word.strip() for s in merge(plan, [second, first]).segments for w in s.words]
    assert words == ["one", "two", "three", "four", "five", "six"]
    transcript = merge(plan, [first, second])
    assert transcript.options["chunk_cuts_s"] == [26.4]


def test_merge_takes_each_cut_from_one_side_when_neighbours_disagree() -> None:
    plan = _plan(60.0)
    words = [(25.0, 25.5, " a"), (26.0, 26.5, " b"), (27.0, 27.5, " c"), (28.0, 28.5, " d")]
    first = _chunk(plan, 0, (None, 27.8), _seg(*words))  # thought the cut was at 27.8 s
    second = _chunk(plan, 1, (26.2, None), _seg(*words[1:]))  # recorded 26.2 s
    merged = [w.word.strip() for s in merge(plan, [first, second]).segments for w in s.words]
    assert merged == ["a", "b", "c", "d"]  # the later chunk's record rules: once each


def test_merge_sums_the_re_decode_counters_of_every_chunk() -> None:
    plan = _plan(60.0)
    counts = {"decode_windows": 2, "redecoded_windows": 1, "redecoded_s": 28.5}
    first = _chunk(plan, 0, (None, 30.0), _seg((1.0, 2.0, " x"))).model_copy(
        update={"options": counts}
    )
    second = _chunk(plan, 1, (30.0, None), _seg((40.0, 41.0, " y"))).model_copy(
        update={"options": {**counts, "redecoded_windows": 0, "redecoded_s": 0.0}}
    )
    options = merge(plan, [first, second]).options
    assert (options["decode_windows"], options["redecoded_windows"]) == (4, 1)
    assert options["redecoded_s"] == 28.5
