"""Transcription benchmark: the worker's real-time factor against a bare faster-whisper call
on the same audio and model in the same run (their ratio is our overhead), model load time,
peak memory, and batched against sequential decoding.

    .venv/bin/python bench/transcribe.py --minutes 1 10 --model tiny.en

Each variant runs in its own process so that its peak RSS and model load are its own. The
audio is espeak-ng reading tests/data/speech.KNOWN_TEXT repeatedly, so WER is measured too.
"worker" is ``run_jobs.transcribe.task.run_task`` (fetch into the sha256 cache, PyAV decode,
the Transcriber adapter, chunk result, merge, the renderings, publish) against in-memory job
and blob stores: everything but network round trips to Firestore/GCS/Pub/Sub.
Times are the minimum over ``--repeats`` (the least-disturbed run on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.data.speech import KNOWN_TEXT, make_speech, word_error_rate  # noqa: E402

# "-speakers": the same worker with speakers "auto" (diarization), to measure what it adds.
VARIANTS = (
    "bare-sequential",
    "bare-batched",
    "worker",
    "worker-batched",
    "worker-batched-speakers",
)


def _speech(folder: Path, minutes: float) -> tuple[Path, str]:
    path = folder / f"speech-{minutes:g}min.wav"
    one = make_speech(folder / "one.wav")
    from common.audio.decode import probe

    reps = max(1, round(minutes * 60 / probe(one).duration_s))
    text = " ".join([KNOWN_TEXT] * reps)
    if not path.exists():
        make_speech(path, text)
    return path, text


def run_variant(variant: str, audio: Path, model: str, beam: int, batch: int) -> dict[str, Any]:
    """In this process: one measured transcription; prints a JSON line."""
    from common.config.settings import Settings
    from run_jobs.transcribe.model_store import model_path

    settings = Settings(
        project="audionotes-bench",
        buckets={"inbox": "bench-inbox", "results": "bench-results"},
        transcription={
            "beam_size": beam,
            "batch_size": batch,
            "batched": "always" if variant.startswith("worker-batched") else "never",
        },
    )
    folder = model_path(model, settings, None)
    result: dict[str, Any] = {"variant": variant}
    if variant.startswith("bare"):
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        started = time.perf_counter()
        whisper = WhisperModel(str(folder), device="cpu", compute_type="int8")
        result["load_s"] = time.perf_counter() - started
        started = time.perf_counter()
        if variant == "bare-batched":
            segments, _ = BatchedInferencePipeline(whisper).transcribe(
                str(audio),
                beam_size=beam,
                batch_size=batch,
                word_timestamps=True,
                vad_filter=True,
            )
        else:
            segments, _ = whisper.transcribe(
                str(audio), beam_size=beam, word_timestamps=True, vad_filter=True
            )
        text = " ".join(s.text.strip() for s in segments)
        result["transcribe_s"] = time.perf_counter() - started
    else:
        speakers = "auto" if variant.endswith("-speakers") else "none"
        result.update(_worker(audio, model, settings, speakers))
        text = result.pop("text")
    result["text"] = text
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _worker(audio: Path, model: str, settings: Any, speakers: str) -> dict[str, Any]:
    from common.audio.decode import probe
    from common.domain.transcription_plan import ChunkPlan
    from common.domain.transcripts import Transcript
    from run_jobs.transcribe import transcriber
    from run_jobs.transcribe.task import TaskEnv, run_task
    from tests.fakes import memory_worker

    with memory_worker(settings, audio) as (worker, blobs, job):
        plan = ChunkPlan.for_job(
            job_id=job.job_id,
            model=model,
            language=None,
            duration_s=probe(audio).duration_s,
            chunk_seconds=settings.limits.chunk_seconds,
            overlap_s=2.0,
            speakers=speakers,
        )
        # Load first and time it apart, as the bare variants do: the ratio compares work.
        started = time.perf_counter()
        from run_jobs.transcribe.model_store import model_path

        adapter = transcriber.Transcriber(
            model_path(model, settings, None),
            transcriber.WhisperOptions.from_settings(model, settings),
        )
        _ = adapter.model
        if speakers != "none":
            import numpy as np

            from run_jobs.transcribe.speakers.embedder import embed

            embed(np.zeros((200, 80), np.float32), [(0.0, 1.5)], settings.speakers)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        outcome = run_task(TaskEnv(plan=plan, index=0, attempt=0, execution="bench"), worker)
        elapsed = time.perf_counter() - started
        uri = next(u for u in blobs.objects if u.endswith("transcript.json"))
        text = Transcript.model_validate_json(blobs.objects[uri]).text
    return {
        "load_s": load_s,
        "transcribe_s": elapsed,
        "outcome": str(outcome),
        "model_loads": transcriber.model_loads(),
        "text": text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-tx")
    parser.add_argument("--one", nargs=2, metavar=("VARIANT", "AUDIO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        variant, audio = args.one
        print(json.dumps(run_variant(variant, Path(audio), args.model, args.beam, args.batch)))
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {_cpu()}, "
        f"model {args.model}, int8 CPU, beam {args.beam}, batch {args.batch}"
    )
    for minutes in args.minutes:
        audio, text = _speech(args.workdir, minutes)
        from common.audio.decode import probe

        duration = probe(audio).duration_s
        best: dict[str, dict[str, Any]] = {}
        for _ in range(args.repeats):
            for variant in args.variants:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--model",
                        args.model,
                        "--beam",
                        str(args.beam),
                        "--batch",
                        str(args.batch),
                        "--one",
                        variant,
                        str(audio),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(out.stdout.strip().splitlines()[-1])
                if variant not in best or result["transcribe_s"] < best[variant]["transcribe_s"]:
                    best[variant] = result
        print(f"\n## {duration:.1f} s of audio\n")
        print("| variant | RTF | transcribe s | load s | peak RSS MB | WER |")
        print("| --- | --- | --- | --- | --- | --- |")
        for variant, r in best.items():
            print(
                f"| {variant} | {r['transcribe_s'] / duration:.4f} | {r['transcribe_s']:.2f} | "
                f"{r['load_s']:.2f} | {r['peak_rss_mb']:.0f} | "
                f"{word_error_rate(text, r['text']):.3f} |"
            )
        for ours, bare in (("worker", "bare-sequential"), ("worker-batched", "bare-batched")):
            if ours in best and bare in best:
                ratio = best[ours]["transcribe_s"] / best[bare]["transcribe_s"]
                print(f"\n{ours} / {bare} = {ratio:.3f} (overhead {100 * (ratio - 1):+.1f}%)")
        sys.stdout.flush()


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{_cores()}"
    except OSError:
        pass
    return platform.processor()


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
