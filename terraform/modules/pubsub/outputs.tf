output "topics" {
  description = "Topic key => {name, id}."
  value       = { for k, t in google_pubsub_topic.this : k => { name = t.name, id = t.id } }
}

output "subscriptions" {
  description = "Subscription key => {name, id} for the subscriptions to dispatch and notes, the work subscriptions and the dead-letter subscriptions."
  value = merge(
    { for k, s in google_pubsub_subscription.push : k => { name = s.name, id = s.id } },
    { for k, s in google_pubsub_subscription.pull : k => { name = s.name, id = s.id } },
    { for k, s in google_pubsub_subscription.dead_letter : k => { name = s.name, id = s.id } },
  )
}

output "push_subscriptions" {
  description = "Push subscription key => delivery properties (topic, endpoint, ack deadline, dead-letter topic, max delivery attempts, backoff)."
  value = {
    for k, s in google_pubsub_subscription.push : k => {
      name                  = s.name
      topic                 = s.topic
      push_endpoint         = s.push_config[0].push_endpoint
      ack_deadline_seconds  = s.ack_deadline_seconds
      dead_letter_topic     = s.dead_letter_policy[0].dead_letter_topic
      max_delivery_attempts = s.dead_letter_policy[0].max_delivery_attempts
      minimum_backoff       = s.retry_policy[0].minimum_backoff
      maximum_backoff       = s.retry_policy[0].maximum_backoff
    }
  }
}

output "work_subscriptions" {
  description = "Work (pull) subscription key => delivery properties (topic, whether it pushes, ack deadline, dead-letter topic, max delivery attempts, backoff) and the members that may pull from it."
  value = {
    for k, s in google_pubsub_subscription.pull : k => {
      name                  = s.name
      topic                 = s.topic
      pushes                = length(s.push_config) > 0
      ack_deadline_seconds  = s.ack_deadline_seconds
      dead_letter_topic     = s.dead_letter_policy[0].dead_letter_topic
      max_delivery_attempts = s.dead_letter_policy[0].max_delivery_attempts
      minimum_backoff       = s.retry_policy[0].minimum_backoff
      maximum_backoff       = s.retry_policy[0].maximum_backoff
      pullers               = toset([for g in google_pubsub_subscription_iam_member.pullers : g.member if g.subscription == s.name])
    }
  }
}

output "dead_lettering" {
  description = "Source subscription key => dead-letter topic key: the subscriptions on which the Pub/Sub service agent is a subscriber, with the topics it may publish to."
  value = {
    for k, g in google_pubsub_subscription_iam_member.agent_source_subscriber : k => local.dead_lettering[k].dead_letter
    if contains(keys(google_pubsub_topic_iam_member.agent_dead_letter_publisher), local.dead_lettering[k].dead_letter)
  }
}

output "dead_letter_subscriptions" {
  description = "Dead-letter subscription key => delivery properties (topic, endpoint, OIDC identity and audience, ack deadline, retention, backoff, whether it has a dead-letter policy of its own)."
  value = {
    for k, s in google_pubsub_subscription.dead_letter : k => {
      name                       = s.name
      topic                      = s.topic
      push_endpoint              = s.push_config[0].push_endpoint
      oidc_service_account_email = s.push_config[0].oidc_token[0].service_account_email
      oidc_audience              = s.push_config[0].oidc_token[0].audience
      ack_deadline_seconds       = s.ack_deadline_seconds
      message_retention_duration = s.message_retention_duration
      has_dead_letter_policy     = length(s.dead_letter_policy) > 0
      minimum_backoff            = s.retry_policy[0].minimum_backoff
      maximum_backoff            = s.retry_policy[0].maximum_backoff
    }
  }
}

output "publishers" {
  description = "Publisher key => the topic key it may publish to."
  value       = { for k, g in google_pubsub_topic_iam_member.publishers : k => var.publishers[k].topic }
}
