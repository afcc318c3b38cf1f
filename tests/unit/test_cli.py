"""The CLI's ``get``: subtitle flags become query parameters, only those given."""

from __future__ import annotations

from typing import Any

import pytest

from audionotes import cli


class _Answer:
    content = b"1\n"


@pytest.mark.parametrize(
    ("flags", "query"),
    [
        ([], "format=txt"),
        (["--format", "tsv"], "format=tsv"),
        (
            ["--format", "srt", "--max-line-chars", "32", "--max-lines", "1", "--highlight-words"],
            "format=srt&max_line_chars=32&max_lines=1&highlight_words=true",
        ),
        (
            ["--format", "vtt", "--max-cue-s", "5", "--min-gap-s", "0"],
            "format=vtt&max_cue_s=5.0&min_gap_s=0.0",
        ),
    ],
)
def test_get_sends_the_subtitle_flags_given_as_query_parameters(
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
    flags: list[str],
    query: str,
) -> None:
    paths: list[str] = []

    def call(self: cli.Client, method: str, path: str, **_: Any) -> _Answer:
        paths.append(f"{method} {path}")
        return _Answer()

    monkeypatch.setattr(cli.Client, "call", call)
    argv = ["--api-url", "http://api", "--token", "t", "get", "a-1", *flags]
    assert cli.main(argv) == 0
    assert paths == [f"GET /v1/jobs/a-1/transcript?{query}"]
    assert capsysbinary.readouterr().out == b"1\n"


def test_a_subtitle_flag_of_the_wrong_type_is_refused_before_any_call() -> None:
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["get", "a-1", "--max-lines", "two"])


def test_models_prints_a_row_per_catalog_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from functions.api.schemas import ModelList
    from tests.fakes import settings

    listed = ModelList.of(settings().transcription).model_dump(mode="json")
    monkeypatch.setattr(cli.Client, "json", lambda self, method, path, **_: listed)
    assert cli.main(["--api-url", "http://x", "--token", "t", "models"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0][0] == "model" and len(rows) == 1 + len(listed["models"])
    assert rows[2] == ["base", "multilingual", "yes", "74M", "7x", "yes", "cpu,gpu"]
    assert rows[6][:3] == ["large-v3-turbo", "multilingual", "no"] and rows[6][5] == "no"
