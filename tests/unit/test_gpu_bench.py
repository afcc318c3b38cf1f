"""bench/gpu.py: its arguments, grid, model resolution and memory sampler; no timing, no GPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gpu.py"


@pytest.fixture(scope="module")
def gpu() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module
    spec.loader.exec_module(module)
    return module


def test_defaults_are_the_catalog_on_cuda(gpu: ModuleType) -> None:
    from common.domain.whisper_models import CATALOG

    args = gpu.parse_args([])
    assert [name for name, _ in args.models] == list(CATALOG)
    assert args.device == "cuda" and args.minutes == 20
    assert args.batch_sizes == [1, 8, 16]
    assert args.compute_types == ["float16", "int8_float16"]
    assert gpu.parse_args(["--device", "cpu"]).compute_types == ["int8"]


def test_models_and_the_grid(gpu: ModuleType) -> None:
    args = gpu.parse_args(
        ["--models", "a, b=/models/b", "--batch-sizes", "1,8", "--compute-types", "int8"]
    )
    assert args.models == [("a", None), ("b", "/models/b")]
    cells = gpu.grid(args, {"a": "/a", "b": "/models/b"})
    assert [(c.model, c.spec, c.batch_size) for c in cells] == [
        ("a", "/a", 1),
        ("a", "/a", 8),
        ("b", "/models/b", 1),
        ("b", "/models/b", 8),
    ]
    # A model that did not resolve has no cells (its error is reported once instead).
    assert {c.model for c in gpu.grid(args, {"b": "/models/b"})} == {"b"}
    with pytest.raises(SystemExit):
        gpu.parse_args(["--batch-sizes", "0,8"])


def test_resolve_like_a_deployment(gpu: ModuleType) -> None:
    assert gpu.resolve("large-v3", "/models/v3") == "/models/v3"
    # Installed here (a package): its folder.
    assert (Path(gpu.resolve("tiny.en", None)) / "model.bin").exists()
    # In the catalog, not installed: its hub repo, for a machine that can download it.
    assert gpu.resolve("large-v3-turbo", None) == "mobiuslabsgmbh/faster-whisper-large-v3-turbo"
    assert gpu.resolve("org/some-ct2-model", None) == "org/some-ct2-model"


def test_audio_loops(gpu: ModuleType) -> None:
    # sox "repeat N" plays a piece N + 1 times.
    assert gpu.loops_needed(1200, 300) == 3
    assert gpu.loops_needed(1200, 299) == 4
    assert gpu.loops_needed(60, 60) == 0
    assert gpu.loops_needed(30, 60) == 0
    words = gpu._sentences(45).split()
    assert gpu._sentences(45) == gpu._sentences(45)  # seeded: the same file every run
    assert len(words) > 40


def test_peak_memory_from_a_fake_nvidia_smi(
    gpu: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-shot query gives the baseline; the -lms stream's largest line is the peak."""
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *-lms*) printf "1200\\n3500\\n2100\\n"; exec sleep 5;; *) echo 1000;; esac\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # as where pynvml is not installed
    with gpu.PeakMemory(0, interval_s=0.05) as memory:
        pass
    assert memory.source == "nvidia-smi"
    assert memory.baseline_mib == 1000
    assert memory.peak_mib == 3500
    assert gpu.parse_smi("  812\n") == 812 and gpu.parse_smi("[N/A]") is None


def test_table_shows_errors_beside_results(gpu: ModuleType) -> None:
    ok = {
        "model": "m",
        "compute_type": "int8",
        "batch_size": 8,
        "load_s": 1.0,
        "first_segment_s": 2.0,
        "rtf": 0.05,
        "x_real_time": 20.0,
        "gpu_mem_peak_mib": 3000.0,
        "gpu_mem_baseline_mib": 500.0,
        "gpu_mem_source": "nvidia-smi",
        "rss_peak_mib": 900.0,
        "segments": 3,
        "words": 40,
    }
    bad = {"model": "x", "compute_type": "float16", "batch_size": 16, "error": "out of memory"}
    text = gpu.table([ok, bad])
    assert "| m | int8 | 8 | 1.00 | 2.00 | 0.0500 | 20.0 | 3,000 (500, nvidia-smi) |" in text
    assert "error: out of memory" in text
