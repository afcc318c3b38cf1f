"""Hallucination benchmark: words invented over audio that holds no speech, WER of real
speech, and what the guard costs, with the guard on and off side by side in one run.

    .venv/bin/python bench/hallucination.py --model tiny.en

Inputs are made here (sox and numpy): 60 s of digital silence, 60 s of white noise, 30 s of a
pure tone, 30 s of synthesized music (plucked chords and arpeggios), espeak-ng speech played
backwards (VAD hears speech, no word was said: every word is invented), and espeak-ng reading
tests/data/speech.KNOWN_TEXT twice with 2 minutes of silence between, and once followed by the
white noise. Each is decoded on two paths (batched with our VAD windows, the GPU default; and
sequential over all the audio, no VAD), by
  bare:  one faster-whisper call, the same options (beam, batch, VAD, word timestamps):
         ``BatchedInferencePipeline.transcribe``, or ``WhisperModel.transcribe`` (with its own
         fallbacks) for the sequential path; no checks of ours;
  off:   our Transcriber with the guard off (the coverage re-decode and the no-speech rules
         only: the Transcriber as it was before the guard);
  on:    the same with the guard.
The model is loaded once and shared; times are the minimum over ``--repeats``.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.data.sounds import RATE, music  # noqa: E402
from tests.data.speech import KNOWN_TEXT, make_speech, word_error_rate  # noqa: E402


def _sox(path: Path, *synth: str) -> np.ndarray:
    subprocess.run(["sox", "-n", "-r", str(RATE), "-c", "1", str(path), *synth], check=True)
    from common.audio.decode import decode_window

    return decode_window(path)


def inputs(folder: Path) -> list[tuple[str, np.ndarray, str | None]]:
    """``(name, samples, reference text or None for no speech)``."""
    from common.audio.decode import decode_window

    speech = decode_window(make_speech(folder / "speech.wav"))
    gap = np.zeros(120 * RATE, dtype=np.float32)
    noise = _sox(folder / "noise.wav", "synth", "60", "whitenoise", "vol", "0.5")
    return [
        ("silence 60 s", np.zeros(60 * RATE, dtype=np.float32), None),
        ("white noise 60 s", noise, None),
        (
            "pure tone 440 Hz 30 s",
            _sox(folder / "tone.wav", "synth", "30", "sine", "440", "vol", "0.5"),
            None,
        ),
        ("music (plucked chords) 30 s", music(30), None),
        # Speech to VAD, and words to no one: the batched pipeline loops on it.
        ("reversed speech 30 s", speech[::-1].copy(), None),
        (
            "speech, 2 min silence, speech",
            np.concatenate([speech, gap, speech]),
            f"{KNOWN_TEXT} {KNOWN_TEXT}",
        ),
        ("speech, then 60 s white noise", np.concatenate([speech, noise]), KNOWN_TEXT),
    ]


def _timed(run: Any, repeats: int) -> tuple[Any, float]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return result, best


def _measure(
    name: str, samples: np.ndarray, reference: str | None, on: Any, off: Any, repeats: int
) -> dict[str, Any]:
    """One input through bare, off and on; its row of the table."""
    from faster_whisper import BatchedInferencePipeline

    options = on.options
    same = {
        "language": "en",
        "beam_size": options.beam_size,
        "word_timestamps": options.word_timestamps,
        "vad_filter": options.vad,
    }

    def bare() -> str:
        if options.batched:
            segments, _ = BatchedInferencePipeline(on.model).transcribe(
                samples, batch_size=options.batch_size, **same
            )
        else:  # faster-whisper's own fallbacks and thresholds, as it ships
            segments, _ = on.model.transcribe(samples, **same)
        return " ".join(s.text.strip() for s in segments)

    bare_text, bare_s = _timed(bare, repeats)
    off_result, off_s = _timed(lambda: off.transcribe(samples, language="en"), repeats)
    on_result, on_s = _timed(lambda: on.transcribe(samples, language="en"), repeats)
    texts = {
        "bare": bare_text,
        "off": " ".join(s.text.strip() for s in off_result.segments),
        "on": " ".join(s.text.strip() for s in on_result.segments),
    }
    o = on_result.options
    return {
        "input": name,
        "path": "batched, VAD" if options.batched else "sequential, no VAD",
        "audio_s": len(samples) / RATE,
        **{f"{k}_words": len(v.split()) for k, v in texts.items()},
        **{
            f"{k}_wer": word_error_rate(reference, v) if reference else None
            for k, v in texts.items()
        },
        "bare_s": bare_s,
        "off_s": off_s,
        "on_s": on_s,
        "windows": o["decode_windows"],
        "guard_redecoded": o["guard_redecoded_windows"],
        "redecoded_s_on": o["redecoded_s"],
        "redecoded_s_off": off_result.options["redecoded_s"],
        "dropped": sorted({d.reason for d in on_result.dropped}),
        "dropped_n": len(on_result.dropped),
        "bare_text": bare_text[:60],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    from common.config.settings import Settings
    from run_jobs.transcribe.model_store import model_path
    from run_jobs.transcribe.transcriber import Transcriber, WhisperOptions

    settings = Settings(
        project="audionotes-bench",
        buckets={"inbox": "bench-inbox", "results": "bench-results"},
        transcription={"device": "cpu", "batched": "always"},
    )
    options = WhisperOptions.from_settings(args.model, settings)
    folder = model_path(args.model, settings, None)
    # The production GPU path (batched, our VAD windows), then the other end of what the
    # guard sees: sequential decoding of all the audio, no VAD at all.
    paths = [options, replace(options, batched=False, vad=False)]
    Transcriber(folder, options).model  # noqa: B018 - load once, outside the timings

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, samples, reference in inputs(Path(tmp)):
            for path in paths:
                on = Transcriber(folder, path)
                off = Transcriber(folder, replace(path, guard=False))
                rows.append(_measure(name, samples, reference, on, off, args.repeats))
            print(f"done: {name}", file=sys.stderr, flush=True)

    print(
        f"\n{args.model}, {options.compute_type} on {options.device}, beam {options.beam_size}, "
        f"batch {options.batch_size}; {platform.processor() or platform.machine()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
    )
    print(
        "| input | path | audio s | words bare / off / on | WER bare / off / on | windows | guard "
        "re-decoded | re-decoded s (off → on) | dropped (on) | time s bare / off / on |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        wer = (
            " / ".join(f"{r[k]:.3f}" for k in ("bare_wer", "off_wer", "on_wer"))
            if r["on_wer"] is not None
            else "—"
        )
        dropped = f"{r['dropped_n']} ({', '.join(r['dropped'])})" if r["dropped_n"] else "0"
        print(
            f"| {r['input']} | {r['path']} | {r['audio_s']:.0f} | "
            f"{r['bare_words']} / {r['off_words']} / {r['on_words']} | {wer} | "
            f"{r['windows']} | {r['guard_redecoded']} | "
            f"{r['redecoded_s_off']:.1f} → {r['redecoded_s_on']:.1f} | {dropped} | "
            f"{r['bare_s']:.1f} / {r['off_s']:.1f} / {r['on_s']:.1f} |"
        )
    for path in sorted({r["path"] for r in rows}):
        mine = [r for r in rows if r["path"] == path]
        audio = sum(r["audio_s"] for r in mine)
        extra = sum(r["redecoded_s_on"] - r["redecoded_s_off"] for r in mine)
        on_s, off_s = sum(r["on_s"] for r in mine), sum(r["off_s"] for r in mine)
        print(
            f"\nguard cost, {path}: {extra:.1f} s of {audio:.0f} s of audio re-decoded "
            f"({extra / audio:.1%}) beyond the coverage re-decode; {on_s - off_s:+.1f} s of "
            f"time ({on_s:.1f} s with it, {off_s:.1f} s without)"
        )
    for r in rows:
        if r["bare_words"] and r["bare_wer"] is None:
            print(f"bare, {r['path']}, on {r['input']}: {r['bare_text']!r}")


if __name__ == "__main__":
    main()
