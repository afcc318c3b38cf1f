"""Diarization error rate, RTTM reading and writing.

DER = (missed speech + false alarm + speaker confusion) / total reference speech, computed
on 10 ms frames:

- a frame where the reference has n speakers counts n in the total (overlap is scored);
- per frame, missed = max(0, n_ref - n_hyp), false alarm = max(0, n_hyp - n_ref),
  confusion = min(n_ref, n_hyp) - (reference speakers matched by their mapped hypothesis
  speaker);
- hypothesis speakers map one-to-one onto reference speakers so that the matched time is
  largest (Hungarian assignment); an unmapped hypothesis speaker is never correct;
- frames within ``collar`` seconds of any reference turn's start or end are not scored,
  since human boundaries are only that precise.

    .venv/bin/python bench/speakers/der.py REF.rttm HYP.rttm [COLLAR_S]
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

STEP_S = 0.01

Segment = tuple[float, float, str]


@dataclass(frozen=True)
class DerReport:
    total: float  # seconds of reference speech scored (overlap counted per speaker)
    missed: float
    false_alarm: float
    confusion: float
    der: float
    reference_speakers: int
    hypothesis_speakers: int
    scored: float  # seconds of the timeline scored, after the collars

    @property
    def errors(self) -> float:
        return self.missed + self.false_alarm + self.confusion


def read_rttm(text: str, uri: str | None = None) -> list[Segment]:
    """``SPEAKER <uri> <chan> <start> <duration> <NA> <NA> <speaker> ...`` lines as
    (start, end, speaker); other line types and, when ``uri`` is given, other files are
    skipped."""
    segments: list[Segment] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[0] != "SPEAKER" or (uri is not None and fields[1] != uri):
            continue
        start, duration = float(fields[3]), float(fields[4])
        segments.append((start, start + duration, fields[7]))
    return segments


def write_rttm(segments: Iterable[Segment], uri: str) -> str:
    lines = [
        f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA> <NA>"
        for start, end, speaker in sorted(segments)
        if end > start
    ]
    return "".join(line + "\n" for line in lines)


def der(
    reference: Sequence[Segment], hypothesis: Sequence[Segment], collar: float = 0.25
) -> DerReport:
    ref_names = sorted({s for _, _, s in reference})
    hyp_names = sorted({s for _, _, s in hypothesis})
    end = max([e for _, e, _ in [*reference, *hypothesis]], default=0.0) + collar
    n_frames = _frame(end) + 1
    ref = _activity(reference, ref_names, n_frames)
    hyp = _activity(hypothesis, hyp_names, n_frames)

    scored = np.ones(n_frames, dtype=bool)
    for start, stop, _ in reference:
        for boundary in (start, stop):
            scored[max(_frame(boundary - collar), 0) : _frame(boundary + collar)] = False
    ref, hyp = ref[:, scored], hyp[:, scored]

    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    # matched[i, j]: frames where reference speaker i and hypothesis speaker j both speak.
    matched = ref.astype(np.int64) @ hyp.T.astype(np.int64)
    pairs = assign(matched) if matched.size else []
    correct = sum(int(matched[i, j]) for i, j in pairs)

    total = int(n_ref.sum())
    missed = int(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = int(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = int(np.minimum(n_ref, n_hyp).sum()) - correct
    errors = missed + false_alarm + confusion
    rate = errors / total if total else (0.0 if errors == 0 else float("inf"))
    return DerReport(
        total=total * STEP_S,
        missed=missed * STEP_S,
        false_alarm=false_alarm * STEP_S,
        confusion=confusion * STEP_S,
        der=rate,
        reference_speakers=len(ref_names),
        hypothesis_speakers=len(hyp_names),
        scored=int(scored.sum()) * STEP_S,
    )


def assign(gain: np.ndarray) -> list[tuple[int, int]]:
    """Row-column pairs that maximise the summed ``gain`` (one-to-one; a rectangular matrix
    leaves some rows or columns out). scipy is not in the project's dependencies, so this
    is the O(n^3) Hungarian method with potentials on a square, zero-padded cost matrix."""
    rows, cols = gain.shape
    n = max(rows, cols)
    cost = np.zeros((n, n), dtype=np.float64)
    cost[:rows, :cols] = -gain
    # 1-based arrays as in the textbook formulation; p[j] is the row matched to column j.
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    p = np.zeros(n + 1, dtype=np.int64)
    way = np.zeros(n + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(n + 1, np.inf)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            delta, j1 = np.inf, 0
            for j in range(1, n + 1):
                if used[j]:
                    continue
                reduced = cost[i0 - 1, j - 1] - u[i0] - v[j]
                if reduced < minv[j]:
                    minv[j], way[j] = reduced, j0
                if minv[j] < delta:
                    delta, j1 = minv[j], j
            for j in range(n + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    return [(int(p[j]) - 1, j - 1) for j in range(1, n + 1) if p[j] <= rows and j <= cols]


def _frame(t: float) -> int:
    return round(t / STEP_S)


def _activity(segments: Sequence[Segment], names: list[str], n_frames: int) -> np.ndarray:
    active = np.zeros((len(names), n_frames), dtype=bool)
    index = {name: k for k, name in enumerate(names)}
    for start, stop, speaker in segments:
        active[index[speaker], max(_frame(start), 0) : _frame(stop)] = True
    return active


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.rsplit("\n\n", 1)[-1], file=sys.stderr)
        return 2
    ref_path, hyp_path = argv[:2]
    collar = float(argv[2]) if len(argv) == 3 else 0.25
    with open(ref_path) as ref, open(hyp_path) as hyp:
        report = der(read_rttm(ref.read()), read_rttm(hyp.read()), collar=collar)
    print(
        f"DER {report.der:.2%}  missed {report.missed:.2f} s  false alarm "
        f"{report.false_alarm:.2f} s  confusion {report.confusion:.2f} s  of "
        f"{report.total:.2f} s; speakers ref {report.reference_speakers} "
        f"hyp {report.hypothesis_speakers}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
