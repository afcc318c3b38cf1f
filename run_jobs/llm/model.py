"""One loaded GGUF model and greedy or sampled generation on it, under a grammar or not.

llama.cpp through ``cyllama``'s bindings. The model is loaded once per process (``loads``
counts it); one context of ``n_ctx`` tokens is made once and reused. A request keeps what
the KV cache holds of the previous one as far as their tokens agree: the notes requests share
their instructions and worked example (~700 tokens, ~12 s of prefill on two cores), so only
the transcript is read anew. Threads are set on the context: llama.cpp's own default
oversubscribes a 2-core machine and runs 4x slower there.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cyllama.api import LLM, GenerationConfig
from cyllama.llama.llama_cpp import (
    LlamaContext,
    LlamaContextParams,
    LlamaSampler,
    LlamaSamplerChainParams,
    llama_batch_get_one,
)

loads = 0  # models loaded by this process: one is the contract


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    prefill_s: float
    decode_s: float
    cached_tokens: int = 0  # of the prompt, kept from the previous request: not read again


class PromptTooLong(ValueError):
    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(
            f"the prompt is {tokens} tokens; this model's context holds {limit} with the completion"
        )
        self.tokens = tokens
        self.limit = limit


def available_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class LocalModel:
    def __init__(
        self,
        path: Path,
        *,
        model_id: str,
        n_ctx: int = 8192,
        threads: int = 0,
        n_batch: int = 512,
        n_gpu_layers: int = 0,
    ) -> None:
        global loads
        started = time.monotonic()
        self.model_id = model_id
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.threads = threads or available_threads()
        self._llm = LLM(
            str(path),
            GenerationConfig(n_ctx=n_ctx, n_batch=n_batch, n_gpu_layers=n_gpu_layers),
            verbose=False,
        )
        self._vocab = self._llm.vocab
        params = LlamaContextParams()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_threads = self.threads
        params.n_threads_batch = self.threads
        params.no_perf = True
        self._ctx = LlamaContext(self._llm.model, params)
        self._lock = threading.Lock()  # one generation at a time on the one context
        self._cached: list[int] = []  # the tokens whose keys and values the context holds
        loads += 1
        self.load_s = time.monotonic() - started

    def prompt(self, messages: Sequence[dict[str, str]]) -> str:
        """The messages in the model's own chat template, ending where the answer starts."""
        return str(self._llm._apply_template(list(messages), None))

    def tokenize(self, text: str) -> list[int]:
        return list(self._vocab.tokenize(text, add_special=True, parse_special=True))

    def generate(
        self,
        tokens: list[int],
        *,
        max_tokens: int,
        grammar: str | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        repeat_penalty: float = 1.0,
        stop: Sequence[str] = (),
    ) -> Generation:
        """Completes ``tokens``; ``PromptTooLong`` if they and ``max_tokens`` do not fit."""
        if len(tokens) + max_tokens > self.n_ctx:
            raise PromptTooLong(len(tokens), self.n_ctx)
        with self._lock:
            sampler = self._sampler(grammar, temperature, seed, repeat_penalty)
            return self._generate(tokens, max_tokens, sampler, stop)

    def _generate(
        self,
        tokens: list[int],
        max_tokens: int,
        sampler: Any,
        stop: Sequence[str],
    ) -> Generation:
        ctx = self._ctx
        started = time.monotonic()
        # At least the last prompt token is decoded again: its logits give the first token.
        held, self._cached = self._cached, []  # nothing trusted if this request fails midway
        reuse = min(_common_prefix(held, tokens), len(tokens) - 1)
        if reuse > 0:
            ctx.memory_seq_rm(0, reuse, -1)
        else:
            ctx.kv_cache_clear()
        self._cached = tokens[:reuse]
        for at in range(reuse, len(tokens), self.n_batch):
            batch = tokens[at : at + self.n_batch]
            ctx.decode(llama_batch_get_one(batch, at))
            self._cached += batch
        prefilled = time.monotonic()
        pieces: list[str] = []
        finish = "length"
        position = len(tokens)
        for _ in range(max_tokens):
            token = sampler.sample(ctx, -1)
            if self._vocab.is_eog(token):
                finish = "stop"
                break
            pieces.append(self._piece(token))
            if stop and any(s in "".join(pieces[-8:]) for s in stop):
                finish = "stop"
                break
            ctx.decode(llama_batch_get_one([token], position))
            self._cached.append(token)
            position += 1
        text = "".join(pieces)
        for s in stop:
            text = text.split(s, 1)[0]
        return Generation(
            text=text,
            prompt_tokens=len(tokens),
            completion_tokens=len(pieces),
            finish_reason=finish,
            prefill_s=prefilled - started,
            decode_s=time.monotonic() - prefilled,
            cached_tokens=reuse,
        )

    def _sampler(
        self, grammar: str | None, temperature: float, seed: int, repeat_penalty: float
    ) -> Any:
        params = LlamaSamplerChainParams()
        params.no_perf = True
        sampler = LlamaSampler(params)
        if grammar is not None:
            # First in the chain: the grammar removes what it forbids before anything picks.
            sampler.add_grammar(self._vocab, grammar, "root")
        if repeat_penalty != 1.0:
            sampler.add_penalties(64, repeat_penalty, 0.0, 0.0)
        if temperature <= 0:
            sampler.add_greedy()
        else:
            sampler.add_temp(temperature)
            sampler.add_dist(seed)
        return sampler

    def _piece(self, token: int) -> str:
        try:
            return str(self._vocab.token_to_piece(token, special=False))
        except UnicodeDecodeError:  # half of a multi-byte character: llama.cpp splits some
            return ""


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
