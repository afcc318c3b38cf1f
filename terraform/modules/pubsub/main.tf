# Topics, push subscriptions to the dispatch and notes functions, the work queues (three pull
# subscriptions the transcribe workers take chunks from), dead-letter topics and their push
# subscriptions to the dead_letters function (which marks the message's job FAILED).
#
# Why our own push subscriptions instead of the functions' `event_trigger` (Eventarc Pub/Sub
# triggers): Eventarc creates and owns the subscription behind a Pub/Sub trigger, and it takes
# no dead-letter policy, max delivery attempts or ack deadline from Terraform (edits made to it
# by hand are overwritten). Our subscriptions below carry all three, plus a retry backoff, and
# push to the function's run.app URL with an OIDC token of a dedicated identity that holds only
# roles/run.invoker on those functions. functions-framework turns the raw Pub/Sub push body
# into the same CloudEvent (google.cloud.pubsub.topic.v1.messagePublished) a trigger delivers,
# so the handlers cannot tell the difference. For a push subscription the ack deadline is the
# request timeout: it must be at least the function's timeout.

locals {
  # subscription key => (topic key, dead-letter topic key, dead-letter subscription key)
  routes = {
    dispatch = {
      topic       = "transcription_requests"
      dead_letter = "transcription_requests_dead_letter"
    }
    notes = {
      topic       = "transcripts_ready"
      dead_letter = "transcripts_ready_dead_letter"
    }
  }

  # The chunk work queues (one per priority) that the transcribe workers pull from
  # (run_jobs/transcribe/worker.py): pull subscriptions, no push endpoint. All three
  # dead-letter into one topic, whose subscription pushes to dead_letters like the others.
  work_routes = {
    work_high   = { topic = "work_high", dead_letter = "work_dead_letter" }
    work_normal = { topic = "work_normal", dead_letter = "work_dead_letter" }
    work_low    = { topic = "work_low", dead_letter = "work_dead_letter" }
  }

  # Every subscription that dead-letters, and each dead-letter topic with its subscription.
  dead_lettering = merge(local.routes, local.work_routes)
  dead_letters   = toset([for r in values(local.dead_lettering) : r.dead_letter])
}

resource "google_pubsub_topic" "this" {
  #checkov:skip=CKV_GCP_83:Messages carry job ids and URIs only, no content; Google-managed encryption at rest is enough and CMEK would add a KMS key to every publish.
  for_each = var.names.topics

  project = var.project
  name    = each.value
  labels  = var.labels
}

resource "google_pubsub_subscription" "push" {
  for_each = local.routes

  project = var.project
  name    = var.names.subscriptions[each.key]
  topic   = google_pubsub_topic.this[each.value.topic].id
  labels  = var.labels

  ack_deadline_seconds       = var.delivery.ack_deadline_s
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = var.push_endpoints[each.key]
    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = var.push_endpoints[each.key]
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.this[each.value.dead_letter].id
    max_delivery_attempts = var.delivery.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "${var.delivery.min_backoff_s}s"
    maximum_backoff = "${var.delivery.max_backoff_s}s"
  }

  # The default is to delete a subscription after 31 days without traffic.
  expiration_policy {
    ttl = ""
  }
}

# The work queues: pull subscriptions. The ack deadline is the workers' lease on a chunk
# (Settings.workers.ack_deadline_s, one variable for both): a worker extends it while it
# transcribes (common/gcp/work_queue.py), so a chunk whose worker died goes to another within
# that long. After max_delivery_attempts a chunk is dead-lettered and its job failed.
resource "google_pubsub_subscription" "pull" {
  for_each = local.work_routes

  project = var.project
  name    = var.names.subscriptions[each.key]
  topic   = google_pubsub_topic.this[each.value.topic].id
  labels  = var.labels

  ack_deadline_seconds       = var.work_ack_deadline_s
  message_retention_duration = "604800s"

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.this[each.value.dead_letter].id
    max_delivery_attempts = var.delivery.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "${var.delivery.min_backoff_s}s"
    maximum_backoff = "${var.delivery.max_backoff_s}s"
  }

  expiration_policy {
    ttl = ""
  }
}

# A dead-letter topic without a subscription drops what it receives. All three push to the
# dead_letters function (functions/dead_letters.py), which fails the job the message was for,
# with the same OIDC identity, ack deadline and retry backoff as the subscriptions above. They
# have no dead-letter policy of their own: a dead letter that dead_letters cannot handle yet
# (Firestore or Cloud Run unavailable, the function down) is redelivered with backoff and kept
# for dead_letter_retention, so nothing is lost while the function is down; the monitoring
# module alerts when one waits too long.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = local.dead_letters

  project = var.project
  name    = var.names.subscriptions[each.key]
  topic   = google_pubsub_topic.this[each.key].id
  labels  = var.labels

  ack_deadline_seconds       = var.delivery.ack_deadline_s
  message_retention_duration = var.dead_letter_retention
  retain_acked_messages      = false

  push_config {
    push_endpoint = var.push_endpoints.dead_letters
    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = var.push_endpoints.dead_letters
    }
  }

  retry_policy {
    minimum_backoff = "${var.delivery.min_backoff_s}s"
    maximum_backoff = "${var.delivery.max_backoff_s}s"
  }

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering needs the Pub/Sub service agent to publish to the dead-letter topic and to
# acknowledge (subscriber) on the source subscription.
resource "google_pubsub_topic_iam_member" "agent_dead_letter_publisher" {
  for_each = local.dead_letters

  project = var.project
  topic   = google_pubsub_topic.this[each.key].name
  role    = "roles/pubsub.publisher"
  member  = var.pubsub_service_agent_member
}

# These grants were keyed by source subscription before the work queues shared a dead-letter topic.
moved {
  from = google_pubsub_topic_iam_member.agent_dead_letter_publisher["dispatch"]
  to   = google_pubsub_topic_iam_member.agent_dead_letter_publisher["transcription_requests_dead_letter"]
}
moved {
  from = google_pubsub_topic_iam_member.agent_dead_letter_publisher["notes"]
  to   = google_pubsub_topic_iam_member.agent_dead_letter_publisher["transcripts_ready_dead_letter"]
}

resource "google_pubsub_subscription_iam_member" "agent_source_subscriber" {
  for_each = local.dead_lettering

  project      = var.project
  subscription = merge(google_pubsub_subscription.push, google_pubsub_subscription.pull)[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = var.pubsub_service_agent_member
}

resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = var.publishers

  project = var.project
  topic   = google_pubsub_topic.this[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = each.value.member
}

# The transcribe workers pull (and acknowledge, modify ack deadlines) on the work
# subscriptions only: roles/pubsub.subscriber on each subscription, none on the project.
resource "google_pubsub_subscription_iam_member" "pullers" {
  for_each = merge([
    for sub in keys(local.work_routes) : {
      for k, member in var.pullers : "${sub}|${k}" => { subscription = sub, member = member }
    }
  ]...)

  project      = var.project
  subscription = google_pubsub_subscription.pull[each.value.subscription].name
  role         = "roles/pubsub.subscriber"
  member       = each.value.member
}
