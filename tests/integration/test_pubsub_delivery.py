"""The Pub/Sub emulator, configured by our subscription builder, delivers as GCP does:
push to an endpoint, redelivery on failure, dead-lettering after the configured attempts."""

from __future__ import annotations

from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from emulators.stack import subscription_request
from tests.integration.helpers import Tap, wait_for


def _topics(project: str, unique: str) -> tuple[str, str]:
    publisher = pubsub_v1.PublisherClient()
    main = publisher.create_topic(name=publisher.topic_path(project, f"t-{unique}")).name
    dead = publisher.create_topic(name=publisher.topic_path(project, f"dl-{unique}")).name
    return main, dead


def test_push_delivers_once_when_acknowledged(clean_stack, receiver, unique):
    s = clean_stack.local.settings
    _topics(s.project, unique)
    ok = receiver(204)
    request = subscription_request(
        clean_stack.local,
        f"push-{unique}",
        f"t-{unique}",
        push_endpoint=ok.url,
        dead_letter_topic=f"dl-{unique}",
    )
    subscriber = pubsub_v1.SubscriberClient()
    subscriber.create_subscription(request=request)
    publisher = pubsub_v1.PublisherClient()
    publisher.publish(
        publisher.topic_path(s.project, f"t-{unique}"), b'{"n":1}', job_id="j"
    ).result()

    wait_for(lambda: ok.count() >= 1, what="the push")
    dead = Tap(s.project, f"dl-{unique}", f"dlq-{unique}")
    assert dead.drain(settle_s=3) == []  # nothing dead-lettered, nothing redelivered
    assert ok.count() == 1
    body = ok.bodies[0]
    assert body["subscription"] == request["name"]
    assert body["message"]["attributes"] == {"job_id": "j"}


def test_failing_endpoint_is_dead_lettered_after_max_attempts(clean_stack, receiver, unique):
    s = clean_stack.local.settings
    _topics(s.project, unique)
    dead = Tap(s.project, f"dl-{unique}", f"dlq-{unique}")
    failing = receiver(500)
    subscriber = pubsub_v1.SubscriberClient()
    subscriber.create_subscription(
        request=subscription_request(
            clean_stack.local,
            f"push-{unique}",
            f"t-{unique}",
            push_endpoint=failing.url,
            dead_letter_topic=f"dl-{unique}",
        )
    )
    publisher = pubsub_v1.PublisherClient()
    publisher.publish(publisher.topic_path(s.project, f"t-{unique}"), b"poison").result()

    attempts = s.delivery.max_delivery_attempts
    dead_lettered = wait_for(lambda: dead.drain(settle_s=0.5), timeout_s=90, what="dead letter")
    assert failing.count() == attempts
    assert [m.data for m in dead_lettered] == [b"poison"]
    assert dead_lettered[0].attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(attempts)


def test_stack_subscriptions_match_production_settings(stack):
    s = stack.local.settings
    subscriber = pubsub_v1.SubscriberClient()
    for name, topic, dead_letter in [
        (
            s.subscriptions.dispatch,
            s.topics.transcription_requests,
            s.topics.transcription_requests_dead_letter,
        ),
        (s.subscriptions.notes, s.topics.transcripts_ready, s.topics.transcripts_ready_dead_letter),
    ]:
        sub = subscriber.get_subscription(
            subscription=subscriber.subscription_path(s.project, name)
        )
        assert sub.topic.endswith(f"/topics/{topic}")
        assert sub.ack_deadline_seconds == s.delivery.ack_deadline_s
        assert sub.dead_letter_policy.dead_letter_topic.endswith(f"/topics/{dead_letter}")
        assert sub.dead_letter_policy.max_delivery_attempts == s.delivery.max_delivery_attempts
    inbox = subscriber.get_subscription(
        subscription=subscriber.subscription_path(s.project, s.subscriptions.inbox_events)
    )
    assert inbox.push_config.push_endpoint == stack.local.url(stack.local.ports.bridge)
