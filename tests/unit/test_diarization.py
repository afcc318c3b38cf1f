"""The diarizer on real audio with the real CAM++ model (baked by ``make install``): speakers
told apart, labels that hold across chunk tasks, and speakers "none" costing nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.audio.decode import decode_window
from common.config.settings import Speakers
from common.domain.speakers import SpeakerSpec
from common.domain.transcription_plan import ChunkPlan, work_prefix
from common.domain.transcripts import Transcript, result_uri
from run_jobs.transcribe.speakers import clustering
from run_jobs.transcribe.speakers.diarize import diarize_samples
from run_jobs.transcribe.speakers.embedder import SpeakerWindows
from run_jobs.transcribe.speakers.models import model_loads
from run_jobs.transcribe.task import TaskEnv, TaskOutcome, run_task
from tests.data.conversation import make_conversation, who_at
from tests.fakes import memory_worker, settings

pytestmark = pytest.mark.slow

LINES = [
    "We should move the launch to the second week of March.",
    "That works for me, but marketing needs the final copy by Friday.",
    "I will send the draft to marketing tomorrow morning.",
    "Good. Can you also check the budget with finance before then?",
    "Yes, I will ask them today and report back on Thursday.",
    "Thanks. Then we are agreed on the new launch date.",
]


def _agreement(turns: list, reference: list[tuple[float, float, str]]) -> float:
    """Share of the speech both the reference and the turns hear (10 ms steps) whose speaker,
    mapped once, the turns get right. (espeak's files end in silence the reference counts as
    its turn, so speech the turns leave out is checked apart, by ``_coverage``.)"""
    steps = [t / 100 for t in range(int(reference[-1][1] * 100))]
    pairs = [(who_at(reference, t), _said(turns, t)) for t in steps]
    pairs = [(r, h) for r, h in pairs if r is not None and h is not None]
    mapping: dict[str, str] = {}
    for ref in sorted({r for r, _ in pairs}):
        votes: dict[str, int] = {}
        for r, h in pairs:
            if r == ref and h is not None and h not in mapping.values():
                votes[h] = votes.get(h, 0) + 1
        if votes:
            mapping[ref] = max(votes, key=lambda k: votes[k])
    return sum(1 for r, h in pairs if mapping.get(r) == h) / len(pairs)


def _coverage(turns: list, reference: list[tuple[float, float, str]]) -> float:
    steps = [t / 100 for t in range(int(reference[-1][1] * 100))]
    heard = [t for t in steps if who_at(reference, t) is not None]
    return sum(1 for t in heard if _said(turns, t) is not None) / len(heard)


def _said(turns: list, t: float) -> str | None:
    return next((x.speaker for x in turns if x.start <= t < x.end), None)


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    path = tmp_path_factory.mktemp("speakers") / "two.wav"
    turns = [("A" if i % 2 == 0 else "B", line) for i, line in enumerate(LINES)]
    return path, make_conversation(path, turns)


def test_two_speakers_are_told_apart_and_found_without_being_told_how_many(
    two_voices: tuple[Path, list],
) -> None:
    path, reference = two_voices
    samples = decode_window(path)
    for spec in ("auto", "2", "1-4"):
        turns = diarize_samples(samples, SpeakerSpec.parse(spec))
        assert {t.speaker for t in turns} == {"SPEAKER_1", "SPEAKER_2"}, spec
        assert _agreement(turns, reference) > 0.95, spec
        assert _coverage(turns, reference) > 0.75, spec
        assert turns[0].speaker == "SPEAKER_1"  # labelled in the order first heard


def test_one_voice_is_one_speaker(tmp_path: Path) -> None:
    path = tmp_path / "one.wav"
    make_conversation(path, [("A", line) for line in LINES])
    turns = diarize_samples(decode_window(path), SpeakerSpec.parse("auto"))
    assert {t.speaker for t in turns} == {"SPEAKER_1"}


def test_an_exact_count_is_honoured() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 192))
    prints = np.concatenate([c + 0.3 * rng.normal(size=(20, 192)) for c in centres])
    prints /= np.linalg.norm(prints, axis=1, keepdims=True)
    options = clustering.ClusterOptions
    assert len(set(clustering.cluster(prints, options()))) == 3
    assert len(set(clustering.cluster(prints, options(min_speakers=4, max_speakers=4)))) == 4
    assert len(set(clustering.cluster(prints, options(min_speakers=1, max_speakers=2)))) == 2


def test_voice_prints_round_trip_through_their_blob() -> None:
    rng = np.random.default_rng(2)
    prints = rng.normal(size=(4, 192)).astype(np.float32)
    prints /= np.linalg.norm(prints, axis=1, keepdims=True)
    windows = SpeakerWindows(
        np.array([[0.0, 3.0]]),
        np.array([0, 0.75, 1.5, 2.25]),
        np.array([1.5, 2.25, 3, 3]),
        prints,
        np.array([[1.0, 1.4]]),
    )
    back = SpeakerWindows.from_bytes(windows.to_bytes())
    assert np.allclose(back.embeddings, prints, atol=1e-3)
    assert np.array_equal(back.starts, windows.starts) and back.speech.shape == (1, 2)
    assert np.array_equal(back.overlap, windows.overlap)


def _run_all(plan: ChunkPlan, worker: object) -> None:
    outcomes = [
        run_task(TaskEnv(plan=plan, index=i, attempt=0, execution=None), worker)  # type: ignore[arg-type]
        for i in range(plan.chunk_count)
    ]
    assert outcomes[-1] == TaskOutcome.TRANSCRIBED


def test_labels_mean_the_same_person_in_every_chunk(tmp_path: Path) -> None:
    """Three chunk tasks, each embedding its own speech; the merge clusters them together,
    so the voice of chunk 1 is the same label in chunk 3."""
    path = tmp_path / "long.wav"
    turns = [("A" if i % 2 == 0 else "B", line) for i, line in enumerate(LINES * 5)]
    reference = make_conversation(path, turns)
    duration = reference[-1][1] + 0.3
    s = settings(transcription={"cache_dir": str(tmp_path / "cache"), "device": "cpu"})
    with memory_worker(s, path) as (worker, blobs, job):
        plan = ChunkPlan.for_job(
            job_id=job.job_id,
            model="tiny.en",
            language="en",
            duration_s=duration,
            chunk_seconds=duration / 3 + 0.5,
            overlap_s=2,
            speakers="auto",
        )
        assert plan.chunk_count == 3
        _run_all(plan, worker)
        prints = [u for u in blobs.list(work_prefix(s, plan)) if "/speakers-" in u]
        summary = worker.jobs.get(job.job_id).transcription
    transcript = Transcript.model_validate_json(
        blobs.read_bytes(result_uri(s, job.job_id, "transcript.json"))
    )
    assert len(prints) == 3
    assert {t.speaker for t in transcript.turns} == {"SPEAKER_1", "SPEAKER_2"}
    assert _agreement(transcript.turns, reference) > 0.95
    assert _coverage(transcript.turns, reference) > 0.75
    words = [w for seg in transcript.segments for w in seg.words]
    assert words and all(w.speaker in ("SPEAKER_1", "SPEAKER_2") for w in words)
    assert all(seg.speaker == seg.words[0].speaker for seg in transcript.segments if seg.words)
    # The same voice in the first and the last chunk carries the same label.
    first = _said(transcript.turns, (reference[0][0] + reference[0][1]) / 2)
    last_a = next(r for r in reversed(reference) if r[2] == "A")
    assert _said(transcript.turns, (last_a[0] + last_a[1]) / 2) == first
    rttm = blobs.read_bytes(result_uri(s, job.job_id, "transcript.rttm")).decode().splitlines()
    assert len(rttm) == len(transcript.turns) and rttm[0].split()[0] == "SPEAKER"
    assert summary is not None and {t.speaker for t in summary.speakers} == {
        "SPEAKER_1",
        "SPEAKER_2",
    }


def test_speakers_none_runs_no_diarization_at_all(
    tmp_path: Path, two_voices: tuple[Path, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("speakers none must not diarize")

    from run_jobs.transcribe import task
    from run_jobs.transcribe.speakers import models

    for module, name in ((task, "embed_chunk"), (task, "turns_from"), (models, "session")):
        monkeypatch.setattr(module, name, never)
    path, _ = two_voices
    loads = model_loads()
    s = settings(transcription={"cache_dir": str(tmp_path / "cache"), "device": "cpu"})
    with memory_worker(s, path) as (worker, blobs, job):
        plan = ChunkPlan.for_job(
            job_id=job.job_id,
            model="tiny.en",
            language="en",
            duration_s=30,
            chunk_seconds=1200,
            overlap_s=2,
            speakers="none",
        )
        _run_all(plan, worker)
        prints = [u for u in blobs.list(work_prefix(s, plan)) if "/speakers-" in u]
    transcript = Transcript.model_validate_json(
        blobs.read_bytes(result_uri(s, job.job_id, "transcript.json"))
    )
    assert model_loads() == loads
    assert prints == [] and transcript.turns == []
    assert all(seg.speaker is None for seg in transcript.segments)
    assert "diarize_s" not in transcript.options


def test_a_missing_model_says_how_to_bake_it(tmp_path: Path) -> None:
    from run_jobs.transcribe.speakers.embedder import embed
    from run_jobs.transcribe.speakers.models import SpeakerModelMissing

    with pytest.raises(SpeakerModelMissing, match=r"speakers\.bake"):
        embed(np.zeros((200, 80), np.float32), [(0.0, 1.5)], Speakers(model_dir=str(tmp_path)))
