"""``audionotes``: submit audio, follow jobs and fetch transcripts and notes.

Configuration only, the same for the local stack and GCP:

    AUDIONOTES_API_URL   the api function's URL (``python -m emulators env`` prints the local one)
    AUDIONOTES_TOKEN     a bearer token (local: ``python -m emulators token --subject me``;
                         GCP: an ID token, e.g. ``gcloud auth print-identity-token``)

``submit PATH`` uploads a local file through a signed URL from POST /v1/uploads (or, with
``--via gcs``, straight into your folder of the inbox with your own GCS credentials), then
submits it; ``submit URL`` submits a gs:// or https:// URL as it is.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from pydantic import ValidationError

from common.domain.errors import InvalidInput
from common.domain.jobs import (
    MAX_NOTES_INSTRUCTIONS_CHARS,
    JobOptions,
    JobState,
    NotesTemplate,
    Priority,
)
from common.domain.speakers import SPEAKERS_DESCRIPTION, normalized
from common.domain.subtitles import DEFAULT_OPTIONS, SubtitleOptions
from common.domain.transcripts import NOTES_FORMATS, TRANSCRIPT_FORMATS
from common.domain.whisper_models import WhisperTask

FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


class CliError(Exception):
    pass


class Client:
    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, self.base + path, timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                detail = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                detail = response.text[:300]
            raise CliError(f"{method} {path} -> HTTP {response.status_code} {detail}")
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()


def _client(args: argparse.Namespace) -> Client:
    url = args.api_url or os.environ.get("AUDIONOTES_API_URL")
    token = args.token or os.environ.get("AUDIONOTES_TOKEN")
    if not url:
        raise CliError("set AUDIONOTES_API_URL (or --api-url)")
    if not token:
        raise CliError("set AUDIONOTES_TOKEN (or --token)")
    return Client(url, token)


def _upload_signed(client: Client, path: Path) -> str:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not content_type.startswith(("audio/", "video/")):
        content_type = "application/octet-stream"
    ticket = client.json(
        "POST",
        "/v1/uploads",
        json={
            "filename": path.name,
            "content_type": content_type,
            "size_bytes": path.stat().st_size,
        },
    )
    with path.open("rb") as data:
        put = requests.put(ticket["upload_url"], data=data, headers=ticket["headers"], timeout=600)
    if put.status_code >= 300:
        raise CliError(f"upload failed: HTTP {put.status_code} {put.text[:300]}")
    return str(ticket["audio_url"])


def _upload_gcs(path: Path, token: str) -> str:
    """Straight into <inbox>/<api upload folder>/<sha256(sub)>/ with your own credentials."""
    import jwt

    from common.config.settings import get_settings
    from common.domain.owners import subject_folder
    from common.gcp.gcs import GcsBlobStore

    settings = get_settings()
    subject = jwt.decode(token, options={"verify_signature": False})["sub"]
    name = (
        f"{settings.auth.api_upload_prefix}{subject_folder(subject)}/{uuid.uuid4().hex}/{path.name}"
    )
    uri = f"gs://{settings.buckets.inbox}/{name}"
    # The type the storage library guessed when it uploaded by file name.
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    GcsBlobStore(settings.project).write_file(uri, path, content_type=content_type)
    return uri


def cmd_submit(args: argparse.Namespace) -> int:
    client = _client(args)
    source = args.source
    if "://" not in source:
        path = Path(source)
        if not path.is_file():
            raise CliError(f"{source}: no such file")
        if args.via == "gcs":
            token = args.token or os.environ.get("AUDIONOTES_TOKEN") or ""
            source = _upload_gcs(path, token)
        else:
            source = _upload_signed(client, path)
    body: dict[str, Any] = {"audio_url": source, "priority": args.priority}
    options = ("language", "model", "task", "notes_template", "notes_instructions", "speakers")
    for key in (*options, "webhook_url"):
        value = getattr(args, key)
        if value is not None:
            body[key] = value
    if args.vocabulary:
        body["vocabulary"] = [term.strip() for term in args.vocabulary.split(",") if term.strip()]
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    job = client.json("POST", "/v1/jobs", json=body, headers=headers)
    print(job["job_id"])
    if args.wait:
        return _wait(client, job["job_id"], args.timeout)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    job = _client(args).json("GET", f"/v1/jobs/{args.job_id}")
    print(json.dumps(job, indent=2))
    return 0


def _bar(progress: float, state: str, width: int = 30) -> str:
    filled = round(progress * width)
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {progress * 100:5.1f}% {state:<13}"


def _wait(client: Client, job_id: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    tty = sys.stderr.isatty()
    last = ""
    while True:
        job = client.json("GET", f"/v1/jobs/{job_id}")
        line = _bar(float(job["progress"]), job["state"])
        if tty:
            sys.stderr.write(line)
        elif job["state"] != last:
            sys.stderr.write(line.strip() + "\n")
        sys.stderr.flush()
        last = job["state"]
        if job["state"] in FINAL:
            if tty:
                sys.stderr.write("\n")
            if job["state"] != "COMPLETED":
                error = job.get("error") or {}
                print(
                    f"{job['state']}: {error.get('code')}: {error.get('message')}", file=sys.stderr
                )
                return 1
            return 0
        if time.monotonic() > deadline:
            print(f"\ntimed out; the job is {job['state']}", file=sys.stderr)
            return 2
        time.sleep(1.0)


def cmd_wait(args: argparse.Namespace) -> int:
    return _wait(_client(args), args.job_id, args.timeout)


def _result(args: argparse.Namespace, kind: str, query: dict[str, str] | None = None) -> int:
    params = urlencode({"format": args.format, **(query or {})})
    response = _client(args).call("GET", f"/v1/jobs/{args.job_id}/{kind}?{params}")
    if args.output:
        Path(args.output).write_bytes(response.content)
    else:
        sys.stdout.buffer.write(response.content)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    # Only the options given: the API serves the stored file when there are none.
    options = {name: getattr(args, name) for name in SubtitleOptions.model_fields}
    query = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in options.items()
        if value is not None
    }
    return _result(args, "transcript", query)


def _subtitle_flags(cmd: argparse.ArgumentParser) -> None:
    """--max-line-chars and co.: SubtitleOptions' fields (the API checks their bounds)."""
    group = cmd.add_argument_group("subtitles (srt and vtt; any of these renders them again)")
    for name, field in SubtitleOptions.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = getattr(DEFAULT_OPTIONS, name)
        if field.annotation is bool:
            group.add_argument(flag, action="store_const", const=True, help=field.description)
            continue
        low, high = (
            next(getattr(m, k) for m in field.metadata if hasattr(m, k)) for k in ("ge", "le")
        )
        group.add_argument(
            flag,
            type=type(default),
            help=f"{field.description}: {low} to {high}, default {default}",
        )


def cmd_notes(args: argparse.Namespace) -> int:
    return _result(args, "notes")


def cmd_list(args: argparse.Namespace) -> int:
    client = _client(args)
    params = {"limit": str(args.limit), "state": args.state, "page_token": args.page_token}
    query = urlencode({k: v for k, v in params.items() if v})
    page = client.json("GET", f"/v1/jobs?{query}")
    for job in page["jobs"]:
        print(f"{job['job_id']}  {job['state']:<12}  {job['created_at']}  {job['source']['uri']}")
    if page["next_page_token"]:
        print(f"(more: --page-token {page['next_page_token']})", file=sys.stderr)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    models = _client(args).json("GET", "/v1/models")["models"]
    print("model\tlanguages\ttranslates\tparameters\tspeed\tinstalled\tdefault for")
    for m in models:
        print(
            f"{m['name']}\t{m['languages']}\t{'yes' if m['translates'] else 'no'}\t"
            f"{m['parameters_m']}M\t{m['relative_speed']:g}x\t"
            f"{'yes' if m['installed'] else 'no'}\t{','.join(m['default_for']) or '-'}"
        )
    return 0


def _speakers_option(value: str) -> str:
    """Checked here as the API checks it, so a typo fails before any upload."""
    try:
        return normalized(value)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _notes_instructions_option(value: str) -> str | None:
    """Checked here as the API checks it (JobOptions); blank is none, so nothing is sent."""
    try:
        return JobOptions(notes_instructions=value).notes_instructions
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.errors()[0]["msg"]) from None


def _naming(value: str) -> tuple[str, str | None]:
    label, sep, name = value.partition("=")
    if not sep or not label:
        raise argparse.ArgumentTypeError(f"{value!r}: write LABEL=NAME, e.g. SPEAKER_1=Priya")
    return label, name or None  # SPEAKER_2= gives the label back


def cmd_speakers(args: argparse.Namespace) -> int:
    answer = _client(args).json("PUT", f"/v1/jobs/{args.job_id}/speakers", json=dict(args.names))
    print("speaker\tname\ttalk\tshare\tturns")
    for s in answer["speakers"]:
        print(
            f"{s['speaker']}\t{s['name'] or '-'}\t{s['talk_s']:.1f}s\t{s['share'] * 100:.0f}%\t"
            f"{s['turns']}"
        )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    print(json.dumps(_client(args).json("DELETE", f"/v1/jobs/{args.job_id}"), indent=2))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audionotes", description=__doc__.split("\n\n")[0])
    p.add_argument("--api-url", help="default: $AUDIONOTES_API_URL")
    p.add_argument("--token", help="default: $AUDIONOTES_TOKEN")
    sub = p.add_subparsers(dest="command", required=True)

    submit = sub.add_parser("submit", help="submit a local file, gs:// or https:// URL")
    submit.add_argument("source")
    submit.add_argument(
        "--priority", choices=[p.value for p in Priority], default=Priority.NORMAL.value
    )
    submit.add_argument("--language")
    submit.add_argument("--model", help="a catalog model this deployment has, e.g. base")
    submit.add_argument(
        "--task",
        choices=[t.value for t in WhisperTask],
        help="translate: English text, whatever was spoken (multilingual models only)",
    )
    submit.add_argument(
        "--vocabulary", help='names and terms to expect, comma-separated: "Priya, Kubernetes"'
    )
    submit.add_argument("--notes-template", choices=[t.value for t in NotesTemplate])
    submit.add_argument(
        "--notes-instructions",
        metavar="TEXT",
        type=_notes_instructions_option,
        help='extra instructions for the notes, e.g. "list every number mentioned" (at '
        f"most {MAX_NOTES_INSTRUCTIONS_CHARS} characters; they never change the notes' format)",
    )
    submit.add_argument(
        "--speakers", type=_speakers_option, help=SPEAKERS_DESCRIPTION.replace("%", "%%")
    )
    submit.add_argument("--webhook-url")
    submit.add_argument("--idempotency-key")
    submit.add_argument("--via", choices=["signed-url", "gcs"], default="signed-url")
    submit.add_argument("--wait", action="store_true", help="then wait with a progress bar")
    submit.add_argument("--timeout", type=float, default=3600)
    submit.set_defaults(run=cmd_submit)

    for name, run, text in [
        ("status", cmd_status, "a job as JSON"),
        ("delete", cmd_delete, "cancel a job and delete its data"),
    ]:
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("job_id")
        cmd.set_defaults(run=run)

    models = sub.add_parser("models", help="the Whisper models, and which this deployment has")
    models.set_defaults(run=cmd_models)

    wait = sub.add_parser("wait", help="wait for a job with a progress bar")
    wait.add_argument("job_id")
    wait.add_argument("--timeout", type=float, default=3600)
    wait.set_defaults(run=cmd_wait)

    get = sub.add_parser("get", help="the transcript")
    get.add_argument("job_id")
    get.add_argument("--format", choices=TRANSCRIPT_FORMATS, default="txt")
    get.add_argument("-o", "--output")
    _subtitle_flags(get)
    get.set_defaults(run=cmd_get)

    notes = sub.add_parser("notes", help="the notes")
    notes.add_argument("job_id")
    notes.add_argument("--format", choices=NOTES_FORMATS, default="md")
    notes.add_argument("-o", "--output")
    notes.set_defaults(run=cmd_notes)

    speakers = sub.add_parser(
        "speakers", help="name a transcript's speakers; prints each one's talk time"
    )
    speakers.add_argument("job_id")
    speakers.add_argument(
        "names",
        nargs="+",
        type=_naming,
        metavar="LABEL=NAME",
        help="SPEAKER_1=Priya; SPEAKER_2= (empty) gives the label back",
    )
    speakers.set_defaults(run=cmd_speakers)

    lst = sub.add_parser("list", help="your jobs, newest first")
    lst.add_argument("--state", type=str.upper, choices=[s.value for s in JobState])
    lst.add_argument("--limit", type=int, default=20)
    lst.add_argument("--page-token", help="the token the previous page printed")
    lst.set_defaults(run=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as err:
        print(f"audionotes: {err}", file=sys.stderr)
        return 1
    except requests.RequestException as err:
        print(f"audionotes: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
