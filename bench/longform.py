"""Long-form loss benchmark: numbered sentences lost at chunk boundaries and by batched
decoding, against the bare engine on the same audio.

    .venv/bin/python bench/longform.py --minutes 20 --chunk-seconds 300

The audio is espeak-ng reading "Sentence <n in words>. <a generated sentence>" ~200 times,
with pauses drawn like speech (mostly 0.25-0.9 s, now and then 1.5-2.5 s) and a sentence
running across every nominal chunk boundary. A sentence is *found* when at least half of its
words appear, in order, in an alignment of the whole transcript against the script; the
*longest silent speech* is the most known speech between two consecutive transcript words.
Variants (all tiny.en, int8, CPU, beam 5, word timestamps, VAD on, in one process):

- bare-sequential / bare-batched: ``WhisperModel.transcribe`` / ``BatchedInferencePipeline``
  on the whole file, the engine with nothing of ours;
- old-batched: the code before this change, rebuilt here: nominal boundaries +- overlap, the
  bare pipeline per window, ownership by nominal boundary;
- project-nominal: ``run_task`` per chunk, sequential, cuts at the nominal boundaries
  (``cut_search_s=0``), which is the old sequential path;
- project / project-batched: ``run_task`` per chunk with VAD cuts, sequential / batched with
  the re-decode detector.
"""

from __future__ import annotations

import argparse
import difflib
import platform
import random
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.data.speech import SENTENCE_PARTS, normalise  # noqa: E402

VARIANTS = (
    "bare-sequential",
    "bare-batched",
    "old-batched",
    "project-nominal",
    "project",
    "project-batched",
)
_SMALL = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_ONES = _SMALL.split()
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """British style: 104 -> "one hundred and four"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))


@dataclass(frozen=True)
class Sentence:
    n: int
    text: str
    start: float
    end: float


def script(count: int, rng: random.Random) -> list[str]:
    pick = {k: v.split("|") for k, v in SENTENCE_PARTS.items()}
    out = []
    for n in range(1, count + 1):
        body = f"{rng.choice(pick['who'])} {rng.choice(pick['did'])} {rng.choice(pick['what'])}"
        for part in ("where", "when", "why"):
            if rng.random() < 0.6:
                body += f" {rng.choice(pick[part])}"
        out.append(f"Sentence {number_words(n)}. {body[0].upper()}{body[1:]}.")
    return out


def build(folder: Path, minutes: float, boundaries: list[float], seed: int) -> list[Sentence]:
    """Write ``folder/long.wav``; returns where each sentence lies."""
    rng = random.Random(seed)
    rate, pieces, sentences, t = 22050, [], [], 0.0
    texts = script(int(minutes * 60 / 5) + 20, rng)
    pending = sorted(boundaries)
    for n, text in enumerate(texts, start=1):
        pause = rng.uniform(1.5, 2.5) if rng.random() < 0.1 else rng.uniform(0.25, 0.9)
        if pending and t <= pending[0] < t + pause:
            pause = 0.15  # a boundary must not fall in a pause: the next sentence spans it
        wav = folder / "one.wav"
        speed, pitch = rng.randint(150, 180), rng.randint(35, 65)
        subprocess.run(
            ["espeak-ng", "-s", str(speed), "-p", str(pitch), "-w", str(wav), text], check=True
        )
        with wave.open(str(wav)) as w:
            assert w.getframerate() == rate
            voice = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        voice = np.trim_zeros(voice)
        pieces += [np.zeros(round(pause * rate), dtype=np.int16), voice]
        start = t + pause
        t = start + len(voice) / rate
        sentences.append(Sentence(n, text, start, t))
        while pending and pending[0] < t:
            pending.pop(0)
        if t >= minutes * 60:
            break
    pieces.append(np.zeros(rate, dtype=np.int16))
    audio = np.concatenate(pieces)
    noise = np.random.default_rng(seed).normal(0, 20, len(audio))  # a quiet room, not zeros
    audio = np.clip(audio + noise, -32768, 32767).astype(np.int16)
    with wave.open(str(folder / "long.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(audio.tobytes())
    return sentences


def _hyp_tokens(text: str) -> list[str]:
    out = []
    for tok in normalise(text):
        out += number_words(int(tok)).split() if tok.isdigit() and int(tok) < 1000 else [tok]
    return [t for t in out if t != "and"]


def found(sentences: list[Sentence], transcript: str) -> set[int]:
    """Numbers of the sentences whose words mostly appear, in order, in ``transcript``."""
    ref: list[str] = []
    owner: list[int] = []
    for s in sentences:
        toks = _hyp_tokens(s.text)
        ref += toks
        owner += [s.n] * len(toks)
    hyp = _hyp_tokens(transcript)
    matched = [0] * len(ref)
    for block in difflib.SequenceMatcher(None, ref, hyp, autojunk=False).get_matching_blocks():
        for i in range(block.a, block.a + block.size):
            matched[i] = 1
    hits: dict[int, list[int]] = {}
    for n, m in zip(owner, matched, strict=True):
        hits.setdefault(n, []).append(m)
    return {n for n, m in hits.items() if sum(m) >= 0.5 * len(m)}


def longest_silent_speech(sentences: list[Sentence], words: list[tuple[float, float]]) -> float:
    """The most known speech (seconds) between two consecutive words of the transcript."""
    edges = [0.0, *(t for w in sorted(words) for t in w), sentences[-1].end + 1]
    best = 0.0
    for i in range(0, len(edges) - 1, 2):
        a, b = edges[i], edges[i + 1]
        best = max(best, sum(max(0.0, min(b, s.end) - max(a, s.start)) for s in sentences))
    return best


def run(variant: str, audio: Path, args: argparse.Namespace, duration: float) -> dict[str, Any]:
    from common.config.settings import Settings
    from common.domain.transcription_plan import ChunkPlan
    from run_jobs.transcribe.model_store import model_path

    batched = variant in ("project-batched", "bare-batched", "old-batched")
    settings = Settings(
        project="audionotes-bench",
        buckets={"inbox": "bench-inbox", "results": "bench-results"},
        transcription={
            "beam_size": args.beam,
            "batch_size": args.batch,
            "batched": "always" if batched else "never",
            "cache_dir": str(args.workdir / "cache"),
        },
    )
    folder = model_path("tiny.en", settings, None)
    plan = ChunkPlan.for_job(
        job_id="bench",
        model="tiny.en",
        language="en",
        duration_s=duration,
        chunk_seconds=args.chunk_seconds,
        overlap_s=args.overlap,
        cut_search_s=0.0 if variant in ("project-nominal", "old-batched") else args.cut_search,
    )
    started = time.perf_counter()
    if variant.startswith("bare"):
        segments = _bare(folder, audio, batched, args)
        options: dict[str, Any] = {}
    elif variant == "old-batched":
        segments, options = _old_batched(folder, audio, plan, args), {}
    else:
        transcript = _project(audio, plan, settings)
        segments, options = transcript.segments, transcript.options
    seconds = time.perf_counter() - started
    text = " ".join(s.text.strip() for s in segments)
    words = [(w.start, w.end) for s in segments for w in s.words]
    return {"variant": variant, "s": seconds, "text": text, "words": words, "options": options}


def _bare(folder: Path, audio: Path, batched: bool, args: argparse.Namespace) -> list[Any]:
    from faster_whisper import BatchedInferencePipeline

    model = _model(folder)
    common = {"beam_size": args.beam, "word_timestamps": True, "vad_filter": True}
    if batched:
        pipeline = BatchedInferencePipeline(model)
        return list(pipeline.transcribe(str(audio), batch_size=args.batch, **common)[0])
    return list(model.transcribe(str(audio), **common)[0])


def _old_batched(folder: Path, audio: Path, plan: Any, args: argparse.Namespace) -> list[Any]:
    """HEAD's default path: nominal windows, the bare pipeline, ownership by boundary."""
    from faster_whisper import BatchedInferencePipeline

    from common.audio.decode import decode_window
    from run_jobs.transcribe.merge import ChunkResult, merge, shift
    from run_jobs.transcribe.transcriber import _segment

    pipeline = BatchedInferencePipeline(_model(folder))
    chunks = []
    for i in range(plan.chunk_count):
        start, end = plan.window(i)
        segs, _ = pipeline.transcribe(
            decode_window(audio, start, end),
            batch_size=args.batch,
            beam_size=args.beam,
            word_timestamps=True,
            vad_filter=True,
            language="en",
        )
        local = [_segment(s) for s in segs]
        chunks.append(
            ChunkResult(
                plan_key=plan.key,
                index=i,
                window_start_s=start,
                window_end_s=end,
                language="en",
                segments=shift(local, start),
            )
        )
    return merge(plan, chunks).segments


_loaded: dict[str, Any] = {}


def _model(folder: Path) -> Any:
    from faster_whisper import WhisperModel

    if str(folder) not in _loaded:
        _loaded[str(folder)] = WhisperModel(str(folder), device="cpu", compute_type="int8")
    return _loaded[str(folder)]


def _project(audio: Path, plan: Any, settings: Any) -> Any:
    """Every task of the plan through ``run_task`` (the last one merges), in-memory stores."""
    from common.domain.transcripts import Transcript
    from run_jobs.transcribe.task import TaskEnv, run_task
    from tests.fakes import memory_worker

    with memory_worker(settings, audio, job_id="bench") as (worker, blobs, _):
        for i in range(plan.chunk_count):
            run_task(TaskEnv(plan=plan, index=i, attempt=0, execution="bench"), worker)
    uri = next(u for u in blobs.objects if u.endswith("/transcript.json"))
    return Transcript.model_validate_json(blobs.objects[uri])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--chunk-seconds", type=float, default=300.0)
    parser.add_argument("--overlap", type=float, default=2.0)
    parser.add_argument("--cut-search", type=float, default=30.0)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--dump", action="store_true", help="write each transcript to workdir")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "longform")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    from common.audio.decode import probe

    nominal = [
        k * args.chunk_seconds for k in range(1, int(args.minutes * 60 // args.chunk_seconds))
    ]
    sentences = build(args.workdir, args.minutes, nominal, args.seed)
    audio = args.workdir / "long.wav"
    duration = probe(audio).duration_s
    spanning = sum(any(s.start < b < s.end for s in sentences) for b in nominal)
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {_cpu()}; tiny.en int8 CPU,"
        f" beam {args.beam}, batch {args.batch}; {duration:.0f} s, {len(sentences)} sentences,"
        f" chunk {args.chunk_seconds:g} s, overlap {args.overlap:g} s, cut search"
        f" +-{args.cut_search:g} s, seed {args.seed}; {spanning} of {len(nominal)} nominal"
        " boundaries fall inside a sentence"
    )
    every = {s.n for s in sentences}
    reference = every
    print(
        "| variant | s | sentences lost | lost that bare-sequential found | longest speech"
        " without words (s) | re-decoded windows / s | cuts (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for variant in args.variants:  # a row as each finishes: a long run shows progress
        r = run(variant, audio, args, duration)
        got = found(sentences, r["text"])
        if variant == "bare-sequential":
            reference = got
        lost, extra = sorted(every - got), sorted(reference - got)
        o = r["options"]
        redone = (
            f"{o['redecoded_windows']:g} of {o['decode_windows']:g} / {o['redecoded_s']:g}"
            if "redecoded_windows" in o
            else "-"
        )
        print(
            f"| {variant} | {r['s']:.1f} | {len(lost)} {_few(lost)} | {len(extra)}"
            f" {_few(extra)} | {longest_silent_speech(sentences, r['words']):.1f} | {redone}"
            f" | {', '.join(f'{c:g}' for c in o.get('chunk_cuts_s', [])) or '-'} |",
            flush=True,
        )
        if args.dump:
            (args.workdir / f"{variant}.txt").write_text(r["text"])


def _few(numbers: list[int]) -> str:
    return f"({', '.join(map(str, numbers[:12]))}{', ...' if len(numbers) > 12 else ''})"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return (
                    f"{line.split(':', 1)[1].strip()} x{len(__import__('os').sched_getaffinity(0))}"
                )
    except OSError:
        pass
    return platform.processor() or "cpu"


if __name__ == "__main__":
    main()
