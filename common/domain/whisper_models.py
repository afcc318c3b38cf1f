"""The Whisper models this system knows, what each can do, and the checks a job's options
pass before anything is queued.

The catalog is about the models themselves; which of them a deployment carries is
``Settings.transcription.models`` (the image bakes exactly those: run_jobs/transcribe/Dockerfile).
A job is refused at submission, with a code, when it asks for a model that is unknown, not
installed, or unable to do what it asks (a language an English-only model cannot hear, a
translation a model was not trained for).

Sizes and speeds are the published ones (OpenAI's model card table and faster-whisper's
benchmarks), as a guide for choosing, not measurements of this system: ``bench/`` has those.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from common.domain.errors import InvalidInput


class WhisperTask(StrEnum):
    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"  # to English, whatever was spoken


@dataclass(frozen=True)
class ModelInfo:
    name: str
    hub_repo: str  # where an image build downloads it (faster-whisper's own download)
    parameters_m: int
    english_only: bool
    translates: bool
    relative_speed: float  # against large-v3 = 1 on the same GPU (published)
    gpu_memory_gb: float  # float16, beam 5, approximate (published)
    quality: int  # higher is more accurate: which model stands in for a default that cannot


CATALOG: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo("tiny.en", "Systran/faster-whisper-tiny.en", 39, True, False, 10.0, 1.0, 1),
        ModelInfo("base", "Systran/faster-whisper-base", 74, False, True, 7.0, 1.0, 2),
        ModelInfo("small", "Systran/faster-whisper-small", 244, False, True, 4.0, 2.0, 3),
        ModelInfo("medium", "Systran/faster-whisper-medium", 769, False, True, 2.0, 3.0, 4),
        ModelInfo("large-v3", "Systran/faster-whisper-large-v3", 1550, False, True, 1.0, 4.5, 7),
        # Turbo keeps large-v3's encoder with 4 decoder layers, fine-tuned on transcription
        # only: it does not translate.
        ModelInfo(
            "large-v3-turbo",
            "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
            809,
            False,
            False,
            8.0,
            2.5,
            6,
        ),
        # Distilled on English speech: English output only.
        ModelInfo(
            "distil-large-v3",
            "Systran/faster-distil-whisper-large-v3",
            756,
            True,
            False,
            6.0,
            2.5,
            5,
        ),
        ModelInfo(
            "distil-large-v3.5",
            "distil-whisper/distil-large-v3.5-ct2",
            756,
            True,
            False,
            6.0,
            2.5,
            5,
        ),
    )
}


def check_request(
    model: str, language: str | None, task: WhisperTask, installed: Collection[str]
) -> ModelInfo:
    """The model's entry, if it is installed and can do what the job asks; otherwise
    InvalidInput with a code the job's error (or the API's 422) carries."""
    info = CATALOG.get(model)
    if info is None:
        raise InvalidInput(
            f"unknown model {model!r}; known: {', '.join(CATALOG)}", code="unknown_model"
        )
    if model not in installed:
        raise InvalidInput(
            f"model {model} is not installed in this deployment; installed: "
            f"{', '.join(sorted(installed))}",
            code="model_not_installed",
        )
    if info.english_only and language not in (None, "en"):
        raise InvalidInput(
            f"model {model} transcribes English only; the job asks for {language!r}",
            code="model_language_mismatch",
        )
    if task is WhisperTask.TRANSLATE and not info.translates:
        raise InvalidInput(
            f"model {model} cannot translate; use a multilingual model such as base, small, "
            "medium or large-v3",
            code="model_cannot_translate",
        )
    return info


def able(info: ModelInfo, language: str | None, task: WhisperTask) -> bool:
    """Whether the model can hear ``language`` and do ``task``."""
    hears = not info.english_only or language in (None, "en")
    return hears and (task is WhisperTask.TRANSCRIBE or info.translates)


def best_able(installed: Collection[str], language: str | None, task: WhisperTask) -> str | None:
    """The most accurate installed model able to do what is asked, if any."""
    fit = [CATALOG[n] for n in installed if n in CATALOG and able(CATALOG[n], language, task)]
    return max(fit, key=lambda m: m.quality).name if fit else None
