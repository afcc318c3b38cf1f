"""The log lines that are metrics: the logging contract with terraform/modules/monitoring.

Cloud Logging's log-based metrics count and measure JSON log lines by ``jsonPayload.event``
and read their other fields (``common.obs.logs`` copies every ``extra=`` key into the line). Code
that logs such a line builds its ``extra`` with ``fields()``, which refuses a field this
registry does not name; tests/unit/test_metrics_terraform.py checks that every event and
field the Terraform filters and extractors use is one named here, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# A job entered ``state`` (coming from ``previous_state``, where it spent ``duration_s``);
# a FAILED one says why in ``code``. Jobs by state, stage durations, failures by error code.
JOB_STATE = "job_state"
# One answered LLM call of the notes function: its tokens and what it cost.
LLM_USAGE = "llm_usage"
# A job's transcript exists (merged, or taken from the content cache): the seconds of audio
# it covers, once per job.
TRANSCRIBED = "transcribed"
# One task ran the model over its chunk: ``audio_s`` of audio in ``duration_s`` seconds, so
# ``rtf`` (real-time factor) = duration_s / audio_s on that hardware.
CHUNK_TRANSCRIBED = "chunk_transcribed"

EVENTS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        JOB_STATE: frozenset({"job_id", "state", "previous_state", "duration_s", "code"}),
        LLM_USAGE: frozenset(
            {
                "provider",
                "model",
                "prompt_tokens",
                "completion_tokens",
                "tokens",
                "compute_s",
                "cost_usd",
            }
        ),
        TRANSCRIBED: frozenset({"audio_s", "model", "chunks", "cache_hit"}),
        CHUNK_TRANSCRIBED: frozenset({"chunk", "audio_s", "duration_s", "rtf", "model"}),
    }
)


def fields(event: str, **values: object) -> dict[str, object]:
    """The ``extra=`` of a metric line; a field outside the registry is a programming error."""
    allowed = EVENTS[event]
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"event {event!r} has no field(s) {', '.join(unknown)} in EVENTS")
    return {"event": event, **values}
