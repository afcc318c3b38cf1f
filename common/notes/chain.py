"""``NotesEngine``: notes from a transcript through the provider chain, never failing to
produce some.

For each provider in order (OpenAI, then the OpenAI-compatible fallback endpoint):
skip it if its breaker is open or, for a token-priced provider, if today's spend is past the
daily budget; otherwise map (one request per chunk, bounded by the provider's context) and
reduce (merge the partial notes, in rounds that fit a request) with our retry loop around every
call (what it does after a failure: ``common.notes.retry_rule``). The single and the batched
calls walk the chain the same way. If no provider can, the extractive engine (no model) makes
the notes. Every call, failed or not, is an ``Attempt`` in the provenance; every answered call
is charged to the spend ledger, a self-hosted model's by its compute time: that spend counts
toward the budget, but the self-hosted model itself is never skipped for it (it is where the
chain goes when the budget is spent). A model's owners are read off the committing turns where
the extractive rule finds the item (``common.notes.attribution``), then its notes are grounded
in their transcript (``common.notes.grounding``): owners, due dates and people it does not
support, and items copied from the prompt's example, are removed; both are listed in the
provenance. The extractive engine's notes come from the transcript's own words and are left as
they are.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

from common.config.settings import ModelPrice
from common.domain.errors import InvalidInput
from common.domain.jobs import NotesTemplate
from common.domain.notes import Attempt, Notes, NotesBatch, Provenance, Usage
from common.notes.attribution import attribute
from common.notes.breaker import CircuitBreaker
from common.notes.chunking import chunk_texts, estimate_tokens
from common.notes.errors import BadOutput, ProviderError, ProvidersDown, ProviderUnavailable
from common.notes.extractive import extract_notes, merge_notes
from common.notes.grounding import ground
from common.notes.keys import KeyRing
from common.notes.ledger import Charge, SpendLedger
from common.notes.pricing import cost_usd, price_for
from common.notes.prompts import batch_messages, map_messages, reduce_messages, worked_example
from common.notes.providers import ChatProvider, Completion, RequestStyle
from common.notes.retry_rule import RetryPolicy, Step, Tries, decide
from common.notes.turns import has_turns, split_pieces
from common.obs import metrics
from common.obs.logs import get_logger

log = get_logger(__name__)
_tracer = trace.get_tracer(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

EXTRACTIVE = "extractive"
EXTRACTIVE_MODEL = "extractive-v1"


@dataclass
class ProviderLink:
    """One provider of the chain with its keys, its breaker and its price."""

    provider: ChatProvider
    keys: KeyRing
    breaker: CircuitBreaker
    prices: Mapping[str, ModelPrice]
    # Transcript tokens per request when its context is smaller than the engine's chunks
    # (a small self-hosted model); None: the engine's.
    chunk_tokens: int | None = None

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def price(self) -> ModelPrice | None:
        # Priced by the model we ask for: that is what the account is billed for.
        return price_for(self.provider.model, self.prices)

    @property
    def billable(self) -> bool:
        """Priced by the token, so skipped once the budget is spent."""
        price = self.price
        return price is not None and (price.input_per_mtok > 0 or price.output_per_mtok > 0)


@dataclass
class _Run:
    attempts: list[Attempt] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    calls: int = 0
    model: str | None = None

    def provenance(
        self, provider: str, model: str, requested: str | None, chunks: int, reason: str | None
    ) -> Provenance:
        return Provenance(
            provider=provider,
            model=model,
            requested_model=requested,
            attempts=list(self.attempts),
            calls=self.calls,
            chunks=chunks,
            usage=self.usage,
            cost_usd=round(self.cost_usd, 8),
            fallback_reason=reason,
        )


@dataclass(frozen=True)
class _Walk(Generic[T]):
    answer: tuple[ProviderLink, T] | None  # the provider that answered, and its answer
    reason: str | None  # why the providers before it (or all of them) did not


class NotesEngine:
    def __init__(
        self,
        links: Sequence[ProviderLink],
        ledger: SpendLedger,
        *,
        policy: RetryPolicy | None = None,
        daily_budget_usd: float = 50.0,
        chunk_tokens: int = 12_000,
        batch_max_items: int = 8,
        batch_item_max_tokens: int = 1_500,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        new_call_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.links = list(links)
        self.ledger = ledger
        self.policy = policy or RetryPolicy()
        self.daily_budget_usd = daily_budget_usd
        self.chunk_tokens = chunk_tokens
        self.batch_max_items = batch_max_items
        self.batch_item_max_tokens = batch_item_max_tokens
        self.sleep = sleep
        self.rand = rand
        self.new_call_id = new_call_id

    # one transcript ----------------------------------------------------------------------
    def generate(
        self,
        job_id: str,
        pieces: Sequence[str],
        template: NotesTemplate,
        *,
        instructions: str | None = None,
        wait_for_provider: bool = False,
    ) -> tuple[Notes, Provenance]:
        """Notes of one transcript given as its segment texts or turn lines
        (``common.notes.turns.notes_pieces``), and what made them.

        ``instructions``: the job's own (``JobOptions.notes_instructions``), in every map and
        merge request; the extractive engine, which asks no model, has no use for them.

        ``wait_for_provider``: when every model provider is out (an outage, not bad output or
        the budget), raise ``ProvidersDown`` instead of using the extractive engine, so the
        job waits for a provider to return."""
        chunks = chunk_texts(pieces, self.chunk_tokens)
        if not chunks:
            raise InvalidInput("the transcript has no text", code="empty_transcript")
        run = _Run()
        asked: dict[str, list[str]] = {}  # each provider's chunks

        def ask(link: ProviderLink) -> Notes:
            asked[link.name] = self._chunks_for(link, pieces, chunks)
            return self._map_reduce(link, run, job_id, asked[link.name], template, instructions)

        walk = self._walk(run, ask, wait_for_provider)
        if walk.answer is not None:
            link, notes = walk.answer
            prov = run.provenance(
                link.name,
                run.model or link.provider.model,
                link.provider.model,
                len(asked[link.name]),
                walk.reason,
            )
            return _grounded(job_id, notes, chunks, prov, template)
        notes = merge_notes([extract_notes(c, template) for c in chunks], template)
        return notes, run.provenance(EXTRACTIVE, EXTRACTIVE_MODEL, None, len(chunks), walk.reason)

    def _chunk_tokens(self, link: ProviderLink) -> int:
        return min(link.chunk_tokens or self.chunk_tokens, self.chunk_tokens)

    def _chunks_for(
        self, link: ProviderLink, pieces: Sequence[str], chunks: list[str]
    ) -> list[str]:
        """The engine's chunks, or smaller ones for a provider with a smaller context."""
        if self._chunk_tokens(link) == self.chunk_tokens:
            return chunks
        return chunk_texts(pieces, self._chunk_tokens(link))

    def _walk(
        self, run: _Run, ask: Callable[[ProviderLink], T], wait_for_provider: bool
    ) -> _Walk[T]:
        """The chain in order until a provider answers ``ask``; with no answer the reason is
        the last provider's (or the budget's), for the extractive fallback."""
        links = self._usable_links(run)
        reason = self._skip_reason(run)  # a provider skipped for the budget is why, too
        outages = 0
        for link in links:
            try:
                return _Walk((link, ask(link)), reason)
            except ProviderUnavailable as exc:
                reason = f"{exc.provider}: {exc.reason}"
                outages += exc.outage
                log.warning("provider %s unavailable: %s", exc.provider, exc.reason)
        if wait_for_provider and outages:
            raise ProvidersDown(f"no model provider answered ({reason}); waiting for one")
        return _Walk(None, reason)

    def _usable_links(self, run: _Run) -> list[ProviderLink]:
        usable = []
        over_budget: bool | None = None
        for link in self.links:
            if link.billable:
                if over_budget is None:
                    over_budget = self.ledger.spent_usd() >= self.daily_budget_usd
                if over_budget:
                    run.attempts.append(Attempt(provider=link.name, outcome="over_budget"))
                    continue
            usable.append(link)
        return usable

    @staticmethod
    def _skip_reason(run: _Run) -> str | None:
        skipped = [a for a in run.attempts if a.outcome == "over_budget"]
        return f"{skipped[0].provider}: over_budget" if skipped else None

    def _map_reduce(
        self,
        link: ProviderLink,
        run: _Run,
        job_id: str,
        chunks: Sequence[str],
        template: NotesTemplate,
        instructions: str | None,
    ) -> Notes:
        schema_in_prompt = Notes if link.provider.style is RequestStyle.JSON_OBJECT else None
        turns = any(has_turns(c) for c in chunks)
        partials = [
            self._call(
                link,
                run,
                job_id,
                map_messages(
                    chunk,
                    template,
                    part=i + 1,
                    parts=len(chunks),
                    schema_in_prompt=schema_in_prompt,
                    instructions=instructions,
                ),
                Notes,
            )
            for i, chunk in enumerate(chunks)
        ]
        while len(partials) > 1:
            partials = [
                group[0]
                if len(group) == 1
                else self._call(
                    link,
                    run,
                    job_id,
                    reduce_messages(
                        group,
                        template,
                        schema_in_prompt=schema_in_prompt,
                        turns=turns,
                        instructions=instructions,
                    ),
                    Notes,
                )
                for group in self._reduce_groups(partials, self._chunk_tokens(link))
            ]
        return partials[0]

    @staticmethod
    def _reduce_groups(partials: Sequence[Notes], limit: int) -> list[list[Notes]]:
        """Consecutive groups whose JSON fits a request; at least two per group, so that
        every round shrinks the list."""
        groups: list[list[Notes]] = []
        current: list[Notes] = []
        size = 0
        for notes in partials:
            cost = estimate_tokens(notes.model_dump_json())
            if len(current) >= 2 and size + cost > limit:
                groups.append(current)
                current, size = [], 0
            current.append(notes)
            size += cost
        if current:
            if len(current) == 1 and groups:
                groups[-1].append(current[0])
            else:
                groups.append(current)
        return groups

    # the retry loop ----------------------------------------------------------------------
    def _call(
        self,
        link: ProviderLink,
        run: _Run,
        job_id: str,
        messages: list[dict[str, Any]],
        schema: type[M],
        check: Callable[[M], None] | None = None,
    ) -> M:
        tries = Tries()
        # Asked once, and again only after a failure that counts against the breaker: a
        # half-open probe that meets a 429 or a bad key goes on as the probe (asking again
        # would find its own probe out and refuse it).
        allowed = False
        while True:
            if not allowed and not link.breaker.allow():
                run.attempts.append(Attempt(provider=link.name, outcome="breaker_open"))
                raise ProviderUnavailable(link.name, "breaker_open")
            allowed = True
            picked = self._pick_key(link, run)
            if picked is None:
                continue
            index, key = picked
            try:
                completion = self._attempt(link, key, messages, schema, check)
            except ProviderError as error:
                tries = tries.counting(error)
                allowed = not error.trips_breaker
                self._after_failure(link, run, job_id, index, error, tries)
                continue
            link.breaker.record_success()
            self._charge(link, run, job_id, completion.usage, completion.model)
            run.attempts.append(Attempt(provider=link.name, outcome="ok", key=index))
            run.model = completion.model
            return completion.parsed

    def _pick_key(self, link: ProviderLink, run: _Run) -> tuple[int, str] | None:
        """A usable key; None after waiting for a resting one to be usable again."""
        picked = link.keys.pick()
        if picked is None:
            wait = link.keys.wait_s()
            if wait is None:
                run.attempts.append(Attempt(provider=link.name, outcome="no_usable_key"))
                raise ProviderUnavailable(link.name, "no_usable_key", outage=False)
            if run.attempts:
                run.attempts[-1].waited_s = round(run.attempts[-1].waited_s + wait, 3)
            self.sleep(wait)
        return picked

    @staticmethod
    def _attempt(
        link: ProviderLink,
        key: str,
        messages: list[dict[str, Any]],
        schema: type[M],
        check: Callable[[M], None] | None,
    ) -> Completion[M]:
        """One traced call; a ``ProviderError`` is raised after its span has ended."""
        with _tracer.start_as_current_span(
            "llm.call",
            attributes={"llm.provider": link.name, "llm.model": link.provider.model},
        ) as span:
            try:
                completion = link.provider.complete(messages, schema, key)
                if check is not None:
                    check(completion.parsed)
            except ProviderError as error:
                failed = error
                span.set_attribute("llm.outcome", error.outcome)
                span.set_status(StatusCode.ERROR, error.outcome)
            else:
                span.set_attributes(
                    {
                        "llm.outcome": "ok",
                        "llm.response_model": completion.model,
                        "llm.prompt_tokens": completion.usage.prompt_tokens,
                        "llm.completion_tokens": completion.usage.completion_tokens,
                    }
                )
                return completion
        raise failed

    def _after_failure(
        self,
        link: ProviderLink,
        run: _Run,
        job_id: str,
        index: int,
        error: ProviderError,
        tries: Tries,
    ) -> None:
        """Record the failure, apply ``decide``: wait, or raise ``ProviderUnavailable``."""
        attempt = Attempt(
            provider=link.name,
            outcome=error.outcome,
            key=index,
            status=error.status,
            detail=error.message[:200],
        )
        run.attempts.append(attempt)
        if error.trips_breaker:
            link.breaker.record_failure()
        elif isinstance(error, BadOutput):
            link.breaker.record_success()  # it answered: bad output is not an outage
            if error.usage is not None:  # and billed for it
                self._charge(link, run, job_id, error.usage, error.model or link.provider.model)
        decision = decide(
            error,
            tries,
            self.policy,
            other_key_ready=link.keys.ready_besides(index),
            rand=self.rand,
        )
        if decision.retire_key:
            link.keys.retire(index)
        if decision.rest_key_s is not None:
            link.keys.rest(index, decision.rest_key_s)
        if decision.step is Step.GIVE_UP:
            raise ProviderUnavailable(link.name, decision.reason, outage=decision.outage) from error
        if decision.step is Step.BACK_OFF:
            attempt.waited_s = round(decision.wait_s, 3)
            self.sleep(decision.wait_s)

    def _charge(self, link: ProviderLink, run: _Run, job_id: str, usage: Usage, model: str) -> None:
        """Every billed call, useful or not: the ledger, the job's run, and the log line."""
        cost = cost_usd(usage, link.price)
        self.ledger.charge(
            Charge(
                call_id=self.new_call_id(),
                job_id=job_id,
                provider=link.name,
                model=model,
                usage=usage,
                usd=cost,
            )
        )
        # One line per billed call: the log-based metric llm_cost_usd sums cost_usd.
        tokens = usage.prompt_tokens + usage.completion_tokens
        log.info(
            "llm call %s/%s: %d tokens, $%.6f",
            link.name,
            model,
            tokens,
            cost,
            extra=metrics.fields(
                metrics.LLM_USAGE,
                provider=link.name,
                model=model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                tokens=tokens,
                compute_s=usage.compute_s,
                cost_usd=cost,
            ),
        )
        run.calls += 1
        run.usage = run.usage + usage
        run.cost_usd += cost

    # several short transcripts -----------------------------------------------------------
    def plan_batches(self, items: Sequence[tuple[str, str]]) -> list[list[int]]:
        """Groups of item indexes to send together. Batching saves the instructions and
        schema tokens of all but one request, so short transcripts are grouped while they
        fit one request of every provider; a transcript longer than
        ``batch_item_max_tokens`` goes alone."""
        limit = min((self._chunk_tokens(link) for link in self.links), default=self.chunk_tokens)
        groups: list[list[int]] = []
        current: list[int] = []
        size = 0
        for i, (_, text) in enumerate(items):
            tokens = estimate_tokens(text)
            if tokens > self.batch_item_max_tokens:
                groups.append([i])
                continue
            if current and (len(current) >= self.batch_max_items or size + tokens > limit):
                groups.append(current)
                current, size = [], 0
            current.append(i)
            size += tokens
        if current:
            groups.append(current)
        return groups

    def generate_batch(
        self,
        items: Sequence[tuple[str, str]],
        template: NotesTemplate,
        *,
        instructions: str | None = None,
        wait_for_provider: bool = False,
    ) -> dict[str, tuple[Notes, Provenance]]:
        """Notes for several ``(job_id, text)``, a text being ``join_pieces`` of its
        transcript's pieces; short ones share requests. They share the template and the
        ``instructions`` too: jobs with other ones are never given in one call."""
        results: dict[str, tuple[Notes, Provenance]] = {}
        for group in self.plan_batches(items):
            chosen = [items[i] for i in group]
            if len(chosen) == 1:
                job_id, text = chosen[0]
                results[job_id] = self.generate(
                    job_id,
                    split_pieces(text),
                    template,
                    instructions=instructions,
                    wait_for_provider=wait_for_provider,
                )
            else:
                results.update(self._batch(chosen, template, instructions, wait_for_provider))
        return results

    def _batch(
        self,
        items: Sequence[tuple[str, str]],
        template: NotesTemplate,
        instructions: str | None,
        wait_for_provider: bool,
    ) -> dict[str, tuple[Notes, Provenance]]:
        ids = [i for i, _ in items]
        if len(set(ids)) != len(ids):
            raise InvalidInput("batch ids must be unique", code="bad_batch")

        def check(batch: NotesBatch) -> None:
            if [item.id for item in batch.items] != ids:
                raise BadOutput("the batch answer does not echo the ids in order")

        run = _Run()

        def ask(link: ProviderLink) -> NotesBatch:
            schema_in_prompt = (
                NotesBatch if link.provider.style is RequestStyle.JSON_OBJECT else None
            )
            return self._call(
                link,
                run,
                "batch:" + ",".join(ids)[:400],
                batch_messages(
                    items, template, schema_in_prompt=schema_in_prompt, instructions=instructions
                ),
                NotesBatch,
                check,
            )

        walk = self._walk(run, ask, wait_for_provider)
        if walk.answer is not None:
            link, batch = walk.answer
            return self._split(batch, items, run, link, walk.reason, template)
        return {
            job_id: (
                extract_notes(text, template),
                run.provenance(EXTRACTIVE, EXTRACTIVE_MODEL, None, 1, walk.reason),
            )
            for job_id, text in items
        }

    @staticmethod
    def _split(
        batch: NotesBatch,
        items: Sequence[tuple[str, str]],
        run: _Run,
        link: ProviderLink,
        reason: str | None,
        template: NotesTemplate,
    ) -> dict[str, tuple[Notes, Provenance]]:
        """Each item's share of the usage and cost, in proportion to its transcript's size."""
        sizes = [max(estimate_tokens(text), 1) for _, text in items]
        total = sum(sizes)
        out: dict[str, tuple[Notes, Provenance]] = {}
        for item, size, (_, text) in zip(batch.items, sizes, items, strict=True):
            share = size / total
            prov = run.provenance(
                link.name, run.model or link.provider.model, link.provider.model, 1, reason
            )
            prov.usage = Usage(
                prompt_tokens=round(run.usage.prompt_tokens * share),
                completion_tokens=round(run.usage.completion_tokens * share),
                compute_s=round(run.usage.compute_s * share, 3),
            )
            prov.cost_usd = round(run.cost_usd * share, 8)
            prov.fallback_reason = reason
            out[item.id] = _grounded(item.id, item.notes, [text], prov, template)
        return out


def _grounded(
    job_id: str,
    notes: Notes,
    chunks: Sequence[str],
    prov: Provenance,
    template: NotesTemplate,
) -> tuple[Notes, Provenance]:
    """A model's notes with owners read off the committing turns and the speakers' own
    commitments it missed (``attribution``), without what their own transcript does not
    support or the prompt's example put there, and the provenance that lists all of it."""
    # The extractive engine's reading of the same text: cheap, and what attribution trusts.
    rule = merge_notes([extract_notes(c, template) for c in chunks], template)
    attributed, replaced, added = attribute(notes, rule.action_items)
    example = worked_example(any(has_turns(c) for c in chunks))[1]
    kept, dropped = ground(attributed, chunks, example=example)
    dropped = replaced + dropped
    if dropped or added:
        log.info(
            "checked against the transcript, the notes of %s (%s): %d value(s) replaced or "
            "removed, %d commitment(s) added",
            job_id,
            prov.provider,
            len(dropped),
            len(added),
        )
    prov.dropped = dropped
    prov.added = added
    return kept, prov
