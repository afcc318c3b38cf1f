"""Audio through PyAV (FFmpeg): probing a file's duration, and decoding one window of it.

Whisper wants 16 kHz mono float32. Anything FFmpeg reads works (wav, mp3, m4a/aac, flac,
ogg/opus, webm); anything it cannot read raises ``InvalidInput`` with code
``undecodable_audio``, a permanent error that must not be retried.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import av
import numpy as np

from common.domain.errors import InvalidInput

SAMPLE_RATE = 16_000
UNDECODABLE = "undecodable_audio"
NO_AUDIO = "no_audio_stream"

Source = str | Path | IO[bytes]


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float
    codec: str
    sample_rate: int
    channels: int
    # True when the container did not say and the whole stream was decoded to measure it.
    measured: bool = False


def probe(source: Source) -> AudioInfo:
    """The duration and format of ``source`` (a path or a seekable binary file).

    Decodes the first frame too, so a file with a plausible header and garbage after it
    fails here rather than in a transcribe task.
    """
    with _open(source) as container:
        stream = _audio_stream(container)
        try:
            first = next(iter(container.decode(stream)), None)
        except av.error.FFmpegError as exc:
            raise _undecodable(exc) from exc
        if first is None:
            raise InvalidInput(
                "the audio cannot be decoded: its stream holds no decodable frames",
                code=UNDECODABLE,
            )
        duration = _declared_duration(container, stream)
        measured = duration is None
        if duration is None:
            duration = _measure(container, stream, first)
        return AudioInfo(
            duration_s=duration,
            codec=stream.codec_context.name,
            sample_rate=int(stream.codec_context.sample_rate or 0),
            channels=int(stream.codec_context.channels or 0),
            measured=measured,
        )


def decode_window(source: Source, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
    """Samples of ``[start_s, end_s)`` (end None: to the end) as 16 kHz mono float32."""
    if start_s < 0 or (end_s is not None and end_s <= start_s):
        raise ValueError(f"bad window [{start_s}, {end_s})")
    pieces: list[np.ndarray] = []
    first_time: float | None = None
    with _open(source) as container:
        stream = _audio_stream(container)
        if start_s > 0:
            # Seeks to the nearest earlier keyframe; the exact start is trimmed below.
            container.seek(int(start_s * av.time_base), backward=True, any_frame=False)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                frame_time = frame.time if frame.time is not None else 0.0
                frame_end = frame_time + frame.samples / max(frame.sample_rate, 1)
                if frame_end <= start_s:
                    continue
                if end_s is not None and frame_time >= end_s:
                    break
                if first_time is None:
                    first_time = frame_time
                pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
        except av.error.FFmpegError as exc:
            raise _undecodable(exc) from exc
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    samples = np.concatenate(pieces).astype(np.float32) / 32768.0
    skip = max(0, round((start_s - (first_time or 0.0)) * SAMPLE_RATE))
    samples = samples[skip:]
    if end_s is not None:
        samples = samples[: round((end_s - start_s) * SAMPLE_RATE)]
    return samples


def _open(source: Source) -> Any:
    try:
        return av.open(source if not isinstance(source, Path) else str(source), mode="r")
    except av.error.FFmpegError as exc:
        raise _undecodable(exc) from exc


def _audio_stream(container: Any) -> Any:
    if not container.streams.audio:
        raise InvalidInput("the file has no audio stream", code=NO_AUDIO)
    return container.streams.audio[0]


def _declared_duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return None


def _measure(container: Any, stream: Any, first: Any) -> float:
    """Decode to the end: some streams (webm, raw ogg) do not state their length."""
    end = 0.0
    try:
        for frame in itertools.chain([first], container.decode(stream)):
            if frame.time is not None:
                end = max(end, frame.time + frame.samples / max(frame.sample_rate, 1))
    except av.error.FFmpegError as exc:
        raise _undecodable(exc) from exc
    return end


def _undecodable(exc: Exception) -> InvalidInput:
    return InvalidInput(f"the audio cannot be decoded: {exc}", code=UNDECODABLE)
