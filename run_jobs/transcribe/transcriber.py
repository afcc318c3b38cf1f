"""The ``Transcriber``: faster-whisper behind one small call, with the options it used.

The model is loaded once per process and shared by every chunk and job the process handles
(``model_loads()`` counts the loads, for the logs and the benchmark). CPU runs int8, GPU runs
float16; ``BatchedInferencePipeline`` is used where it is faster (on GPU by default), and a
GPU out-of-memory error halves its batch until it fits, then falls back to sequential.

Batched decoding has no fallbacks and now and then drops runs of sentences (sequential decoding
skips one at times too), so with VAD on we find the speech ourselves, give the batched pipeline
its ≤30 s windows, and decode again, sequentially and alone, any window whose speech the words
leave uncovered (``coverage.py``); ``redecoded_windows`` and ``redecoded_s`` say how much.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from common.audio.decode import SAMPLE_RATE
from common.config.settings import Settings
from common.domain.transcripts import Segment, Word
from common.obs.logs import get_logger
from run_jobs.transcribe import coverage
from run_jobs.transcribe.coverage import DecodeWindow
from run_jobs.transcribe.speech_filter import drop_non_speech

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
        common: dict[str, Any] = {
            "language": language,
            "beam_size": options.beam_size,
            "vad_filter": options.vad,
            "word_timestamps": options.word_timestamps,
        }
        # The speech, found once: it makes the batched windows and checks either decoder.
        windows = coverage.group_windows(coverage.speech_spans(samples)) if options.vad else None
        if windows == []:  # no speech: nothing to decode
            used = {**_used(options, None), **_redecode_stats(0, 0, 0, 0.0)}
            return Transcribed(language or "en", None, [], used)
        if options.batched:
            from faster_whisper import BatchedInferencePipeline

            pipeline = BatchedInferencePipeline(self.model)
            extra: dict[str, Any] = {}
            if windows:  # the pipeline decodes exactly these windows
                extra = {"clip_timestamps": [{"start": w.start, "end": w.end} for w in windows]}
            segments, info = pipeline.transcribe(
                samples, batch_size=options.batch_size, **common, **extra
            )
        else:
            segments, info = self.model.transcribe(samples, **common)
        out: list[Segment] = []
        for seg in segments:  # decoding happens as we iterate
            out.append(_segment(seg))
            if duration > 0:
                on_progress(min(seg.end / duration, 1.0))
        used = _used(options, info.vad_options)
        if windows is not None:
            out, redone = self._redecode_dropped(samples, windows, out, info.language, options)
            used.update(redone)
        # Whisper's no-speech rule on every path (the batched pipeline skips it): noise ends
        # like silence, with no words.
        out, dropped = drop_non_speech(out)
        used["non_speech_dropped"] = len(dropped)
        for d in dropped:
            log.info(
                "dropped %.1f-%.1f s %r: %s",
                d.start,
                d.end,
                d.text,
                d.reason,
                extra={"event": "non_speech"},
            )
        return Transcribed(
            language=info.language,
            language_probability=info.language_probability,
            segments=out,
            options=used,
        )

    def _redecode_dropped(
        self,
        samples: np.ndarray,
        windows: list[DecodeWindow],
        segments: list[Segment],
        language: str,
        options: WhisperOptions,
    ) -> tuple[list[Segment], dict[str, Any]]:
        """Decode again, sequentially (with its fallbacks) and alone, each window whose words
        leave its speech uncovered; the new words replace the window's if they cover more."""
        out = segments
        redone, kept, redone_s = 0, 0, 0.0
        for window in windows:
            before = coverage.coverage(window, out)
            if not before.dropped:
                continue
            piece = samples[round(window.start * SAMPLE_RATE) : round(window.end * SAMPLE_RATE)]
            again, _ = self.model.transcribe(
                piece,
                language=language,
                beam_size=options.beam_size,
                vad_filter=True,
                word_timestamps=options.word_timestamps,
            )
            shifted = [_segment(s, offset=window.start) for s in again]
            fresh = coverage.within(shifted, window.start, window.end + coverage.WORD_SLACK_S)
            after = coverage.coverage(window, fresh)
            better = after.covered_s > before.covered_s
            if better:
                out = coverage.replace(out, window, fresh)
            redone, kept, redone_s = redone + 1, kept + better, redone_s + window.end - window.start
            log.info(
                "window %.1f-%.1f s: words covered %.1f of %.1f s of speech; decoded again: %.1f",
                window.start,
                window.end,
                before.covered_s,
                window.speech_s,
                after.covered_s,
                extra={"event": "redecoded"},
            )
        return out, _redecode_stats(len(windows), redone, kept, redone_s)


def _redecode_stats(windows: int, redone: int, kept: int, redone_s: float) -> dict[str, Any]:
    return {
        "decode_windows": windows,
        "redecoded_windows": redone,
        "redecoded_kept": kept,  # re-decodes whose words replaced the batched ones
        "redecoded_s": round(redone_s, 3),
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
