"""Adapters to Google Cloud: Firestore (jobs, lanes, breaker, ledger, rate limits), Cloud
Storage, Pub/Sub and Cloud Run. The only place under ``common`` that imports ``google.*``;
each implements a port of ``common.domain.ports`` (or its own Protocol) and turns Google's
exceptions into domain errors.
"""
