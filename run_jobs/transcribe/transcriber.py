"""The ``Transcriber``: faster-whisper behind one small call, with the options it used.

The model is loaded once per process and shared by every chunk and job the process handles
(``model_loads()`` counts the loads, for the logs and the benchmark). CPU runs int8, GPU runs
float16; ``BatchedInferencePipeline`` is used where it is faster (on GPU by default), and a
GPU out-of-memory error halves its batch until it fits, then falls back to sequential.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from common.audio import SAMPLE_RATE
from common.logs import get_logger
from common.settings import Settings
from common.transcripts import Segment, Word

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
        if options.batched:
            from faster_whisper import BatchedInferencePipeline

            pipeline = BatchedInferencePipeline(self.model)
            segments, info = pipeline.transcribe(samples, batch_size=options.batch_size, **common)
        else:
            segments, info = self.model.transcribe(samples, **common)
        out: list[Segment] = []
        for seg in segments:  # decoding happens as we iterate
            out.append(_segment(seg))
            if duration > 0:
                on_progress(min(seg.end / duration, 1.0))
        return Transcribed(
            language=info.language,
            language_probability=info.language_probability,
            segments=out,
            options={**asdict(options), "vad_options": _plain(info.vad_options)},
        )


def _segment(seg: Any) -> Segment:
    words = [
        Word(
            start=max(w.start, 0.0),
            end=max(w.end, 0.0),
            word=w.word,
            probability=w.probability,
        )
        for w in seg.words or []
    ]
    return Segment(
        start=max(seg.start, 0.0),
        end=max(seg.end, 0.0),
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
