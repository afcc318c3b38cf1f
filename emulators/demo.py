"""``make demo``: the local stack, a real spoken file, a real ``gsutil cp``, and what comes out.

Speaks a known text with espeak-ng, uploads it into the inbox with gsutil, follows the job
through its states and prints the transcript and notes once they exist, with how long the
notes took and what made them (without an OpenAI key: the local model server). It stops waiting
when the job is final, or when it rests in a state that nothing running on the stack advances.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common.config.settings import Settings
from common.domain.errors import JobNotFound
from common.domain.jobs import Job, JobState, upload_job_id
from common.domain.notes import NOTES_JSON, NotesDocument
from common.domain.transcripts import result_uri
from common.gcp.gcs import GcsBlobStore
from common.gcp.job_store import FirestoreJobStore
from emulators.config import LocalStack, defined_functions
from emulators.stack import Stack

# Two voices a speaker model tells apart (espeak voices of one gender sound like one person).
VOICES = {"chair": ("en-us+m3", "35"), "maria": ("en-us+f2", "70")}
TURNS = (
    (
        "chair",
        "Good morning everyone. This is the weekly planning meeting for the audio notes "
        "project. First, the transcription service is ready for testing.",
    ),
    ("maria", "Great. I will send the test plan to the team by Friday."),
    (
        "chair",
        "Thank you Maria. Second, we decided to keep the storage costs under one hundred "
        "dollars a month.",
    ),
    ("maria", "Agreed. Who owns the deployment checklist is still an open question."),
)
# A state is only left by the piece that owns the next step.
_NEXT_STEP = {
    JobState.QUEUED: "dispatch",
    JobState.DISPATCHED: "the transcribe job",
    JobState.TRANSCRIBING: "the transcribe job",
    JobState.TRANSCRIBED: "notes",
    JobState.SUMMARIZING: "notes",
}


def main() -> int:
    stack = Stack(LocalStack.from_env())
    print("== starting the local stack (python -m emulators up)")
    seconds = stack.up()
    running = [name for name, state in stack.status().items() if state["running"]]
    print(f"   ready in {seconds:.1f}s: {', '.join(running)}")
    env = stack.child_env()
    os.environ.update(stack.local.environment())
    s = stack.local.settings

    with tempfile.TemporaryDirectory() as folder:
        audio = Path(folder) / "planning-meeting.wav"
        _speak_meeting(audio)
        name = f"{s.buckets.inbox_prefix}demo-{int(time.time())}.wav"
        uri = f"gs://{s.buckets.inbox}/{name}"
        print(f"== uploading {audio.stat().st_size} bytes of speech: gsutil cp {audio.name} {uri}")
        subprocess.run(["gsutil", "-q", "cp", str(audio), uri], check=True, env=env)
        stat = subprocess.run(
            ["gsutil", "stat", uri], capture_output=True, text=True, env=env, check=True
        )
        generation = stat.stdout.split("Generation:")[1].split()[0]

    jobs = FirestoreJobStore(s.project, s.collections.jobs)
    job_id = upload_job_id(s.buckets.inbox, name, generation)
    seen: dict[JobState, float] = {}
    job, settled = _follow(
        jobs, job_id, running=set(defined_functions()) | _jobs_registered(stack), seen=seen
    )
    if job is None:
        print("!! no job appeared: see .local/logs/function-on_upload.log", file=sys.stderr)
        return 1
    _show_results(job, s)
    _show_notes_time(job, s, seen)
    print("\nThe stack keeps running. Try it yourself:")
    print('   eval "$(.venv/bin/python -m emulators env)"; gsutil cp your.wav $AUDIONOTES_INBOX')
    print("Stop it with: .venv/bin/python -m emulators down   (or: make down)")
    return 0 if settled and job.state not in (JobState.FAILED, JobState.CANCELLED) else 1


def _speak_meeting(audio: Path) -> None:
    """The meeting's turns in two voices, joined by sox with a breath between them."""
    parts = []
    for i, (who, text) in enumerate(TURNS):
        voice, pitch = VOICES[who]
        part = audio.with_name(f"turn-{i}.wav")
        subprocess.run(
            ["espeak-ng", "-s", "150", "-v", voice, "-p", pitch, "-w", str(part), text], check=True
        )
        parts.append(str(part))
    subprocess.run(["sox", *parts, "-r", "16000", "-c", "1", str(audio)], check=True)


def _jobs_registered(stack: Stack) -> set[str]:
    return {"the transcribe job"} if (stack.local.executions_dir / "jobs.json").exists() else set()


def _follow(
    jobs: FirestoreJobStore, job_id: str, *, running: set[str], seen: dict[JobState, float]
) -> tuple[Job | None, bool]:
    """The job once it is final, or rests where this stack has no next step (settled), or as it
    is at the deadline (not settled; None if it never appeared). ``seen``: when each state was
    first seen."""
    last: tuple[JobState, float] | None = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            job = jobs.get(job_id)
        except JobNotFound:
            time.sleep(0.3)
            continue
        seen.setdefault(job.state, time.monotonic())
        if (job.state, round(job.progress, 2)) != last:
            last = (job.state, round(job.progress, 2))
            print(f"   job {job_id}: {job.state.value:<12} progress {job.progress:4.0%}")
        if job.state.is_final:
            return job, True
        owner = _NEXT_STEP.get(job.state)
        if owner is not None and owner not in running:
            print(
                f"   ({owner} is not part of this stack yet, so the job rests in {job.state.value})"
            )
            return job, True
        time.sleep(0.5)
    try:
        job = jobs.get(job_id)
    except JobNotFound:
        return None, False
    print(f"!! after 600 s the job is still {job.state.value}", file=sys.stderr)
    return job, False


def _show_results(job: Job, settings: Settings) -> None:
    if job.error is not None:
        print(f"== FAILED: {job.error.code}: {job.error.message}")
        return
    if job.usage.get("transcribe_cache_hits"):
        print(
            "   (the same audio was transcribed before: Whisper did not run again; "
            "`make down && rm -rf .local` starts afresh)"
        )
    blobs = GcsBlobStore(settings.project)
    for title, name in (("transcript", "transcript.txt"), ("notes", "notes.md")):
        info = blobs.stat(result_uri(settings, job.job_id, name))
        if info is not None:
            print(f"\n== {title} ({info.ref.uri})")
            print(blobs.read_bytes(info.ref.uri).decode())


def _show_notes_time(job: Job, settings: Settings, seen: dict[JobState, float]) -> None:
    """From the transcript's arrival to the final state: the notes function's whole turn."""
    began = seen.get(JobState.TRANSCRIBED, seen.get(JobState.SUMMARIZING))
    ended = seen.get(job.state) if job.state.is_final else None
    uri = result_uri(settings, job.job_id, NOTES_JSON)
    blobs = GcsBlobStore(settings.project)
    if began is None or ended is None or blobs.stat(uri) is None:
        return
    prov = NotesDocument.model_validate_json(blobs.read_bytes(uri)).provenance
    if prov.from_cache:
        print(
            f"== notes took {ended - began:.1f} s: the same transcript's notes, from the "
            f"owner's cache (first made by {prov.provider}, {prov.model}); no model call"
        )
        return
    usage = prov.usage
    print(
        f"== notes took {ended - began:.1f} s: {prov.provider} ({prov.model}), "
        f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens, "
        f"{usage.compute_s:.1f} s of model compute, ${prov.cost_usd:.5f}"
        + (f"; fell back because {prov.fallback_reason}" if prov.fallback_reason else "")
    )


if __name__ == "__main__":
    sys.exit(main())
