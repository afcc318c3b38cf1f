"""FirestoreJobStore against the Firestore emulator: idempotent creation under concurrency,
forward-only transitions inside transactions, progress, pagination."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from common.domain.errors import InvalidInput, InvalidTransition, JobNotFound
from common.domain.jobs import Job, JobError, JobSource, JobState
from common.gcp.job_store import FirestoreJobStore


@pytest.fixture
def store(clean_stack) -> FirestoreJobStore:  # type: ignore[no-untyped-def]
    s = clean_stack.local.settings
    return FirestoreJobStore(s.project, s.collections.jobs)


def _job(job_id: str, owner: str = "alice") -> Job:
    return Job.new(
        job_id=job_id, owner=owner, source=JobSource(uri="gs://b/a.wav"), retention_days=1
    )


def test_concurrent_duplicate_creates_yield_one_job(store, unique):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.create(_job(f"j-{unique}")), range(8)))
    assert sum(created for _, created in results) == 1
    assert {job.job_id for job, _ in results} == {f"j-{unique}"}


def test_transitions_go_forward_only(store, unique):
    job_id = f"j-{unique}"
    store.create(_job(job_id))
    first = store.transition(job_id, JobState.DISPATCHED, execution="exec-1")
    assert (first.changed, first.previous, first.job.execution) == (True, JobState.QUEUED, "exec-1")
    again = store.transition(job_id, JobState.DISPATCHED)
    assert again.changed is False
    with pytest.raises(InvalidTransition):
        store.transition(job_id, JobState.QUEUED)
    store.transition(job_id, JobState.TRANSCRIBED, outputs={"transcript": "gs://r/t.json"})
    failed = store.transition(job_id, JobState.FAILED, error=JobError(code="x", message="y"))
    with pytest.raises(InvalidTransition):
        store.transition(job_id, JobState.COMPLETED)
    stored = store.get(job_id)
    assert stored.state == JobState.FAILED == failed.job.state
    assert set(stored.state_times) == {
        JobState.QUEUED,
        JobState.DISPATCHED,
        JobState.TRANSCRIBED,
        JobState.FAILED,
    }
    assert stored.outputs == {"transcript": "gs://r/t.json"}


def test_racing_transitions_change_the_job_once(store, unique):
    """Sixteen writers at once, as parallel Cloud Run tasks and redeliveries can be."""
    job_id = f"j-{unique}"
    store.create(_job(job_id))
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: store.transition(job_id, JobState.DISPATCHED), range(16)))
        list(pool.map(lambda i: store.set_progress(job_id, (i + 1) / 16), range(16)))
    assert sum(r.changed for r in results) == 1
    assert store.get(job_id).progress == 1.0  # no update lost to a concurrent one


def test_progress_only_rises_and_stops_at_final_states(store, unique):
    job_id = f"j-{unique}"
    store.create(_job(job_id))
    assert store.set_progress(job_id, 0.5).progress == 0.5
    assert store.set_progress(job_id, 0.2).progress == 0.5
    store.transition(job_id, JobState.CANCELLED)
    assert store.set_progress(job_id, 0.9).progress == 0.5


def test_list_filters_by_owner_and_state_and_paginates(store, unique):
    for i in range(5):
        store.create(_job(f"a-{i}-{unique}", owner="alice"))
    store.create(_job(f"b-{unique}", owner="bob"))
    store.transition(f"a-0-{unique}", JobState.DISPATCHED)

    seen: list[str] = []
    token = None
    while True:
        page = store.list(owner="alice", limit=2, page_token=token)
        seen += [j.job_id for j in page.jobs]
        assert all(j.owner == "alice" for j in page.jobs)
        token = page.next_page_token
        if token is None:
            break
    assert sorted(seen) == sorted(f"a-{i}-{unique}" for i in range(5))
    assert len(seen) == len(set(seen))
    assert [j.job_id for j in store.list(state=JobState.DISPATCHED).jobs] == [f"a-0-{unique}"]
    with pytest.raises(InvalidInput):
        store.list(limit=0)
    with pytest.raises(InvalidInput):
        store.list(page_token="!!not-a-token")
    with pytest.raises(InvalidInput):
        store.list(page_token="!!")


def test_missing_job_is_not_found(store):
    with pytest.raises(JobNotFound):
        store.get("nope")
    with pytest.raises(JobNotFound):
        store.transition("nope", JobState.DISPATCHED)


def test_each_state_entered_is_logged_for_the_metrics(store, unique, caplog):
    """terraform/modules/monitoring counts event=job_state lines and sums their duration_s."""
    job_id = f"j-{unique}"
    with caplog.at_level("INFO", logger="common.gcp.job_store"):
        store.create(_job(job_id))
        store.transition(job_id, JobState.DISPATCHED)
        store.transition(job_id, JobState.DISPATCHED)  # a no-op logs nothing
        store.update(job_id, lambda j: j.model_copy(update={"attempts": 1}))  # nor does this
        store.transition(job_id, JobState.FAILED, error=JobError(code="boom", message="x"))
    lines = [r for r in caplog.records if getattr(r, "event", None) == "job_state"]
    assert [(r.state, r.previous_state) for r in lines] == [
        ("QUEUED", None),
        ("DISPATCHED", "QUEUED"),
        ("FAILED", "DISPATCHED"),
    ]
    assert all(r.duration_s >= 0 for r in lines[1:])
    assert lines[-1].code == "boom"
