"""The ``Transcriber``: faster-whisper behind one small call, with the options it used.

The model is loaded once per process and shared by every chunk and job the process handles
(``model_loads()`` counts the loads, for the logs and the benchmark). CPU runs int8, GPU runs
float16; ``BatchedInferencePipeline`` is used where it is faster (on GPU by default), and a
GPU out-of-memory error halves its batch until it fits, then falls back to sequential.

Batched decoding has no fallbacks and now and then drops runs of sentences (sequential decoding
skips one at times too), so with VAD on we find the speech ourselves, give the batched pipeline
its ≤30 s windows, and decode again, sequentially and alone, any window whose speech the words
leave uncovered (``coverage.py``) or that holds a segment the hallucination guard fails
(``guard.py``): one pass per window, with faster-whisper's temperature fallback and without
conditioning on the previous text. What still fails is dropped and returned (``dropped``);
``redecoded_windows``, ``guard_redecoded_windows`` and ``guard_dropped`` say how much.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from common.audio.decode import SAMPLE_RATE
from common.config.settings import Settings
from common.domain.transcripts import DroppedSegment, Segment, Word
from common.obs.logs import get_logger
from run_jobs.transcribe import coverage
from run_jobs.transcribe.coverage import DecodeWindow
from run_jobs.transcribe.guard import NON_SPEECH, drop_failing, failing, verdict

log = get_logger(__name__)

_lock = threading.Lock()
_models: dict[tuple[str, str, str], Any] = {}
_loads = 0


def model_loads() -> int:
    """How many times this process has loaded a model."""
    return _loads


@dataclass(frozen=True)
class WhisperOptions:
    model: str
    device: str
    compute_type: str
    beam_size: int
    batched: bool
    batch_size: int
    vad: bool
    word_timestamps: bool
    task: str = "transcribe"
    hotwords: str | None = None
    # Off only to measure what it does (bench/hallucination.py): then only the no-speech rules
    # apply, and only the coverage check decodes a window again.
    guard: bool = True

    @classmethod
    def from_settings(cls, model: str, settings: Settings) -> WhisperOptions:
        t = settings.transcription
        device = t.device if t.device != "auto" else _auto_device()
        compute = t.compute_type or ("float16" if device == "cuda" else "int8")
        batched = t.batched == "always" or (t.batched == "auto" and device == "cuda")
        return cls(
            model=model,
            device=device,
            compute_type=compute,
            beam_size=t.beam_size,
            batched=batched,
            batch_size=t.batch_size,
            vad=t.vad,
            word_timestamps=t.word_timestamps,
        )


@dataclass(frozen=True)
class Transcribed:
    language: str
    language_probability: float | None
    segments: list[Segment]  # times relative to the start of the samples
    options: dict[str, Any]
    dropped: list[DroppedSegment] = field(default_factory=list)  # what the guard took out


class Transcriber:
    def __init__(self, model_dir: Path, options: WhisperOptions) -> None:
        self.model_dir = model_dir
        self.options = options

    @property
    def model(self) -> Any:
        global _loads
        key = (str(self.model_dir), self.options.device, self.options.compute_type)
        with _lock:
            if key not in _models:
                from faster_whisper import WhisperModel

                started = time.monotonic()
                _models[key] = WhisperModel(
                    str(self.model_dir),
                    device=self.options.device,
                    compute_type=self.options.compute_type,
                )
                _loads += 1
                log.info(
                    "model %s loaded (%s, %s) in %.2f s",
                    self.options.model,
                    self.options.device,
                    self.options.compute_type,
                    time.monotonic() - started,
                    extra={"event": "model_loaded"},
                )
            return _models[key]

    def transcribe(
        self,
        samples: np.ndarray,
        *,
        language: str | None,
        on_progress: Callable[[float], None] = lambda _: None,
    ) -> Transcribed:
        options = self.options
        while True:
            try:
                return self._run(samples, language, options, on_progress)
            except RuntimeError as exc:
                if "out of memory" not in str(exc).lower():
                    raise
                if options.batched and options.batch_size > 1:
                    smaller = replace(options, batch_size=options.batch_size // 2)
                elif options.batched:
                    smaller = replace(options, batched=False)
                else:
                    raise
                log.warning("out of memory at %s; retrying with %s", options, smaller)
                options = smaller

    def _run(
        self,
        samples: np.ndarray,
        language: str | None,
        options: WhisperOptions,
        on_progress: Callable[[float], None],
    ) -> Transcribed:
        duration = len(samples) / SAMPLE_RATE
        # The speech, found once: it makes the batched windows and checks either decoder.
        spans = coverage.speech_spans(samples) if options.vad else None
        windows = coverage.group_windows(spans) if spans is not None else None
        if windows == []:  # no speech: nothing to decode
            used = {**_used(options, None), **_redecode_stats(0, 0, 0, 0.0, 0, 0)}
            used["guard_dropped"] = 0
            return Transcribed(language or "en", None, [], used)
        if options.batched:
            from faster_whisper import BatchedInferencePipeline

            pipeline = BatchedInferencePipeline(self.model)
            extra: dict[str, Any] = {}
            if windows:  # the pipeline decodes exactly these windows
                extra = {"clip_timestamps": [{"start": w.start, "end": w.end} for w in windows]}
            segments, info = pipeline.transcribe(
                samples,
                batch_size=options.batch_size,
                **_decode_args(language, options),
                **extra,
            )
        else:
            segments, info = self.model.transcribe(samples, **_decode_args(language, options))
        out: list[Segment] = []
        for seg in segments:  # decoding happens as we iterate
            out.append(_segment(seg))
            if duration > 0:
                on_progress(min(seg.end / duration, 1.0))
        used = _used(options, info.vad_options)
        guarded = spans if options.guard else None
        redone = _redecode_stats(0, 0, 0, 0.0, 0, 0)
        if windows is not None:
            out, redone = self._review(samples, windows, out, info.language, options, guarded)
        used.update(redone)
        # Every path, every segment: what still fails is dropped, and kept for review.
        out, dropped = drop_failing(out, guarded, None if options.guard else NON_SPEECH)
        used["guard_dropped"] = len(dropped)
        for d in dropped:
            log.info(
                "dropped %.1f-%.1f s %r: %s",
                d.start,
                d.end,
                d.text,
                d.reason,
                extra={"event": "guard_dropped"},
            )
        return Transcribed(
            language=info.language,
            language_probability=info.language_probability,
            segments=out,
            options=used,
            dropped=dropped,
        )

    def _review(
        self,
        samples: np.ndarray,
        windows: list[DecodeWindow],
        segments: list[Segment],
        language: str,
        options: WhisperOptions,
        speech: list[tuple[float, float]] | None,
    ) -> tuple[list[Segment], dict[str, Any]]:
        """Decode again, sequentially and alone, each window whose words leave its speech
        uncovered or that holds a segment the guard fails (``speech`` None: the guard is off);
        the new words replace the window's if, the failures left out, they cover more of its
        speech, or as much with fewer failures."""
        out = segments
        redone, kept, redone_s, for_guard, for_coverage = 0, 0, 0.0, 0, 0
        for window in windows:
            slack = coverage.WORD_SLACK_S
            near = coverage.within(out, window.start - slack, window.end + slack)
            mine = coverage.within(near, window.start, window.end + slack)
            bad = failing(mine, speech) if speech is not None else []
            before = coverage.coverage(window, _passing(near, speech))
            if not (before.dropped or bad):
                continue
            fresh = self._decode_alone(samples, window, language, options)
            after = coverage.coverage(window, _passing(fresh, speech))
            fewer = len(failing(fresh, speech)) < len(bad) if speech is not None else False
            better = after.covered_s > before.covered_s or (
                after.covered_s == before.covered_s and fewer
            )
            if better:
                out = coverage.replace(out, window, fresh)
            redone, kept = redone + 1, kept + better
            redone_s += window.end - window.start
            for_guard, for_coverage = for_guard + bool(bad), for_coverage + before.dropped
            log.info(
                "window %.1f-%.1f s: words covered %.1f of %.1f s of speech, %d failed the "
                "guard; decoded again: %.1f covered%s",
                window.start,
                window.end,
                before.covered_s,
                window.speech_s,
                len(bad),
                after.covered_s,
                " (kept)" if better else "",
                extra={"event": "redecoded"},
            )
        return out, _redecode_stats(len(windows), redone, kept, redone_s, for_guard, for_coverage)

    def _decode_alone(
        self, samples: np.ndarray, window: DecodeWindow, language: str, options: WhisperOptions
    ) -> list[Segment]:
        """``window`` decoded sequentially on its own, with faster-whisper's fallbacks
        (temperatures 0.0..1.0 on a compression, log-prob or no-speech failure) and no prompt
        from earlier text, which is how a loop carries on; times on the samples' timeline."""
        piece = samples[round(window.start * SAMPLE_RATE) : round(window.end * SAMPLE_RATE)]
        again, _ = self.model.transcribe(
            piece,
            **{**_decode_args(language, options), "vad_filter": True},
            temperature=TEMPERATURES,
            condition_on_previous_text=False,
        )
        shifted = [_segment(s, offset=window.start) for s in again]
        return coverage.within(shifted, window.start, window.end + coverage.WORD_SLACK_S)


# faster-whisper's default temperature fallback (WhisperModel.transcribe).
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _decode_args(language: str | None, options: WhisperOptions) -> dict[str, Any]:
    """The keywords every faster-whisper call gets, batched, sequential or again."""
    return {
        "language": language,
        "task": options.task,
        "hotwords": options.hotwords,
        "beam_size": options.beam_size,
        "vad_filter": options.vad,
        "word_timestamps": options.word_timestamps,
    }


def _passing(segments: list[Segment], speech: list[tuple[float, float]] | None) -> list[Segment]:
    """The segments the guard keeps (all of them when it is off)."""
    if speech is None:
        return segments
    return [s for s in segments if verdict(s, speech) is None]


def _redecode_stats(
    windows: int, redone: int, kept: int, redone_s: float, for_guard: int, for_coverage: int
) -> dict[str, Any]:
    return {
        "decode_windows": windows,
        "redecoded_windows": redone,
        "redecoded_kept": kept,  # re-decodes whose words replaced the first ones
        "redecoded_s": round(redone_s, 3),
        # Why (a window may have both reasons): a segment failed the guard, speech uncovered.
        "guard_redecoded_windows": for_guard,
        "coverage_redecoded_windows": for_coverage,
    }


def _used(options: WhisperOptions, vad_options: Any) -> dict[str, Any]:
    """The options to record; batched windows come from our VAD call, not the pipeline's."""
    if options.batched and options.vad:
        vad_options = coverage.vad_options()
    return {**asdict(options), "vad_options": _plain(vad_options)}


def _segment(seg: Any, offset: float = 0.0) -> Segment:
    words = [
        Word(
            start=max(w.start + offset, 0.0),
            end=max(w.end + offset, 0.0),
            word=w.word,
            probability=w.probability,
        )
        for w in seg.words or []
    ]
    return Segment(
        start=max(seg.start + offset, 0.0),
        end=max(seg.end + offset, 0.0),
        text=seg.text,
        words=words,
        avg_logprob=seg.avg_logprob,
        no_speech_prob=seg.no_speech_prob,
        compression_ratio=getattr(seg, "compression_ratio", None),
    )


def _plain(value: Any) -> Any:
    if value is None:
        return None
    try:
        return asdict(value)
    except TypeError:
        return value if isinstance(value, dict) else str(value)


def _auto_device() -> str:
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # no CUDA runtime at all: a CPU machine
        return "cpu"
