"""Who spoke when, over a whole file: each chunk task embeds its own speech (``embed_chunk``,
in parallel with the other chunks), and the task that merges the transcript clusters every
chunk's windows together (``turns_from``), so SPEAKER_1 in the first chunk is SPEAKER_1 in the
last, and diarization never makes the chunk tasks wait for each other.

Within each stretch of speech a window's speaker holds from the midpoint before its centre to
the midpoint after; a turn shorter than ``min_turn_s`` between two turns of one other speaker
is taken as theirs (a voice print of a short window is the least reliable). Where the
segmentation model hears two voices at once, the second is the other speaker heard there (at a
change of turn) or else the other speaker nearest in time: people talk over their neighbour in
the conversation (the heuristic of Bullock et al., 2020, for overlap-aware diarization).
"""

from __future__ import annotations

import numpy as np

from common.audio.decode import SAMPLE_RATE
from common.config.settings import Speakers
from common.domain.speakers import SpeakerSpec, Turn, relabel_by_first_turn
from run_jobs.transcribe.speakers.clustering import ClusterOptions, cluster
from run_jobs.transcribe.speakers.embedder import SpeakerWindows, embed_chunk

# Windows shorter than this share of a full window are assigned to the speakers the others
# found, not clustered: a few hundred ms of speech gives a noisy print.
RELIABLE_SHARE = 0.66


def turns_from(windows: SpeakerWindows, spec: SpeakerSpec, settings: Speakers) -> list[Turn]:
    n = len(windows.starts)
    if n == 0 or not spec.enabled:
        return []
    labels = _labels(windows, spec, settings)
    order = np.argsort(windows.starts, kind="stable")
    starts, ends, labels = windows.starts[order], windows.ends[order], labels[order]
    centres = (starts + ends) / 2
    turns: list[Turn] = []
    for region_start, region_end in sorted(map(tuple, windows.speech)):
        inside = np.nonzero((centres >= region_start) & (centres <= region_end))[0]
        if len(inside) == 0:
            continue
        pieces = _region_turns(region_start, region_end, centres[inside], labels[inside])
        turns += _absorb_short(pieces, settings.min_turn_s)
    turns = _with_overlap(turns, [(float(a), float(b)) for a, b in windows.overlap])
    return relabel_by_first_turn(turns)


def diarize_samples(
    samples: np.ndarray, spec: SpeakerSpec, settings: Speakers | None = None
) -> list[Turn]:
    """One file at once (the benchmark's and the tests' entry)."""
    settings = settings or Speakers()
    if not spec.enabled:
        return []
    duration = len(samples) / SAMPLE_RATE
    return turns_from(embed_chunk(samples, 0.0, (0.0, duration), settings), spec, settings)


def _labels(windows: SpeakerWindows, spec: SpeakerSpec, settings: Speakers) -> np.ndarray:
    lengths = windows.ends - windows.starts
    reliable = lengths >= RELIABLE_SHARE * settings.window_s
    if reliable.sum() < 3:
        reliable = np.ones(len(lengths), dtype=bool)
    options = ClusterOptions(
        min_speakers=spec.min_speakers,
        max_speakers=spec.max_speakers,
        merge_similarity=settings.merge_similarity,
    )
    found = cluster(windows.embeddings[reliable], options)
    centres = np.array(
        [windows.embeddings[reliable][found == k].mean(axis=0) for k in range(found.max() + 1)]
    )
    labels = (windows.embeddings @ centres.T).argmax(axis=1)
    labels[reliable] = found
    return np.asarray(labels)


def _region_turns(start: float, end: float, centres: np.ndarray, labels: np.ndarray) -> list[Turn]:
    turns: list[Turn] = []
    at = start
    for i in range(len(centres)):
        last = i == len(centres) - 1
        if not last and labels[i + 1] == labels[i]:
            continue
        until = end if last else float((centres[i] + centres[i + 1]) / 2)
        turns.append(Turn(start=round(at, 3), end=round(until, 3), speaker=str(labels[i])))
        at = until
    return turns


def _with_overlap(turns: list[Turn], overlap: list[tuple[float, float]]) -> list[Turn]:
    if not turns or len({t.speaker for t in turns}) < 2:
        return turns
    added: list[Turn] = []
    for start, end in overlap:
        heard = {t.speaker for t in turns if t.start < end and t.end > start}
        if not heard:
            continue
        if len(heard) == 1:
            others = [t for t in turns if t.speaker not in heard]
            nearest = min(others, key=lambda t: max(t.start - end, start - t.end, 0.0))
            heard.add(nearest.speaker)
        added += [Turn(start=start, end=end, speaker=s) for s in sorted(heard)]
    return _joined([*turns, *added])


def _joined(turns: list[Turn]) -> list[Turn]:
    """Each speaker's turns that overlap or touch, as one."""
    out: list[Turn] = []
    for speaker in sorted({t.speaker for t in turns}):
        for turn in sorted((t for t in turns if t.speaker == speaker), key=lambda t: t.start):
            if out and out[-1].speaker == speaker and turn.start <= out[-1].end + 0.01:
                out[-1] = out[-1].model_copy(update={"end": max(out[-1].end, turn.end)})
            else:
                out.append(turn)
    return sorted(out, key=lambda t: (t.start, t.end))


def _absorb_short(turns: list[Turn], min_turn_s: float) -> list[Turn]:
    changed = True
    while changed and len(turns) > 2:
        changed = False
        for i in range(1, len(turns) - 1):
            before, here, after = turns[i - 1], turns[i], turns[i + 1]
            if here.end - here.start < min_turn_s and before.speaker == after.speaker:
                joined = before.model_copy(update={"end": after.end})
                turns = [*turns[: i - 1], joined, *turns[i + 2 :]]
                changed = True
                break
    return turns
