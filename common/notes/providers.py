"""One call to an OpenAI-compatible chat endpoint through the official ``openai`` client.

The client's own retries are off (``max_retries=0``): ``chain`` runs the only retry loop, so
two loops never multiply. Every failure leaves here as one of ``common.notes.errors``.

Two request styles:
- ``json_schema`` (OpenAI, our own model server run_jobs/llm): ``chat.completions.parse`` with
  the pydantic model, i.e. strict structured outputs;
- ``json_object`` (vLLM, Ollama, llama.cpp's server): ``response_format={"type":"json_object"}``
  with the JSON schema in the prompt, validated here.

A provider authenticates with the chain's key, or, given ``bearer``, with a token it mints per
call (a Google ID token for a private Cloud Run service).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

import openai
from pydantic import BaseModel, ValidationError

from common.domain.notes import Usage
from common.domain.retry import parse_retry_after
from common.notes.chunking import estimate_tokens
from common.notes.errors import (
    AuthFailed,
    BadOutput,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ServerError,
    Timeout,
    Unreachable,
)

M = TypeVar("M", bound=BaseModel)


class RequestStyle(StrEnum):
    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"


@dataclass(frozen=True)
class Completion(Generic[M]):
    parsed: M
    usage: Usage
    model: str  # as the server reported it


class ChatProvider:
    def __init__(
        self,
        name: str,
        *,
        model: str,
        base_url: str | None,
        style: RequestStyle,
        timeout_s: float,
        max_output_tokens: int,
        bearer: Callable[[], str] | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url
        self.style = style
        self.timeout_s = timeout_s
        self.max_output_tokens = max_output_tokens
        self.bearer = bearer
        self._clients: dict[str, openai.OpenAI] = {}
        self._lock = threading.Lock()

    def _client(self, key: str) -> openai.OpenAI:
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                if self.bearer is not None:
                    self._clients.clear()  # minted tokens replace each other
                client = openai.OpenAI(
                    api_key=key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s
                )
                self._clients[key] = client
            return client

    def complete(self, messages: list[dict[str, Any]], schema: type[M], key: str) -> Completion[M]:
        started = time.monotonic()
        try:
            client = self._client(self.bearer() if self.bearer is not None else key)
            if self.style is RequestStyle.JSON_SCHEMA:
                return self._parse(client, messages, schema, started)
            return self._json_object(client, messages, schema, started)
        except ProviderError:
            raise
        except openai.LengthFinishReasonError as exc:
            raise BadOutput(
                "output truncated at the token limit",
                usage=_usage(exc.completion.usage, messages, None, started),
                model=exc.completion.model,
            ) from exc
        except openai.ContentFilterFinishReasonError as exc:
            raise BadOutput(f"output stopped by the content filter: {exc}") from exc
        except ValidationError as exc:  # invalid JSON, or JSON not matching the schema
            raise BadOutput(f"output does not match {schema.__name__}: {_short(exc)}") from exc
        except openai.APITimeoutError as exc:
            raise Timeout(f"no answer within {self.timeout_s}s") from exc
        except openai.APIConnectionError as exc:
            raise Unreachable(f"cannot reach {self.base_url or 'api.openai.com'}: {exc}") from exc
        except openai.APIStatusError as exc:
            raise _status_error(exc) from exc
        except openai.APIResponseValidationError as exc:
            raise BadOutput(f"unusable response: {exc}") from exc

    def _parse(
        self, client: openai.OpenAI, messages: list[dict[str, Any]], schema: type[M], started: float
    ) -> Completion[M]:
        response = client.chat.completions.parse(
            model=self.model,
            messages=cast(Any, messages),
            response_format=schema,
            max_completion_tokens=self.max_output_tokens,
        )
        choice = response.choices[0]
        usage = _usage(response.usage, messages, choice.message.content, started)
        if choice.message.refusal:
            raise BadOutput(
                f"the model refused: {choice.message.refusal[:200]}",
                usage=usage,
                model=response.model,
            )
        if choice.message.parsed is None:
            raise BadOutput(
                "the model returned no parsable content", usage=usage, model=response.model
            )
        return Completion(parsed=choice.message.parsed, usage=usage, model=response.model)

    def _json_object(
        self, client: openai.OpenAI, messages: list[dict[str, Any]], schema: type[M], started: float
    ) -> Completion[M]:
        response = client.chat.completions.create(
            model=self.model,
            messages=cast(Any, messages),
            response_format={"type": "json_object"},
            max_tokens=self.max_output_tokens,
        )
        choice = response.choices[0]
        content = choice.message.content or ""
        usage = _usage(response.usage, messages, content, started)
        if choice.finish_reason == "length":
            raise BadOutput(
                "output truncated at the token limit", usage=usage, model=response.model
            )
        try:
            parsed = schema.model_validate_json(content)
        except ValidationError as exc:
            raise BadOutput(
                f"output does not match {schema.__name__}: {_short(exc)}",
                usage=usage,
                model=response.model,
            ) from exc
        return Completion(parsed=parsed, usage=usage, model=response.model)


def _usage(
    reported: Any, messages: list[dict[str, Any]], content: str | None, started: float
) -> Usage:
    elapsed = round(time.monotonic() - started, 3)
    if reported is not None:
        # Our own server adds compute_s (an extra field the client keeps).
        compute_s = getattr(reported, "compute_s", None)
        return Usage(
            prompt_tokens=int(reported.prompt_tokens or 0),
            completion_tokens=int(reported.completion_tokens or 0),
            compute_s=float(compute_s) if isinstance(compute_s, int | float) else elapsed,
        )
    # Some self-hosted servers omit usage; estimate rather than record nothing.
    prompt = sum(estimate_tokens(str(m.get("content", ""))) for m in messages)
    return Usage(
        prompt_tokens=prompt, completion_tokens=estimate_tokens(content or ""), compute_s=elapsed
    )


def _status_error(exc: openai.APIStatusError) -> ProviderError:
    status = exc.status_code
    headers = dict(exc.response.headers) if exc.response is not None else {}
    retry_after = parse_retry_after(headers)
    message = f"HTTP {status}: {_short(exc)}"
    if status == 429:
        return ProviderRateLimited(message, status=status, retry_after=retry_after)
    if status in (401, 403):
        return AuthFailed(message, status=status)
    if status >= 500 or status in (408, 409):
        return ServerError(message, status=status, retry_after=retry_after)
    return ProviderRejected(message, status=status)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]
