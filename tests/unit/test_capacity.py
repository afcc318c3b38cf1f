"""bench/capacity.py: the capacity arithmetic on known inputs."""

from __future__ import annotations

import importlib.util
import json
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


def test_derived_defaults_by_hand(capacity: ModuleType) -> None:
    # large-v3: V100S 54x unscaled; large-v2 on a 3070 Ti 47.5x x 608/300; V100S x 1134/300.
    v3, turbo = capacity.V3_RTF, capacity.TURBO_RTF
    assert v3 == pytest.approx((0.018519, 0.042667, 0.070000), abs=1e-6)
    # turbo: 3090 108x unscaled, x sqrt(936/300) = x 1.76635, x 936/300 = x 3.12.
    assert turbo == pytest.approx((0.009259, 0.016355, 0.028889), abs=1e-6)
    # 5 s platform + image/init 10/25/60 + load 5/15/25 (v3) or 3/8/15 (turbo).
    assert capacity.V3_START_S == (20, 45, 90)
    assert capacity.TURBO_START_S == (18, 38, 80)


def test_chunks_per_life_by_hand(capacity: ModuleType) -> None:
    # Chunks begin at 100, 200, ..., 900; at 900 exactly the reserve (100 s) is left, so it is
    # taken, and it ends at the timeout: 9 chunks.
    assert capacity.chunks_per_life(100, 100, 1000, 100) == 9
    assert capacity.chunks_per_life(100, 101, 1000, 100) == 8  # 800 / 101 = 7.9
    # One chunk even when the start leaves exactly the reserve.
    assert capacity.chunks_per_life(900, 50, 1000, 100) == 1
    with pytest.raises(ValueError):
        capacity.chunks_per_life(901, 50, 1000, 100)


def _one_chunk() -> dict[str, float]:
    return {"target_audio_h_per_h": 1, "file_hours": 1, "chunk_seconds": 3600, "overlap_s": 0}


def test_pull_worker_by_hand(capacity: ModuleType) -> None:
    load = capacity.Workload(file_mb=100, **_one_chunk())
    tier = capacity.Tier(
        "t",
        rtf=0.01,
        overhead_s=10,
        vcpu=2,
        gib=4,
        gpus=1,
        gpu_per_s=0.001,
        per_chunk_s=2,
        timeout_s=1000,
    )
    worker = capacity.Worker(reserve_s=100, idle_s=30, backlog_per_worker=2)
    p = capacity.pull_plan(tier, load, worker, vcpu_per_s=0.01, gib_per_s=0.1)
    assert tier.start_s == 8
    assert p.service_s == pytest.approx(38)  # 2 + 0.01 x 3600
    assert p.chunks_per_life == 24  # floor((1000 - 100 - 8) / 38) + 1 = 23 + 1
    assert p.life_s == pytest.approx(8 + 24 * 38 + 30)
    assert p.task_s_per_file == pytest.approx(38 + (8 + 30) / 24)
    price = 0.001 + 2 * 0.01 + 4 * 0.1
    assert p.usd_per_audio_hour == pytest.approx((38 + 38 / 24) * price)
    # Alone, the file gets ceil(1 / 2) = 1 worker, which pays its start and idle tail whole.
    assert p.lone_file_usd_per_audio_hour == pytest.approx((38 + 38) * price)
    assert p.fits and p.design == capacity.NEW
    # The old design on the same tier: one task, the whole overhead.
    old = capacity.plan(tier, load, vcpu_per_s=0.01, gib_per_s=0.1)
    assert old.task_s_per_file == pytest.approx(10 + 36)
    # A chunk longer than the reserve would run past the timeout.
    slow = capacity.pull_plan(capacity.replace(tier, rtf=0.1), load, worker)
    assert not slow.fits


def test_old_and_new_at_the_central_large_v3_case(capacity: ModuleType) -> None:
    """By hand: RTF 0.042667 x 3608 s = 153.94 s of decoding per file, 3 chunks of 3 s each,
    chunk service (9 + 153.94) / 3 = 54.31 s; start 45 s; price 0.0001867 + 4 x 0.000018 +
    16 x 0.000002 = 0.0002907 USD per s."""
    load = capacity.Workload()
    case = next(
        c for c in capacity.gpu_cases(capacity._parser().parse_args([])) if c.case == "central"
    )
    old = capacity.plan(case.tier, load)
    new = capacity.pull_plan(case.tier, load)
    assert old.task_s_per_file == pytest.approx(3 * 48 + 153.94, abs=0.01)
    assert old.gpus == pytest.approx(297.94 * 10_000 / 3600, abs=0.1)  # 827.6
    assert old.usd_per_audio_hour == pytest.approx(297.94 * 0.0002907, abs=1e-5)  # 0.0866
    assert new.chunks_per_life == 49  # floor((3000 - 300 - 45) / 54.31) + 1 = 48 + 1
    assert new.task_s_per_file == pytest.approx(162.94 + 3 * 75 / 49, abs=0.01)  # 167.53
    assert new.gpus == pytest.approx(167.53 * 10_000 / 3600, abs=0.1)  # 465.4
    assert new.usd_per_audio_hour == pytest.approx(167.53 * 0.0002907, abs=1e-5)  # 0.0487
    # Alone: ceil(3 / 2) = 2 workers, each paying 45 + 30 s.
    assert new.lone_file_usd_per_audio_hour == pytest.approx(
        (162.94 + 2 * 75) * 0.0002907, abs=1e-5
    )


def test_cpu_rows_keep_their_old_figures(capacity: ModuleType) -> None:
    tiny = capacity.cpu_tiers(capacity._parser().parse_args([]))[0]
    assert tiny.overhead_s == pytest.approx(13.4)  # 10 s platform + 3.4 s measured
    assert tiny.start_s == pytest.approx(12.84)  # of which 1.54 + 1.30 once per worker
    old = capacity.plan(tiny, capacity.Workload())
    assert old.task_s_per_file == pytest.approx(3 * 13.4 + 0.0325 * 3608)  # 157.5
    assert old.usd_per_audio_hour == pytest.approx(0.0069, abs=1e-4)


def test_targets_solver_old_design_closed_form(capacity: ModuleType) -> None:
    # Cost = (10 + 3600 x RTF) s x 0.001 USD/s per audio hour.
    load = capacity.Workload(**_one_chunk())
    tier = capacity.Tier("t", rtf=0.1, overhead_s=10, vcpu=0, gib=0, gpus=1, gpu_per_s=0.001)
    old = capacity.for_design(capacity.OLD, capacity.Worker())
    assert capacity.rtf_for(1.0, tier, load, old) == pytest.approx((1000 - 10) / 3600)
    assert capacity.start_for(1.0, tier, load, old, 3600) == pytest.approx(1000 - 360)
    # Not even RTF 0 (10 s) or a zero start (360 s) gets there.
    assert capacity.rtf_for(0.005, tier, load, old) is None
    assert capacity.start_for(0.3, tier, load, old, 3600) is None


def test_targets_solver_new_design_by_hand(capacity: ModuleType) -> None:
    """Start 10, 2 s per chunk, timeout 1000, reserve 100, idle 30: a life's fixed part is
    40 s; near RTF 0.1 a chunk takes ~362 s, so n = floor(890 / s) + 1 = 3, and the cost is
    (s + 40 / 3) x 0.001. For 0.4 USD: s <= 386.67, RTF = (386.67 - 2) / 3600; at RTF 0.1,
    362 + (start + 30) / 3 <= 400 gives start <= 84 (n stays 3 for starts up to 176)."""
    load = capacity.Workload(**_one_chunk())
    tier = capacity.Tier(
        "t",
        rtf=0.1,
        overhead_s=12,
        vcpu=0,
        gib=0,
        gpus=1,
        gpu_per_s=0.001,
        per_chunk_s=2,
        timeout_s=1000,
    )
    new = capacity.for_design(capacity.NEW, capacity.Worker(reserve_s=100, idle_s=30))
    assert new(tier, load).usd_per_audio_hour == pytest.approx((362 + 40 / 3) * 0.001)
    assert capacity.rtf_for(0.4, tier, load, new) == pytest.approx((1160 / 3 - 2) / 3600)
    assert capacity.start_for(0.4, tier, load, new, 900) == pytest.approx(84)
    # Below the per-chunk work alone (2 s x 0.001), nothing reaches it.
    assert capacity.rtf_for(0.001, tier, load, new) is None


def test_main_prints_tables_and_json(
    capacity: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    capacity.main([])
    text = capsys.readouterr().out
    assert "what it takes to reach a target" in text and "L4 large-v3-turbo central" in text
    capacity.main(["--json", "--targets-usd", "0.02", "--v3-rtf", "0.02,0.03,0.04"])
    result = json.loads(capsys.readouterr().out)
    assert [t["rtf"] for t in result["tiers"][:3]] == [0.02, 0.03, 0.04]
    assert {p["design"] for p in result["plans"]} == {capacity.OLD, capacity.NEW}
    assert len(result["targets"]) == 6 and all(s["kind"] for s in result["sources"])
    with pytest.raises(SystemExit):
        capacity.main(["--v3-rtf", "0.02,0.03"])
