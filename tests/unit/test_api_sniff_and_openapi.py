"""Audio sniffing on real encoder output, and the OpenAPI document against the code."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import av
import jsonschema
import numpy as np
import pytest

from common.edge.sniff import sniff
from functions.api.http import create_app
from functions.api.openapi import render
from functions.api.routes import ROUTES
from functions.uploads import is_placeholder_or_part, options_from_metadata
from tests.fakes import settings

REPO = Path(__file__).resolve().parents[2]


def _encode(fmt: str, codec: str, rate: int) -> bytes:
    buf = io.BytesIO()
    container = av.open(buf, "w", format=fmt)
    stream = container.add_stream(codec, rate=rate)
    t = np.arange(rate, dtype=np.float32) / rate
    frame = av.AudioFrame.from_ndarray(
        (0.2 * np.sin(2 * np.pi * 440 * t)).reshape(1, -1).astype(np.float32),
        format="fltp",
        layout="mono",
    )
    frame.sample_rate = rate
    for packet in stream.encode(frame):
        container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return buf.getvalue()


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("a") / "s.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "one two three"], check=True)
    return path


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "aiff", "au", "w64", "amr-nb"])
def test_sox_formats_are_audio(wav: Path, tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"s.{ext}"
    extra = ["-r", "8000", "-c", "1"] if ext == "amr-nb" else []
    subprocess.run(["sox", str(wav), *extra, str(out)], check=True)
    assert sniff(out.read_bytes()[:65536]).is_audio, ext


@pytest.mark.parametrize(
    ("fmt", "codec", "rate", "kind"),
    [
        ("mp3", "libmp3lame", 16000, "mp3"),
        ("mp4", "aac", 16000, "mp4"),
        ("webm", "libopus", 48000, "webm"),
        ("adts", "aac", 16000, "aac"),
    ],
)
def test_encoded_formats_are_audio(fmt: str, codec: str, rate: int, kind: str) -> None:
    assert sniff(_encode(fmt, codec, rate)).kind == kind


def test_mp3_without_id3_is_found_by_its_frames() -> None:
    data = _encode("mp3", "libmp3lame", 16000)
    size = 10 + int.from_bytes(bytes(b & 0x7F for b in data[6:10]), "big")  # the ID3 tag
    assert data[size] == 0xFF
    assert sniff(data[size:]).kind == "mp3"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n...", "pdf"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "jpeg"),
        (b"PK\x03\x04" + b"\x00" * 20, "zip"),
        (b"<!DOCTYPE html><html></html>", "html"),
        (b'{"audio": true}', "json"),
        ("meeting notes: caf\u00e9 at nine\n".encode() * 200, "text"),
        (bytes(range(256)) * 4, "unknown"),
        (b"", "empty"),
        (b"\xff\xfb\x00\x00" * 4, "unknown"),  # a frame sync with a forbidden bitrate
    ],
)
def test_non_audio_is_named(data: bytes, kind: str) -> None:
    found = sniff(data)
    assert (found.is_audio, found.kind) == (False, kind)


def test_placeholders_and_composite_parts() -> None:
    for name in ("uploads/a/", "uploads/a_$folder$", "uploads/x_.gstmp"):
        assert is_placeholder_or_part(name)
    assert is_placeholder_or_part("uploads/parallel_composite_uploads/x/1")
    assert not is_placeholder_or_part("uploads/meeting.wav")


def test_metadata_options() -> None:
    s = settings()
    options, problem = options_from_metadata(
        {"priority": "low", "notes-template": "interview", "owner": "ignored"}, s
    )
    assert problem is None
    assert (options.priority, options.notes_template) == ("low", "interview")
    _, problem = options_from_metadata({"priority": "urgent"}, s)
    assert problem is not None and problem.code == "bad_options" and "priority" in problem.message
    # The model is checked at upload, not first at dispatch.
    _, problem = options_from_metadata({"model": "large-v9"}, s)
    assert problem is not None and problem.code == "unknown_model" and "model" in problem.message
    _, problem = options_from_metadata({"model": "tiny.en", "language": "de"}, s)
    assert problem is not None and problem.code == "model_language_mismatch"
    options, problem = options_from_metadata({"model": "base", "language": "de"}, s)
    assert problem is None and options.model == "base"


def test_the_committed_document_is_the_generated_one() -> None:
    committed = (REPO / "functions" / "openapi.json").read_text()
    assert committed == render(), "run: python -m functions.api.openapi > functions/openapi.json"


def test_document_covers_every_route_and_is_valid_openapi_json_schema() -> None:
    doc = json.loads(render())
    assert doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    routed = set()
    app = create_app(settings(), lambda: pytest.fail("no service is needed"))
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("page"):  # the web page (functions.api.page), not the API
            continue
        path = rule.rule.replace("<job_id>", "{job_id}")
        routed |= {(m, path) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    assert documented == routed == {(r.method, r.path) for r in ROUTES}
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    refs = {
        v.split("/")[-1]
        for v in json.dumps(doc).replace('"', " ").split()
        if v.startswith("#/components/schemas/")
    }
    assert refs <= set(doc["components"]["schemas"])
    # Every operation documents the error body for each error status it declares.
    for item in doc["paths"].values():
        for op in item.values():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorBody"
                    }
