"""Capacity model: measured (or assumed) per-worker throughput -> tasks in flight, GPUs,
a CPU alternative, and cost per audio hour at the design target (10,000 audio hours per hour).

    .venv/bin/python bench/capacity.py [--gpu-rtf 0.05] [--cpu-rtf 0.0325] [--json]

Pure arithmetic on its inputs; nothing is run. Every input is a flag whose help says whether
its default is **measured** here (bench/RESULTS.md: transcription and load sections) or an
**assumption** (list prices, GPU speed: this project has no GPU), so the model can be re-run as
the figures change. Chunking is the production planner (``ChunkPlan.for_job``) with the
default ``Limits.chunk_seconds`` and ``Transcription.chunk_overlap_s``.

Steady state (Little's law): task-seconds needed per wall-second = tasks in flight. Every
chunk is one Cloud Run task: ``overhead_s + rtf * chunk_audio_s`` seconds, billed for its
GPU (if any), vCPUs and memory for that long. One GPU per GPU task.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.config.settings import Limits, Transcription  # noqa: E402
from common.domain.transcription_plan import ChunkPlan  # noqa: E402

# --- defaults, each labelled ----------------------------------------------------------------
# Design target (DESIGN.md): 10,000 audio hours per hour, average file 1 h / 100 MB.
TARGET_AUDIO_H_PER_H = 10_000.0
FILE_HOURS = 1.0
FILE_MB = 100.0
# ASSUMED, GPU speed: faster-whisper's README benchmark (large-v2, fp16, beam 5, 13 min of
# audio on an RTX 3070 Ti 8 GB) gives 63 s sequential (RTF ~0.081) and 17 s with
# batch_size=8 (RTF ~0.022); an L4 has half that card's memory bandwidth, so 0.05 for
# large-v3 batched on an L4 is a middle guess (and terraform/README.md's figure).
GPU_RTF = 0.05
# ASSUMED, GPU task start: scheduling, pulling a ~10 GB CUDA image, loading a large model.
GPU_OVERHEAD_S = 45.0
# ASSUMED, Cloud Run us-central1 list prices (jobs; instance billing), USD per second.
L4_PER_S = 0.0001867  # per GPU-second, L4, no zonal redundancy
VCPU_PER_S = 0.000018  # per vCPU-second
GIB_PER_S = 0.000002  # per GiB-second
# Cloud Run's minimum shape for a GPU task (4 vCPU, 16 GiB), as terraform/README.md assumes.
GPU_TASK_VCPU = 4.0
GPU_TASK_GIB = 16.0
# MEASURED, CPU speed: bench/RESULTS.md "Transcription", worker-batched on 10 min of speech,
# tiny.en int8 beam 5 batch 8, 2 shared vCPUs (AMD EPYC): RTF 0.0325.
CPU_RTF = 0.0325
# MEASURED, CPU task overhead: everything in a task but the model's inference (process start
# and imports, fetch, decode, model load, chunk result, merge, renderings, state, publish);
# bench/RESULTS.md "Load (local stack)", median of 8 tasks run side by side on 2 shared cores.
CPU_OVERHEAD_S = 3.4
# ASSUMED, what the local stack cannot show: Cloud Run scheduling a CPU task and starting its
# container (a ~2 GB image without CUDA). No GCP measurement exists in this project.
CPU_PLATFORM_START_S = 10.0
# The shape the CPU figures were measured on: 2 vCPUs; peak RSS 1.07 GB for 10 min (batched),
# so 4 GiB leaves room for a 20-minute chunk (ASSUMED size).
CPU_TASK_VCPU = 2.0
CPU_TASK_GIB = 4.0
# ASSUMED, a CPU tier with a model nearer production quality: faster-whisper's README, small,
# int8, batch_size=8, beam 5, 8 threads on an i7-12700K: 13 min of audio in 51 s (RTF ~0.065),
# as an 8 vCPU / 8 GiB task; overhead as the measured CPU task's.
CPU_SMALL_RTF = 0.065
CPU_SMALL_VCPU = 8.0
CPU_SMALL_GIB = 8.0
FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


@dataclass(frozen=True)
class Tier:
    """One way of running a transcribe task."""

    name: str
    rtf: float  # transcription seconds per audio second, per task
    overhead_s: float  # per task: start, fetch, model load, decode, results
    vcpu: float
    gib: float
    gpus: float = 0.0
    gpu_per_s: float = 0.0

    def price_per_task_s(self, vcpu_per_s: float, gib_per_s: float) -> float:
        return self.gpus * self.gpu_per_s + self.vcpu * vcpu_per_s + self.gib * gib_per_s


@dataclass(frozen=True)
class Workload:
    target_audio_h_per_h: float = TARGET_AUDIO_H_PER_H
    file_hours: float = FILE_HOURS
    file_mb: float = FILE_MB
    chunk_seconds: float = field(default_factory=lambda: float(Limits().chunk_seconds))
    overlap_s: float = field(default_factory=lambda: Transcription().chunk_overlap_s)

    @property
    def files_per_hour(self) -> float:
        return self.target_audio_h_per_h / self.file_hours

    def chunks(self) -> list[float]:
        """Seconds of audio each task of one file decodes (the production chunk plan)."""
        plan = ChunkPlan.for_job(
            job_id="capacity",
            model="m",
            language=None,
            duration_s=self.file_hours * 3600,
            chunk_seconds=self.chunk_seconds,
            overlap_s=self.overlap_s,
        )
        total = plan.duration_s
        return [
            (end if end is not None else total) - start
            for start, end in map(plan.window, range(plan.chunk_count))
        ]


@dataclass(frozen=True)
class Plan:
    tier: str
    tasks_per_file: int
    task_s_per_file: float  # sum over the file's tasks
    audio_h_per_task_h: float  # one task slot's throughput, overhead included
    tasks_in_flight: float  # = task-seconds per wall-second at the target
    gpus: float
    vcpus: float
    usd_per_hour: float
    usd_per_audio_hour: float
    ingress_gb_per_hour: float


def plan(
    tier: Tier, load: Workload, *, vcpu_per_s: float = VCPU_PER_S, gib_per_s: float = GIB_PER_S
) -> Plan:
    chunks = load.chunks()
    task_s = sum(tier.overhead_s + tier.rtf * seconds for seconds in chunks)
    in_flight = load.files_per_hour * task_s / 3600
    usd = load.files_per_hour * task_s * tier.price_per_task_s(vcpu_per_s, gib_per_s)
    return Plan(
        tier=tier.name,
        tasks_per_file=len(chunks),
        task_s_per_file=task_s,
        audio_h_per_task_h=load.file_hours * 3600 / task_s,
        tasks_in_flight=in_flight,
        gpus=in_flight * tier.gpus,
        vcpus=in_flight * tier.vcpu,
        usd_per_hour=usd,
        usd_per_audio_hour=usd / load.target_audio_h_per_h,
        ingress_gb_per_hour=load.files_per_hour * load.file_mb / 1000,
    )


def sensitivity(
    tier: Tier,
    load: Workload,
    factors: tuple[float, ...] = FACTORS,
    **prices: float,
) -> list[tuple[float, Plan]]:
    """The same plan with the tier's RTF multiplied by each factor."""
    return [(tier.rtf * f, plan(replace(tier, rtf=tier.rtf * f), load, **prices)) for f in factors]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--target", type=float, default=TARGET_AUDIO_H_PER_H, help="audio h per h (design)")
    a("--file-hours", type=float, default=FILE_HOURS, help="average file length (design)")
    a("--file-mb", type=float, default=FILE_MB, help="average file size (design)")
    a("--chunk-seconds", type=float, default=float(Limits().chunk_seconds), help="Limits")
    a("--gpu-rtf", type=float, default=GPU_RTF, help="ASSUMED: large-v3 batched on one L4")
    a("--gpu-overhead", type=float, default=GPU_OVERHEAD_S, help="ASSUMED s per GPU task")
    a("--l4-per-s", type=float, default=L4_PER_S, help="ASSUMED list price, USD/GPU-s")
    a("--vcpu-per-s", type=float, default=VCPU_PER_S, help="ASSUMED list price, USD/vCPU-s")
    a("--gib-per-s", type=float, default=GIB_PER_S, help="ASSUMED list price, USD/GiB-s")
    a("--cpu-rtf", type=float, default=CPU_RTF, help="MEASURED tiny.en int8 batched, 2 vCPU")
    a("--cpu-overhead", type=float, default=CPU_OVERHEAD_S, help="MEASURED s per CPU task")
    a("--cpu-platform-start", type=float, default=CPU_PLATFORM_START_S, help="ASSUMED s/task")
    a("--cpu-vcpu", type=float, default=CPU_TASK_VCPU, help="vCPUs per CPU task (measured on)")
    a("--cpu-gib", type=float, default=CPU_TASK_GIB, help="ASSUMED GiB per CPU task")
    a("--cpu-small-rtf", type=float, default=CPU_SMALL_RTF, help="ASSUMED small int8, 8 vCPU")
    a("--json", action="store_true", help="print inputs and results as JSON")
    return p


def tiers(args: argparse.Namespace) -> list[Tier]:
    cpu_overhead = args.cpu_overhead + args.cpu_platform_start
    return [
        Tier(
            "gpu L4",
            args.gpu_rtf,
            args.gpu_overhead,
            GPU_TASK_VCPU,
            GPU_TASK_GIB,
            1.0,
            args.l4_per_s,
        ),
        Tier("cpu tiny.en", args.cpu_rtf, cpu_overhead, args.cpu_vcpu, args.cpu_gib),
        Tier("cpu small", args.cpu_small_rtf, cpu_overhead, CPU_SMALL_VCPU, CPU_SMALL_GIB),
    ]


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    load = Workload(args.target, args.file_hours, args.file_mb, args.chunk_seconds)
    prices = {"vcpu_per_s": args.vcpu_per_s, "gib_per_s": args.gib_per_s}
    all_tiers = tiers(args)
    plans = [plan(t, load, **prices) for t in all_tiers]
    table = {t.name: sensitivity(t, load, **prices) for t in all_tiers}
    if args.json:
        result = {
            "inputs": {"workload": asdict(load), "chunks_s": load.chunks(), **vars(args)},
            "tiers": [asdict(t) for t in all_tiers],
            "plans": [asdict(p) for p in plans],
            "sensitivity": {k: [{"rtf": r, **asdict(p)} for r, p in v] for k, v in table.items()},
        }
        print(json.dumps(result, indent=1))
        return
    chunks = load.chunks()
    print(
        f"target {load.target_audio_h_per_h:,.0f} audio h/h = {load.files_per_hour:,.0f} files "
        f"of {load.file_hours:g} h / {load.file_mb:g} MB "
        f"({plans[0].ingress_gb_per_hour:,.0f} GB/h in); {len(chunks)} tasks per file of "
        f"{', '.join(f'{c:.0f}' for c in chunks)} s "
        f"(chunk {load.chunk_seconds:g} s, overlap {load.overlap_s:g} s)\n"
    )
    head = (
        "tier",
        "RTF",
        "overhead s/task",
        "task-s per file",
        "audio h per task-h",
        "tasks in flight",
        "GPUs",
        "vCPUs",
        "USD/h",
        "USD per audio h",
    )
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    for t, p in zip(all_tiers, plans, strict=True):
        cells = (
            p.tier,
            f"{t.rtf:.4f}",
            f"{t.overhead_s:.1f}",
            f"{p.task_s_per_file:,.1f}",
            f"{p.audio_h_per_task_h:.1f}",
            f"{p.tasks_in_flight:,.0f}",
            f"{p.gpus:,.0f}",
            f"{p.vcpus:,.0f}",
            f"{p.usd_per_hour:,.0f}",
            f"{p.usd_per_audio_hour:.4f}",
        )
        print("| " + " | ".join(cells) + " |")
    print("\nsensitivity to RTF (tasks in flight / GPUs / USD per audio h):\n")
    print("| x RTF | " + " | ".join(table) + " |\n|" + " --- |" * (len(table) + 1))
    for i, factor in enumerate(FACTORS):
        row = [f"{factor:g}"]
        for rows in table.values():
            rtf, p = rows[i]
            gpus = f" / {p.gpus:,.0f} GPUs" if p.gpus else ""
            row.append(
                f"RTF {rtf:.4f}: {p.tasks_in_flight:,.0f} tasks{gpus} / ${p.usd_per_audio_hour:.4f}"
            )
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
