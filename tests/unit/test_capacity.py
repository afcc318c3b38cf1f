"""bench/capacity.py: the capacity arithmetic on known inputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "capacity.py"


@pytest.fixture(scope="module")
def capacity() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_capacity", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_capacity"] = module
    spec.loader.exec_module(module)
    return module


def test_one_task_by_hand(capacity: ModuleType) -> None:
    load = capacity.Workload(
        target_audio_h_per_h=1, file_hours=1, file_mb=100, chunk_seconds=3600, overlap_s=0
    )
    tier = capacity.Tier("t", rtf=0.1, overhead_s=10, vcpu=2, gib=4, gpus=1, gpu_per_s=0.001)
    p = capacity.plan(tier, load, vcpu_per_s=0.01, gib_per_s=0.1)
    assert load.chunks() == [3600]
    assert p.tasks_per_file == 1
    assert p.task_s_per_file == pytest.approx(370)  # 10 + 0.1 x 3600
    assert p.tasks_in_flight == pytest.approx(370 / 3600)
    assert p.gpus == pytest.approx(370 / 3600)
    assert p.audio_h_per_task_h == pytest.approx(3600 / 370)
    assert p.usd_per_hour == pytest.approx(370 * (0.001 + 2 * 0.01 + 4 * 0.1))
    assert p.usd_per_audio_hour == p.usd_per_hour


def test_chunks_follow_the_production_plan(capacity: ModuleType) -> None:
    load = capacity.Workload(chunk_seconds=1200, overlap_s=2)
    # Inner chunks decode the overlap on both sides, the outer ones on one.
    assert load.chunks() == pytest.approx([1202, 1204, 1202])
    # A tail shorter than the planner's minimum joins the chunk before it.
    short_tail = capacity.Workload(file_hours=(2 * 1200 + 10) / 3600, chunk_seconds=1200)
    assert len(short_tail.chunks()) == 2


def test_design_target_on_l4_matches_the_terraform_readme(capacity: ModuleType) -> None:
    """terraform/README.md "What it costs": RTF 0.05, 45 s per task, 20-min chunks ->
    ~315 GPU-s per audio hour, ~875 L4s, ~$590 GPU + ~$330 CPU/memory per hour."""
    load = capacity.Workload()
    gpu = capacity.Tier("gpu", 0.05, 45.0, 4.0, 16.0, 1.0, capacity.L4_PER_S)
    p = capacity.plan(gpu, load)
    assert p.task_s_per_file == pytest.approx(3 * 45 + 0.05 * 3608)
    assert p.gpus == pytest.approx(876.1, abs=0.1)
    assert 10_000 * p.task_s_per_file * capacity.L4_PER_S == pytest.approx(589, abs=1)
    assert p.usd_per_hour == pytest.approx(917, abs=1)
    assert p.usd_per_audio_hour == pytest.approx(0.0917, abs=1e-4)


def test_sensitivity_scales_rtf_and_is_monotonic(capacity: ModuleType) -> None:
    load = capacity.Workload()
    tier = capacity.Tier("cpu", 0.04, 5.0, 2.0, 4.0)
    rows = capacity.sensitivity(tier, load)
    assert [r for r, _ in rows] == pytest.approx([0.04 * f for f in capacity.FACTORS])
    costs = [p.usd_per_audio_hour for _, p in rows]
    assert costs == sorted(costs)
    one = dict(zip(capacity.FACTORS, rows, strict=True))[1.0][1]
    assert one == capacity.plan(tier, load)
    assert all(p.gpus == 0 for _, p in rows)
