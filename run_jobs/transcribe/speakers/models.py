"""The baked speaker models on onnxruntime: where they are, and each loaded once per process
(``model_loads`` counts, as ``transcriber.model_loads`` does for Whisper: a job with speakers
"none" never loads one)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import onnxruntime

from common.config.settings import Speakers
from run_jobs.transcribe.speakers.bake import is_baked

_lock = threading.Lock()
_sessions: dict[tuple[str, str], onnxruntime.InferenceSession] = {}
_loads = 0


class SpeakerModelMissing(RuntimeError):
    """The baked models are not where the settings say (a deployment problem)."""


def model_loads() -> int:
    return _loads


def model_dir(settings: Speakers) -> Path:
    if settings.model_dir:
        return Path(settings.model_dir)
    return Path(sys.prefix) / "audionotes-models" / "speakers"


def session(settings: Speakers, name: str) -> onnxruntime.InferenceSession:
    """The ONNX model ``name`` of the baked folder, loaded on first use."""
    global _loads
    folder = model_dir(settings)
    key = (str(folder), name)
    with _lock:
        if key not in _sessions:
            if not is_baked(folder):
                raise SpeakerModelMissing(
                    f"no baked speaker models in {folder}: run `python -m "
                    f"run_jobs.transcribe.speakers.bake --into {folder}` (make install)"
                )
            options = onnxruntime.SessionOptions()
            if settings.threads:
                options.intra_op_num_threads = settings.threads
            _sessions[key] = onnxruntime.InferenceSession(
                str(folder / name), options, providers=["CPUExecutionProvider"]
            )
            _loads += 1
        return _sessions[key]
