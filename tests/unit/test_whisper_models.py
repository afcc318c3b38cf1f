"""The model catalog, the options it checks, and the bake of an image's models."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from common.config.settings import Tier
from common.domain.errors import InvalidInput
from common.domain.jobs import JobOptions, Priority
from common.domain.transcription_plan import ChunkPlan, resolve_model
from common.domain.whisper_models import CATALOG, WhisperTask, best_able, check_request
from functions.uploads import options_from_metadata
from run_jobs.transcribe import model_store
from tests.fakes import settings

INSTALLED = ("tiny.en", "base")


def test_the_catalog_names_what_each_model_can_do() -> None:
    assert list(CATALOG) == [
        "tiny.en",
        "base",
        "small",
        "medium",
        "large-v3",
        "large-v3-turbo",
        "distil-large-v3",
        "distil-large-v3.5",
    ]
    assert [m for m, info in CATALOG.items() if info.translates] == [
        "base",
        "small",
        "medium",
        "large-v3",
    ]
    assert {m for m, info in CATALOG.items() if info.english_only} == {
        "tiny.en",
        "distil-large-v3",
        "distil-large-v3.5",
    }
    assert best_able(INSTALLED, None, WhisperTask.TRANSCRIBE) == "base"
    assert best_able(["tiny.en", "large-v3-turbo", "large-v3"], "en", WhisperTask.TRANSCRIBE) == (
        "large-v3"
    )
    assert best_able(["tiny.en", "large-v3-turbo"], None, WhisperTask.TRANSLATE) is None


@pytest.mark.parametrize(
    ("model", "language", "task", "code"),
    [
        ("large-v9", None, WhisperTask.TRANSCRIBE, "unknown_model"),
        ("large-v3-turbo", None, WhisperTask.TRANSCRIBE, "model_not_installed"),
        ("tiny.en", "de", WhisperTask.TRANSCRIBE, "model_language_mismatch"),
        ("tiny.en", None, WhisperTask.TRANSLATE, "model_cannot_translate"),
    ],
)
def test_refusals_carry_codes(
    model: str, language: str | None, task: WhisperTask, code: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_request(model, language, task, INSTALLED)
    assert caught.value.code == code and model in caught.value.message


def test_turbo_and_distil_cannot_translate_even_where_installed() -> None:
    for model in ("large-v3-turbo", "distil-large-v3"):
        with pytest.raises(InvalidInput) as caught:
            check_request(model, None, WhisperTask.TRANSLATE, CATALOG)
        assert caught.value.code == "model_cannot_translate"
    assert check_request("base", "de", WhisperTask.TRANSLATE, INSTALLED).name == "base"


def test_each_tier_has_its_default_model() -> None:
    s = settings(
        transcription={
            "models": {"tiny.en": "/m/tiny.en", "large-v3-turbo": "/m/turbo"},
            "default_models": {"cpu": "tiny.en", "gpu": "large-v3-turbo"},
        }
    )
    assert resolve_model(JobOptions(), s) == "tiny.en"
    assert resolve_model(JobOptions(priority=Priority.HIGH), s) == "large-v3-turbo"
    assert resolve_model(JobOptions(model="tiny.en", priority=Priority.HIGH), s) == "tiny.en"


def test_a_default_that_cannot_do_the_task_gives_way_to_one_that_can() -> None:
    s = settings(
        transcription={
            "models": {"tiny.en": "/m/t", "base": "/m/b", "large-v3-turbo": "/m/turbo"},
            "default_models": {"cpu": "tiny.en", "gpu": "large-v3-turbo"},
        }
    )
    translate = WhisperTask.TRANSLATE
    assert resolve_model(JobOptions(priority=Priority.HIGH, task=translate), s) == "base"
    assert resolve_model(JobOptions(language="de"), s) == "large-v3-turbo"
    assert resolve_model(JobOptions(task=translate), s) == "base"
    with pytest.raises(InvalidInput) as caught:  # named: refused, never swapped
        resolve_model(JobOptions(model="large-v3-turbo", task=translate), s)
    assert caught.value.code == "model_cannot_translate"
    only_english = settings(
        transcription={
            "models": {"tiny.en": "/m/t"},
            "default_models": {"cpu": "tiny.en", "gpu": "tiny.en"},
        }
    )
    with pytest.raises(InvalidInput) as caught:  # nothing installed can: refused
        resolve_model(JobOptions(language="de"), only_english)
    assert caught.value.code == "model_language_mismatch"
    assert settings().transcription.default_models == {Tier.CPU: "base", Tier.GPU: "base"}


def test_a_default_model_must_be_installed() -> None:
    with pytest.raises(ValidationError, match="not one of models"):
        settings(transcription={"default_models": {"cpu": "base", "gpu": "large-v3"}})
    with pytest.raises(ValidationError, match="no model for the gpu tier"):
        settings(transcription={"default_models": {"cpu": "base"}})


def test_vocabulary_is_trimmed_distinct_and_bounded() -> None:
    options = JobOptions(vocabulary=[" Priya ", "Kubernetes", "Priya", "  "])
    assert options.vocabulary == ["Priya", "Kubernetes"]
    for bad in (["x" * 51], ["tab\there"], ["new\nline"], [f"t{i}" for i in range(101)], [""]):
        with pytest.raises(ValidationError):
            JobOptions(vocabulary=bad)
    with pytest.raises(ValidationError):
        JobOptions.model_validate({"task": "summarize"})


def test_metadata_carries_task_and_a_comma_separated_vocabulary() -> None:
    options, problem = options_from_metadata(
        {"vocabulary": "Priya, Kubernetes ,gRPC", "task": "translate", "model": "base"},
        settings(),
    )
    assert problem is None
    assert options.vocabulary == ["Priya", "Kubernetes", "gRPC"]
    assert options.task is WhisperTask.TRANSLATE


@pytest.mark.parametrize(
    ("metadata", "code", "header"),
    [
        ({"vocabulary": "x" * 51}, "bad_options", "x-goog-meta-vocabulary"),
        ({"vocabulary": "ok,bad\x07bell"}, "bad_options", "x-goog-meta-vocabulary"),
        ({"vocabulary": ",".join(f"t{i}" for i in range(101))}, "bad_options", "vocabulary"),
        ({"task": "summarize"}, "bad_options", "x-goog-meta-task"),
        ({"task": "translate", "model": "tiny.en"}, "model_cannot_translate", "x-goog-meta-task"),
        ({"language": "de", "model": "tiny.en"}, "model_language_mismatch", "x-goog-meta-language"),
        ({"model": "large-v3"}, "model_not_installed", "x-goog-meta-model"),
    ],
)
def test_bad_metadata_is_refused_with_a_code(
    metadata: dict[str, str], code: str, header: str
) -> None:
    options, problem = options_from_metadata(metadata, settings())
    assert problem is not None and problem.code == code and header in problem.message
    assert options == JobOptions()


def test_the_plan_carries_task_and_vocabulary_into_its_cache_variant() -> None:
    def plan(**changes: object) -> ChunkPlan:
        base: dict[str, object] = {
            "job_id": "j",
            "model": "base",
            "language": None,
            "duration_s": 30.0,
            "chunk_seconds": 1200.0,
            "overlap_s": 2.0,
        }
        return ChunkPlan.for_job(**{**base, **changes})  # type: ignore[arg-type]

    plain = plan()
    assert plain.cache_variant == "auto"
    translated = plan(task=WhisperTask.TRANSLATE, language="de")
    assert translated.cache_variant == "de-translate"
    worded = plan(vocabulary=("Priya",))
    assert (
        worded.cache_variant.startswith("auto-v")
        and worded.cache_variant != plan(vocabulary=("Kubernetes",)).cache_variant
    )
    assert len({plain.key, translated.key, worded.key}) == 3
    assert ChunkPlan.from_env(worded.to_env()) == worded


def test_bake_copies_package_models_into_the_image_folder(tmp_path: Path) -> None:
    s = settings(transcription={"cache_dir": str(tmp_path / "cache")})
    baked = model_store.bake(["tiny.en", "base"], tmp_path / "models", s)
    assert baked == {"tiny.en": tmp_path / "models/tiny.en", "base": tmp_path / "models/base"}
    for folder in baked.values():
        assert (folder / "model.bin").stat().st_size > 10_000_000
    # The baked folders are what a deployment's models map points at: they load offline.
    from faster_whisper import WhisperModel

    located = settings(transcription={"models": {k: str(v) for k, v in baked.items()}})
    for name in baked:
        WhisperModel(str(model_store.model_path(name, located, None)), compute_type="int8")
    again = model_store.bake(["tiny.en"], tmp_path / "models", s)  # done once, kept
    assert again["tiny.en"] == baked["tiny.en"]


def test_bake_fetches_other_models_through_faster_whispers_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[tuple[str, str]] = []

    def download(repo: str, output_dir: str) -> str:
        fetched.append((repo, output_dir))
        Path(output_dir).mkdir(parents=True)
        (Path(output_dir) / "model.bin").write_bytes(b"weights")
        return output_dir

    monkeypatch.setattr("faster_whisper.utils.download_model", download)
    baked = model_store.bake(["large-v3-turbo"], tmp_path, settings())
    assert [repo for repo, _ in fetched] == ["mobiuslabsgmbh/faster-whisper-large-v3-turbo"]
    assert (baked["large-v3-turbo"] / "model.bin").read_bytes() == b"weights"
    with pytest.raises(InvalidInput, match="not in the model catalog: large-v9"):
        model_store.bake(["large-v9"], tmp_path, settings())
