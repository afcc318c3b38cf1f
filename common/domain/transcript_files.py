"""A transcript's stored files, ``transcript.{json,txt,srt,vtt,tsv,rttm}``: written by the
transcribe job when it finishes and again by the API when speakers are named
(``PUT /v1/jobs/{id}/speakers``), so both write exactly the same bytes."""

from __future__ import annotations

from common.config.settings import Settings
from common.domain.ports import BlobStore
from common.domain.subtitles import render
from common.domain.transcripts import MEDIA_TYPES, TRANSCRIPT_FORMATS, Transcript, result_uri

TRANSCRIPT_JSON = "transcript.json"


def write_outputs(transcript: Transcript, settings: Settings, blobs: BlobStore) -> dict[str, str]:
    """Write every rendering (subtitles with the default options), transcript.json last;
    returns {"transcript.json": uri, ...}.

    Last, because the API reads transcript.json's ``speaker_names`` as the names every file
    beside it carries: a rewrite that died half-way leaves the old names there, and the API
    then renders from it (``functions/api/service.read_result``)."""
    outputs = {}
    for ext in sorted(TRANSCRIPT_FORMATS, key=lambda ext: ext == "json"):
        uri = result_uri(settings, transcript.job_id, f"transcript.{ext}")
        blobs.write_bytes(uri, render(transcript, ext).encode(), content_type=MEDIA_TYPES[ext])
        outputs[f"transcript.{ext}"] = uri
    return outputs
