"""Capacity model: per-worker throughput -> workers in flight, GPUs, a CPU alternative, and cost
per audio hour at the design target (10,000 audio hours per hour), for two ways of running the
transcribe tier side by side, and what it would take to reach $0.02 and $0.01 per audio hour.

    .venv/bin/python bench/capacity.py [--v3-rtf 0.0185,0.0427,0.070] [--idle 30] [--json]

Pure arithmetic on its inputs; nothing is run. Every input is a flag, and ``SOURCES`` (printed
first) says where each default comes from and of which kind it is: **published** (DESIGN.md
"Anchors for GPU throughput and price", or a spec sheet), **derived** from published points by
the arithmetic its label gives, **measured** here (bench/RESULTS.md) or **assumed**. This
project has no GPU: no GPU figure here is a measurement. Chunking is the production planner
(``ChunkPlan.for_job``) with the default ``Limits.chunk_seconds`` and
``Transcription.chunk_overlap_s``: a 1-hour file is 3 chunks decoding 1202 + 1204 + 1202 s.

Steady state (Little's law): billed worker-seconds needed per wall-second = workers in flight.
A chunk's service time in a warm worker is ``s = per_chunk_s + rtf * chunk_audio_s`` (the
per-chunk part: pull, fetch, decode, results, ack). Every worker pays a ``start`` (platform
start, image, CUDA and engine init, model load) before its first chunk.

old, one task per chunk: each chunk is a Cloud Run task, ``start + s`` seconds.

new, pull workers: a worker starts once, then takes a chunk whenever at least ``reserve_s`` is
left before its task timeout ``T``, so, while the queue never empties, it serves

    n = floor((T - reserve_s - start) / s) + 1

chunks (chunk k begins at ``start + k*s``, k = 0..n-1, and ``start + (n-1)*s <= T - reserve_s``);
the last one finishes before ``T`` when ``s <= reserve_s`` (``fits`` says whether it does). Its
life is billed ``start + n*s + idle_s``: the idle tail is charged to every life, which
over-counts a saturated fleet, whose lives end at the reserve with no idle wait, by at most
``idle_s`` per life. Per chunk that is ``s + (start + idle_s) / n``. A lone file (no other
work) gets ``ceil(chunks / backlog_per_worker)`` workers, each paying ``start + idle_s``.

Cost = billed seconds x (GPU + vCPU x vCPU price + GiB x GiB price), one GPU per GPU worker.
The targets solver bisects the RTF (at a case's start) or the start (at its RTF) that brings
the cost per audio hour down to a target, per design; it is unreachable when even RTF 0 or a
zero start costs more.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.config.settings import Limits, Transcription  # noqa: E402
from common.domain.transcription_plan import ChunkPlan  # noqa: E402

OLD = "task per chunk"
NEW = "pull workers"
CASES = ("low", "central", "high")

# --- defaults, each labelled (SOURCES below repeats the labels for the printout) -------------
# Design target (DESIGN.md): 10,000 audio hours per hour, average file 1 h / 100 MB.
TARGET_AUDIO_H_PER_H = 10_000.0
FILE_HOURS = 1.0
FILE_MB = 100.0
TARGETS_USD = (0.02, 0.01)

# PUBLISHED, DESIGN "Anchors": batched faster-whisper throughput, x real time.
V2_3070TI_X = 47.5  # large-v2, RTX 3070 Ti, beam 5, batch 8: 46-49x (faster-whisper README)
V3_V100S_X = 54.0  # large-v3, V100S, batch 16 (faster-whisper PR #856)
TURBO_3090_X = 108.0  # large-v3-turbo, RTX 3090, 1-hour file, batch 8-16 (speaches #169)
TURBO_3090_UNBATCHED_X = 43.0  # the same, unbatched: context only
# Memory bandwidth, GB/s: L4 and 3090 PUBLISHED in the anchors; 3070 Ti and V100S PUBLISHED on
# NVIDIA's spec sheets (not in the anchors: check before quoting).
BW_L4, BW_3090, BW_3070TI, BW_V100S = 300.0, 936.0, 608.0, 1134.0

# DERIVED, L4 RTFs. Whisper's decoder steps are memory-bound, its encoder is compute-bound, so
# a reference card's RTF scaled by (its bandwidth / the L4's) is a pessimistic bound and the
# card's own RTF an optimistic one.
# large-v3 low: the V100S's own figure, unscaled (~ the "0.02").
# large-v3 central: large-v2 (large-v3's architecture) on the 3070 Ti, the card nearest the L4 in
#   bandwidth, at this project's batch 8 and beam 5, scaled by 608/300.
# large-v3 high: the V100S's figure scaled by 1134/300.
V3_RTF = (1 / V3_V100S_X, BW_3070TI / BW_L4 / V2_3070TI_X, BW_V100S / BW_L4 / V3_V100S_X)
# large-v3-turbo (one published point): low unscaled (the "~0.01"), high scaled by
# 936/300, central their geometric mean (its 4-layer decoder leaves the compute-bound encoder
# most of the work, so it sits between the bounds).
TURBO_RTF = (
    1 / TURBO_3090_X,
    math.sqrt(BW_3090 / BW_L4) / TURBO_3090_X,
    BW_3090 / BW_L4 / TURBO_3090_X,
)

# Start of a GPU worker = platform start + image streaming, CUDA and engine init + model load.
PLATFORM_START_S = 5.0  # PUBLISHED: an L4 instance starts in ~5 s (Cloud Run docs, anchors)
IMAGE_INIT_S = (10.0, 25.0, 60.0)  # ASSUMED: streaming a ~10 GB CUDA image, CUDA + CT2 init
V3_LOAD_S = (5.0, 15.0, 25.0)  # ASSUMED: ~3 GB of float16 weights from the image to the GPU
TURBO_LOAD_S = (3.0, 8.0, 15.0)  # ASSUMED: ~1.6 GB of float16 weights
V3_START_S = tuple(PLATFORM_START_S + i + m for i, m in zip(IMAGE_INIT_S, V3_LOAD_S, strict=True))
TURBO_START_S = tuple(
    PLATFORM_START_S + i + m for i, m in zip(IMAGE_INIT_S, TURBO_LOAD_S, strict=True)
)
# ASSUMED, per chunk in a warm GPU worker: pull, fetch (~100 MB file, cached per worker),
# PyAV decode of 20 min, chunk result, publish, ack.
GPU_PER_CHUNK_S = 3.0

# Pull workers (the new design's defaults; GPU timeout from terraform and Executions).
GPU_TIMEOUT_S = 3000.0  # GPU task timeout; Cloud Run GPU tasks run at most 1 h (PUBLISHED)
CPU_TIMEOUT_S = 4 * 3600.0  # Executions.cpu_task_timeout_s
RESERVE_S = 300.0
IDLE_S = 30.0
BACKLOG_PER_WORKER = 2.0

# Cloud Run us-central1, USD per second: L4 PUBLISHED (anchors: no zonal redundancy, what jobs
# are billed at); vCPU and memory ASSUMED list prices.
L4_PER_S = 0.0001867
VCPU_PER_S = 0.000018
GIB_PER_S = 0.000002
# PUBLISHED: at least 4 vCPU / 16 GiB per L4 (and the terraform run_jobs defaults).
GPU_TASK_VCPU = 4.0
GPU_TASK_GIB = 16.0

# MEASURED, CPU speed: bench/RESULTS.md "Transcription", worker-batched on 10 min of speech,
# tiny.en int8 beam 5 batch 8, 2 shared vCPUs (AMD EPYC): RTF 0.0325.
CPU_RTF = 0.0325
# MEASURED, CPU task overhead: everything in a task but the model's inference; bench/RESULTS.md
# "Load (local stack)", median of 8 tasks run side by side on 2 shared cores. Of it, process
# start (1.54 s) and model load (1.30 s) are the start; the rest recurs per chunk.
CPU_OVERHEAD_S = 3.4
CPU_PROCESS_START_S = 1.54
CPU_MODEL_LOAD_S = 1.30
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


def _f(values: tuple[float, ...]) -> str:
    return " / ".join(f"{v:.4g}" for v in values)


# (input, value, kind, source): what the defaults rest on, printed and put in the JSON.
SOURCES: tuple[tuple[str, str, str, str], ...] = (
    ("target", "10,000 audio h/h; files of 1 h, 100 MB", "design", "DESIGN.md"),
    ("chunking", "1200 s chunks, 2 s overlap", "code", "Limits, Transcription, ChunkPlan"),
    ("large-v2, RTX 3070 Ti", "46-49x (beam 5, batch 8)", "published", "faster-whisper README"),
    ("large-v3, V100S", "54x (batch 16)", "published", "faster-whisper PR #856"),
    ("large-v3-turbo, RTX 3090", "108x batched, 43x unbatched", "published", "speaches #169"),
    ("bandwidth L4 / 3090", "300 / 936 GB/s", "published", "DESIGN anchors"),
    ("bandwidth 3070 Ti / V100S", "608 / 1134 GB/s", "published", "NVIDIA spec sheets"),
    (
        "large-v3 RTF on an L4, low / central / high",
        _f(V3_RTF),
        "derived",
        "V100S unscaled / large-v2 3070 Ti x 608/300 / V100S x 1134/300",
    ),
    (
        "large-v3-turbo RTF on an L4, low / central / high",
        _f(TURBO_RTF),
        "derived",
        "3090 unscaled / x sqrt(936/300) / x 936/300",
    ),
    ("L4 instance start", f"{PLATFORM_START_S:g} s", "published", "Cloud Run docs (anchors)"),
    ("image streaming + CUDA/engine init", _f(IMAGE_INIT_S) + " s", "assumed", "none"),
    ("model load large-v3 / turbo", f"{_f(V3_LOAD_S)} s; {_f(TURBO_LOAD_S)} s", "assumed", "none"),
    ("start large-v3", _f(V3_START_S) + " s", "derived", "sum of the three above"),
    ("start large-v3-turbo", _f(TURBO_START_S) + " s", "derived", "sum of the three above"),
    ("GPU per-chunk work in a warm worker", f"{GPU_PER_CHUNK_S:g} s", "assumed", "none"),
    ("GPU task timeout", f"{GPU_TIMEOUT_S:g} s (max 1 h)", "code / published", "terraform"),
    ("reserve / idle tail", f"{RESERVE_S:g} / {IDLE_S:g} s", "design", "pull-worker issue"),
    ("backlog per worker", f"{BACKLOG_PER_WORKER:g} chunks", "design", "pull-worker issue"),
    ("L4 price", f"${L4_PER_S} per GPU-s", "published", "DESIGN anchors"),
    ("GPU worker shape", "1 L4, 4 vCPU, 16 GiB (minimum)", "published", "DESIGN anchors"),
    ("vCPU / GiB price", f"${VCPU_PER_S:.6f} / ${GIB_PER_S:.6f} per s", "assumed", "list price"),
    ("default GPU quota", "0 (GPUs below = the request)", "published", "DESIGN anchors"),
    ("CPU RTF tiny.en, 2 vCPU", f"{CPU_RTF}", "measured", 'RESULTS "Transcription"'),
    (
        "CPU task overhead",
        f"{CPU_OVERHEAD_S} s (start {CPU_PROCESS_START_S + CPU_MODEL_LOAD_S:.2f})",
        "measured",
        'RESULTS "Load (local stack)"',
    ),
    ("CPU platform start", f"{CPU_PLATFORM_START_S:g} s", "assumed", "none"),
    ("CPU small RTF, 8 vCPU", f"{CPU_SMALL_RTF}", "assumed", "faster-whisper README, i7"),
)


@dataclass(frozen=True)
class Tier:
    """One way of running a transcribe worker."""

    name: str
    rtf: float  # transcription seconds per audio second, per worker
    overhead_s: float  # per task in the old design: start + per_chunk_s
    vcpu: float
    gib: float
    gpus: float = 0.0
    gpu_per_s: float = 0.0
    per_chunk_s: float = 0.0  # the part of overhead_s a warm worker pays again per chunk
    timeout_s: float = GPU_TIMEOUT_S

    @property
    def start_s(self) -> float:
        return self.overhead_s - self.per_chunk_s

    def price_per_task_s(self, vcpu_per_s: float, gib_per_s: float) -> float:
        return self.gpus * self.gpu_per_s + self.vcpu * vcpu_per_s + self.gib * gib_per_s


@dataclass(frozen=True)
class Worker:
    """How a pull worker lives: when it stops taking chunks, and how many dispatch starts."""

    reserve_s: float = RESERVE_S
    idle_s: float = IDLE_S
    backlog_per_worker: float = BACKLOG_PER_WORKER


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
    task_s_per_file: float  # billed worker-seconds per file, starts included
    audio_h_per_task_h: float  # one worker slot's throughput, overhead included
    tasks_in_flight: float  # = worker-seconds per wall-second at the target
    gpus: float
    vcpus: float
    usd_per_hour: float
    usd_per_audio_hour: float
    ingress_gb_per_hour: float
    design: str = OLD
    service_s: float = 0.0  # a chunk in a warm worker: per_chunk_s + rtf x mean chunk audio
    chunks_per_life: int = 1
    life_s: float = 0.0  # one task (old) or one saturated worker life (new), billed
    fits: bool = True  # the last chunk of a life ends before the task timeout
    lone_file_usd_per_audio_hour: float = 0.0  # one file and nothing else in the queue


def _plan(
    tier: Tier,
    load: Workload,
    prices: tuple[float, float],
    *,
    task_s: float,
    lone_task_s: float,
    service_s: float,
    design: str = OLD,
    chunks_per_life: int = 1,
    life_s: float,
    fits: bool = True,
) -> Plan:
    price = tier.price_per_task_s(*prices)
    in_flight = load.files_per_hour * task_s / 3600
    usd = load.files_per_hour * task_s * price
    return Plan(
        tier=tier.name,
        tasks_per_file=len(load.chunks()),
        task_s_per_file=task_s,
        audio_h_per_task_h=load.file_hours * 3600 / task_s,
        tasks_in_flight=in_flight,
        gpus=in_flight * tier.gpus,
        vcpus=in_flight * tier.vcpu,
        usd_per_hour=usd,
        usd_per_audio_hour=usd / load.target_audio_h_per_h,
        ingress_gb_per_hour=load.files_per_hour * load.file_mb / 1000,
        design=design,
        service_s=service_s,
        chunks_per_life=chunks_per_life,
        life_s=life_s,
        fits=fits,
        lone_file_usd_per_audio_hour=lone_task_s * price / load.file_hours,
    )


def plan(
    tier: Tier, load: Workload, *, vcpu_per_s: float = VCPU_PER_S, gib_per_s: float = GIB_PER_S
) -> Plan:
    """The old design: every chunk is its own task and pays the whole overhead."""
    chunks = load.chunks()
    task_s = sum(tier.overhead_s + tier.rtf * seconds for seconds in chunks)
    service = tier.per_chunk_s + tier.rtf * sum(chunks) / len(chunks)
    return _plan(
        tier,
        load,
        (vcpu_per_s, gib_per_s),
        task_s=task_s,
        lone_task_s=task_s,
        service_s=service,
        life_s=task_s / len(chunks),
    )


def chunks_per_life(start_s: float, service_s: float, timeout_s: float, reserve_s: float) -> int:
    """Chunks a worker takes before less than ``reserve_s`` is left (module docstring)."""
    window = timeout_s - reserve_s - start_s
    if window < 0:
        raise ValueError(f"start {start_s:g} s leaves no time before the reserve")
    if service_s <= 0:  # the solver's RTF 0 with no per-chunk work: no bound but the int's
        return sys.maxsize
    return math.floor(window / service_s) + 1


def pull_plan(
    tier: Tier,
    load: Workload,
    worker: Worker | None = None,
    *,
    vcpu_per_s: float = VCPU_PER_S,
    gib_per_s: float = GIB_PER_S,
) -> Plan:
    """The new design: a worker's start and idle tail are shared by the chunks of its life."""
    worker = worker or Worker()
    chunks = load.chunks()
    service = [tier.per_chunk_s + tier.rtf * seconds for seconds in chunks]
    mean_service = sum(service) / len(service)
    n = chunks_per_life(tier.start_s, mean_service, tier.timeout_s, worker.reserve_s)
    per_life = tier.start_s + worker.idle_s
    task_s = sum(service) + len(chunks) * per_life / n
    lone_workers = math.ceil(len(chunks) / worker.backlog_per_worker)
    return _plan(
        tier,
        load,
        (vcpu_per_s, gib_per_s),
        task_s=task_s,
        lone_task_s=sum(service) + lone_workers * per_life,
        service_s=mean_service,
        design=NEW,
        chunks_per_life=n,
        life_s=per_life + n * mean_service,
        fits=mean_service <= worker.reserve_s,
    )


def for_design(design: str, worker: Worker, **prices: float) -> Callable[[Tier, Workload], Plan]:
    if design == OLD:
        return lambda tier, load: plan(tier, load, **prices)
    return lambda tier, load: pull_plan(tier, load, worker, **prices)


def _bisect(cost: Callable[[float], float], target: float, high: float) -> float | None:
    """The largest x in [0, high] with cost(x) <= target, cost rising with x; None if even
    cost(0) is over, ``high`` if cost(high) is not."""
    if cost(0.0) > target:
        return None
    if cost(high) <= target:
        return high
    low = 0.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cost(mid) <= target else (low, mid)
    return low


def rtf_for(
    target_usd: float, tier: Tier, load: Workload, design: Callable[[Tier, Workload], Plan]
) -> float | None:
    """The RTF at which ``tier`` (at its start) costs ``target_usd`` per audio hour."""
    return _bisect(lambda r: design(replace(tier, rtf=r), load).usd_per_audio_hour, target_usd, 1.0)


def start_for(
    target_usd: float,
    tier: Tier,
    load: Workload,
    design: Callable[[Tier, Workload], Plan],
    high: float,
) -> float | None:
    """The start (s) at which ``tier`` (at its RTF) costs ``target_usd`` per audio hour."""
    return _bisect(
        lambda s: design(replace(tier, overhead_s=s + tier.per_chunk_s), load).usd_per_audio_hour,
        target_usd,
        high,
    )


def sensitivity(
    tier: Tier,
    load: Workload,
    factors: tuple[float, ...] = FACTORS,
    design: Callable[[Tier, Workload], Plan] | None = None,
    **prices: float,
) -> list[tuple[float, Plan]]:
    """The same plan with the tier's RTF multiplied by each factor."""
    run = design or (lambda t, w: plan(t, w, **prices))
    return [(tier.rtf * f, run(replace(tier, rtf=tier.rtf * f), load)) for f in factors]


def _triple(text: str) -> tuple[float, float, float]:
    try:
        low, central, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give LOW,CENTRAL,HIGH") from None
    return low, central, high


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    a = p.add_argument
    a("--target", type=float, default=TARGET_AUDIO_H_PER_H, help="audio h per h (design)")
    a("--file-hours", type=float, default=FILE_HOURS, help="average file length (design)")
    a("--file-mb", type=float, default=FILE_MB, help="average file size (design)")
    a("--chunk-seconds", type=float, default=float(Limits().chunk_seconds), help="Limits")
    a("--targets-usd", type=float, nargs="+", default=list(TARGETS_USD), help="per audio h")
    tri = "LOW,CENTRAL,HIGH"
    a("--v3-rtf", type=_triple, default=V3_RTF, metavar=tri, help="DERIVED, large-v3 on an L4")
    a("--turbo-rtf", type=_triple, default=TURBO_RTF, metavar=tri, help="DERIVED, turbo on an L4")
    a("--v3-start", type=_triple, default=V3_START_S, metavar=tri, help="DERIVED/ASSUMED s")
    a("--turbo-start", type=_triple, default=TURBO_START_S, metavar=tri, help="DERIVED/ASSUMED s")
    a("--gpu-per-chunk", type=float, default=GPU_PER_CHUNK_S, help="ASSUMED s per chunk")
    a("--gpu-timeout", type=float, default=GPU_TIMEOUT_S, help="GPU task timeout, s (< 3600)")
    a("--cpu-timeout", type=float, default=CPU_TIMEOUT_S, help="CPU task timeout, s")
    a("--reserve", type=float, default=RESERVE_S, help="stop taking chunks this close to T")
    a("--idle", type=float, default=IDLE_S, help="billed idle tail per worker life, s")
    a("--backlog-per-worker", type=float, default=BACKLOG_PER_WORKER, help="chunks")
    a("--l4-per-s", type=float, default=L4_PER_S, help="PUBLISHED list price, USD/GPU-s")
    a("--vcpu-per-s", type=float, default=VCPU_PER_S, help="ASSUMED list price, USD/vCPU-s")
    a("--gib-per-s", type=float, default=GIB_PER_S, help="ASSUMED list price, USD/GiB-s")
    a("--cpu-rtf", type=float, default=CPU_RTF, help="MEASURED tiny.en int8 batched, 2 vCPU")
    a("--cpu-overhead", type=float, default=CPU_OVERHEAD_S, help="MEASURED s per CPU task")
    a(
        "--cpu-start",
        type=float,
        default=CPU_PROCESS_START_S + CPU_MODEL_LOAD_S,
        help="MEASURED: the part of --cpu-overhead paid once per worker",
    )
    a("--cpu-platform-start", type=float, default=CPU_PLATFORM_START_S, help="ASSUMED s/task")
    a("--cpu-vcpu", type=float, default=CPU_TASK_VCPU, help="vCPUs per CPU task (measured on)")
    a("--cpu-gib", type=float, default=CPU_TASK_GIB, help="ASSUMED GiB per CPU task")
    a("--cpu-small-rtf", type=float, default=CPU_SMALL_RTF, help="ASSUMED small int8, 8 vCPU")
    a("--json", action="store_true", help="print inputs and results as JSON")
    return p


@dataclass(frozen=True)
class Case:
    model: str
    case: str
    tier: Tier


def gpu_cases(args: argparse.Namespace) -> list[Case]:
    out = []
    for model, rtfs, starts in (
        ("large-v3", args.v3_rtf, args.v3_start),
        ("large-v3-turbo", args.turbo_rtf, args.turbo_start),
    ):
        for case, rtf, start in zip(CASES, rtfs, starts, strict=True):
            tier = Tier(
                f"L4 {model} {case}",
                rtf,
                start + args.gpu_per_chunk,
                GPU_TASK_VCPU,
                GPU_TASK_GIB,
                1.0,
                args.l4_per_s,
                per_chunk_s=args.gpu_per_chunk,
                timeout_s=args.gpu_timeout,
            )
            out.append(Case(model, case, tier))
    return out


def cpu_tiers(args: argparse.Namespace) -> list[Tier]:
    overhead = args.cpu_overhead + args.cpu_platform_start
    per_chunk = args.cpu_overhead - args.cpu_start
    extra = {"per_chunk_s": per_chunk, "timeout_s": args.cpu_timeout}
    return [
        Tier("cpu tiny.en", args.cpu_rtf, overhead, args.cpu_vcpu, args.cpu_gib, **extra),
        Tier("cpu small", args.cpu_small_rtf, overhead, CPU_SMALL_VCPU, CPU_SMALL_GIB, **extra),
    ]


def targets(
    cases: list[Case],
    load: Workload,
    designs: dict[str, Callable[[Tier, Workload], Plan]],
    worker: Worker,
    usd: list[float],
) -> list[dict[str, object]]:
    """Per case, design and target: the RTF needed at the case's start, and the start needed
    at its RTF (None: unreachable)."""
    rows: list[dict[str, object]] = []
    for c in cases:
        for target in usd:
            row: dict[str, object] = {"model": c.model, "case": c.case, "target_usd": target}
            for name, design in designs.items():
                high = c.tier.timeout_s - worker.reserve_s if name == NEW else 3600.0
                row[f"{name}: rtf"] = rtf_for(target, c.tier, load, design)
                row[f"{name}: start_s"] = start_for(target, c.tier, load, design, high)
            rows.append(row)
    return rows


def _cell(value: object, fmt: str) -> str:
    return "unreachable" if value is None else format(value, fmt)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    load = Workload(args.target, args.file_hours, args.file_mb, args.chunk_seconds)
    prices = {"vcpu_per_s": args.vcpu_per_s, "gib_per_s": args.gib_per_s}
    worker = Worker(args.reserve, args.idle, args.backlog_per_worker)
    designs = {OLD: for_design(OLD, worker, **prices), NEW: for_design(NEW, worker, **prices)}
    cases = gpu_cases(args)
    cpus = cpu_tiers(args)
    side = [(c.tier, designs[OLD](c.tier, load), designs[NEW](c.tier, load)) for c in cases]
    side += [(t, designs[OLD](t, load), designs[NEW](t, load)) for t in cpus]
    goals = targets(cases, load, designs, worker, args.targets_usd)
    central = [c.tier for c in cases if c.case == "central"] + cpus
    table = {t.name: [sensitivity(t, load, design=d) for d in designs.values()] for t in central}
    if args.json:
        result = {
            "inputs": {"workload": asdict(load), "chunks_s": load.chunks(), **vars(args)},
            "sources": [
                dict(zip(("input", "value", "kind", "source"), s, strict=True)) for s in SOURCES
            ],
            "worker": asdict(worker),
            "tiers": [{**asdict(t), "start_s": t.start_s} for t, _, _ in side],
            "plans": [asdict(p) for _, old, new in side for p in (old, new)],
            "targets": goals,
            "sensitivity": {
                name: {
                    d: [{"rtf": r, **asdict(p)} for r, p in rows]
                    for d, rows in zip(designs, per, strict=True)
                }
                for name, per in table.items()
            },
        }
        print(json.dumps(result, indent=1))
        return
    _print(args, load, worker, side, goals, table)


def _row(cells: tuple[str, ...] | list[str]) -> None:
    print("| " + " | ".join(cells) + " |")


def _head(cells: tuple[str, ...]) -> None:
    _row(cells)
    print("|" + " --- |" * len(cells))


def _print(
    args: argparse.Namespace,
    load: Workload,
    worker: Worker,
    side: list[tuple[Tier, Plan, Plan]],
    goals: list[dict[str, object]],
    table: dict[str, list[list[tuple[float, Plan]]]],
) -> None:
    chunks = load.chunks()
    print(
        f"target {load.target_audio_h_per_h:,.0f} audio h/h = {load.files_per_hour:,.0f} files "
        f"of {load.file_hours:g} h / {load.file_mb:g} MB "
        f"({side[0][1].ingress_gb_per_hour:,.0f} GB/h in); {len(chunks)} chunks per file of "
        f"{', '.join(f'{c:.0f}' for c in chunks)} s (chunk {load.chunk_seconds:g} s, overlap "
        f"{load.overlap_s:g} s); pull workers: reserve {worker.reserve_s:g} s, idle tail "
        f"{worker.idle_s:g} s, {worker.backlog_per_worker:g} chunks of backlog per worker\n"
    )
    _head(("input", "value", "kind", "source"))
    for source in SOURCES:
        _row(source)
    print(f"\nold ({OLD}) against new ({NEW}), at the target:\n")
    _head(
        (
            "tier",
            "RTF",
            "start s",
            "chunk s",
            "chunks per life",
            "old task-s per audio h",
            "old GPUs",
            "old USD per audio h",
            "new task-s per audio h",
            "new GPUs",
            "new USD per audio h",
            "new, lone file USD per audio h",
        )
    )
    for tier, old, new in side:
        hours = load.file_hours
        gpus = (f"{old.gpus:,.0f}", f"{new.gpus:,.0f}") if tier.gpus else ("-", "-")
        _row(
            (
                tier.name,
                f"{tier.rtf:.4f}",
                f"{tier.start_s:.1f}",
                f"{new.service_s:.1f}",
                f"{new.chunks_per_life}" + ("" if new.fits else " (overruns T)"),
                f"{old.task_s_per_file / hours:,.1f}",
                gpus[0],
                f"{old.usd_per_audio_hour:.4f}",
                f"{new.task_s_per_file / hours:,.1f}",
                gpus[1],
                f"{new.usd_per_audio_hour:.4f}",
                f"{new.lone_file_usd_per_audio_hour:.4f}",
            )
        )
    print("\nwhat it takes to reach a target (RTF at the case's start; start at its RTF):\n")
    _head(
        (
            "model",
            "case",
            "USD per audio h",
            "old: RTF needed",
            "old: start needed, s",
            "new: RTF needed",
            "new: start needed, s",
        )
    )
    for g in goals:
        _row(
            (
                str(g["model"]),
                str(g["case"]),
                f"{g['target_usd']:g}",
                _cell(g[f"{OLD}: rtf"], ".4f"),
                _cell(g[f"{OLD}: start_s"], ".1f"),
                _cell(g[f"{NEW}: rtf"], ".4f"),
                _cell(g[f"{NEW}: start_s"], ".0f"),
            )
        )
    print("\nsensitivity to RTF, central cases (USD per audio h, old / new; new GPUs):\n")
    _head(("x RTF", *table))
    for i, factor in enumerate(FACTORS):
        cells = [f"{factor:g}"]
        for old_rows, new_rows in table.values():
            rtf, old = old_rows[i]
            new = new_rows[i][1]
            fleet = f" ({new.gpus:,.0f} GPUs)" if new.gpus else ""
            cells.append(
                f"{rtf:.4f}: ${old.usd_per_audio_hour:.4f} / ${new.usd_per_audio_hour:.4f}{fleet}"
            )
        _row(cells)


if __name__ == "__main__":
    main()
